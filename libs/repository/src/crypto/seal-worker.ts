// A worker thread that seals blobs (zstd, then AES-256-CTR + Poly1305-AES) and opens them
// (verify, decrypt, decompress, check the SHA-256): the CPU-heavy half of backup and restore,
// off the thread that reads and chunks files.
import { parentPort, workerData } from 'node:worker_threads';
import { compress, decompress } from '../format/unpacked.ts';
import { sha256Hex } from '../format/ids.ts';
import { decrypt, encrypt, type CryptoKey } from './crypto.ts';
import type { SealRequest, SealResponse } from './seal-pool.ts';

const key = workerData as CryptoKey;

parentPort!.on('message', (request: SealRequest) => {
  try {
    const input = new Uint8Array(request.data);
    let output: Buffer;
    if (request.op === 'seal') {
      output = encrypt(key, request.compress ? compress(input) : input);
    } else {
      let plain = decrypt(key, input);
      if (request.uncompressedLength !== undefined) plain = decompress(plain, request.uncompressedLength);
      if (request.expectId && sha256Hex(plain) !== request.expectId) throw new Error('does not match its id');
      output = plain;
    }
    // Transfer a copy in an ArrayBuffer of its own: Node's pooled buffers cannot be transferred.
    const own = new ArrayBuffer(output.byteLength);
    new Uint8Array(own).set(output);
    const response: SealResponse = { seq: request.seq, data: own };
    parentPort!.postMessage(response, [own]);
  } catch (error) {
    const response: SealResponse = { seq: request.seq, error: (error as Error).message };
    parentPort!.postMessage(response);
  }
});
