// A worker thread that seals blobs (zstd where it pays, then AES-256-CTR + Poly1305-AES) and opens them
// (verify, decrypt, decompress, check the SHA-256): the CPU-heavy half of backup and restore,
// off the thread that reads and chunks files.
import { parentPort, workerData } from 'node:worker_threads';
import { compressBlob, decompress } from '../format/compression.ts';
import { sha256Hex } from '../format/ids.ts';
import { release } from '../format/release.ts';
import { decrypt, encryptPieces, type CryptoKey } from './crypto.ts';
import {
  movable,
  plainLength,
  type OpenedPart,
  type SealedPart,
  type SealRequest,
  type SealResponse,
} from './seal-pool.ts';

const key = workerData as CryptoKey;

/** Thrown when a plaintext to seal does not hash to the id it came with. */
class Mismatch extends Error {}

/** The output's bytes in an ArrayBuffer to transfer: its own when it has one, else a copy. */
function transferable(output: Buffer): { data: ArrayBuffer; length: number } {
  if (movable(output)) return { data: output.buffer as ArrayBuffer, length: output.byteLength };
  const own = new ArrayBuffer(output.byteLength);
  new Uint8Array(own).set(output);
  return { data: own, length: output.byteLength };
}

function open(
  sealed: Uint8Array,
  uncompressedLength: number | undefined,
  expectId: string | undefined,
): Buffer {
  let plain = decrypt(key, sealed);
  if (uncompressedLength !== undefined) {
    const frame = plain;
    plain = decompress(frame, uncompressedLength);
    release(frame);
  }
  if (expectId && sha256Hex(plain) !== expectId) throw new Error('does not match its id');
  return plain;
}

/**
 * Opens each part. Large plaintexts travel in their own buffers (moved, not copied); small ones
 * are copied into one shared buffer, since Node's pooled buffers cannot be moved.
 */
function openMany(
  seq: number,
  input: Uint8Array,
  parts: readonly SealedPart[],
  checkIds: boolean,
): { response: SealResponse; transfer: ArrayBuffer[] } {
  const plains = parts.map((part): Buffer | string => {
    try {
      const sealed = input.subarray(part.offset, part.offset + part.length);
      if (sealed.length !== part.length) throw new Error('is cut short');
      const plain = open(sealed, part.uncompressedLength, checkIds ? part.id : undefined);
      const length = plainLength(part);
      if (plain.length !== length) throw new Error(`decrypted to ${plain.length} bytes, expected ${length}`);
      return plain;
    } catch (error) {
      return (error as Error).message;
    }
  });
  const smallBytes = plains.reduce((n, p) => (typeof p === 'string' || movable(p) ? n : n + p.length), 0);
  const shared = new ArrayBuffer(smallBytes);
  const transfer = [shared];
  let at = 0;
  const opened = plains.map((plain): OpenedPart => {
    if (typeof plain === 'string') return { error: plain };
    if (movable(plain)) {
      transfer.push(plain.buffer as ArrayBuffer);
      return { buffer: plain.buffer as ArrayBuffer };
    }
    new Uint8Array(shared, at, plain.length).set(plain);
    at += plain.length;
    return { at: at - plain.length };
  });
  return { response: { seq, data: shared, parts: opened }, transfer };
}

parentPort!.on('message', (request: SealRequest) => {
  try {
    const input = new Uint8Array(request.data);
    if (request.op === 'open-many') {
      const { response, transfer } = openMany(request.seq, input, request.parts, request.checkIds !== false);
      release(input);
      parentPort!.postMessage(response, transfer);
      return;
    }
    if (request.op === 'seal-many') {
      // Small blobs: sealed one after the other into one buffer that moves back whole.
      const pieces: Uint8Array[] = [];
      const sealedParts: Array<{ length: number; compressed: boolean }> = [];
      const expected = request.expectIds;
      if (expected) {
        let at = 0;
        for (const [i, length] of request.lengths.entries()) {
          const actual = sha256Hex(input.subarray(at, at + length));
          at += length;
          if (actual !== expected[i])
            throw new Mismatch(
              `blob ${i + 1} of ${expected.length} hashes to ${actual}, not to ${expected[i]}: nothing was stored`,
            );
        }
      }
      let offset = 0;
      let total = 0;
      for (const length of request.lengths) {
        const plain = input.subarray(offset, offset + length);
        offset += length;
        const frame = request.compress ? compressBlob(plain) : undefined;
        const sealed = encryptPieces(key, frame ?? plain);
        const stored = sealed[0].length + sealed[1].length + sealed[2].length;
        pieces.push(...sealed);
        sealedParts.push({ length: stored, compressed: !!frame });
        total += stored;
      }
      if (offset !== input.length) throw new Error('seal-many: the lengths do not add up to the data');
      const output = new ArrayBuffer(total);
      const view = new Uint8Array(output);
      let at = 0;
      for (const piece of pieces) {
        view.set(piece, at);
        at += piece.length;
      }
      release(input);
      const response: SealResponse = { seq: request.seq, data: output, sealedParts };
      parentPort!.postMessage(response, [output]);
      return;
    }
    if (request.op === 'seal') {
      if (request.expectId !== undefined) {
        const actual = sha256Hex(input);
        if (actual !== request.expectId)
          throw new Mismatch(`the body hashes to ${actual}, not to ${request.expectId}: nothing was stored`);
      }
      const frame = request.compress ? compressBlob(input) : undefined;
      // The ciphertext moves back in its own buffer; IV and MAC are copied (16 bytes each).
      const [iv, ciphertext, mac] = encryptPieces(key, frame ?? input);
      // The plaintext was moved here and the frame is this thread's: neither is needed again.
      release(frame);
      release(input);
      const response: SealResponse = {
        seq: request.seq,
        ...transferable(ciphertext),
        compressed: !!frame,
        iv: new Uint8Array(iv),
        mac: new Uint8Array(mac),
      };
      parentPort!.postMessage(response, [response.data]);
      return;
    }
    const output = open(input, request.uncompressedLength, request.expectId);
    release(input);
    const response: SealResponse = { seq: request.seq, ...transferable(output) };
    parentPort!.postMessage(response, [response.data]);
  } catch (error) {
    const response: SealResponse = {
      seq: request.seq,
      error: (error as Error).message,
      ...(error instanceof Mismatch ? { mismatch: true as const } : {}),
    };
    parentPort!.postMessage(response);
  }
});
