import { decrypt, encrypt, CRYPTO_OVERHEAD, type CryptoKey } from '../crypto/crypto.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { createHash } from 'node:crypto';

/** What a blob holds. In format v2 data and tree blobs never share a pack. */
export type BlobType = 'data' | 'tree';

/** Where a blob sits in a pack (the index records exactly this). */
export interface PackedBlob {
  readonly id: string;
  readonly type: BlobType;
  /** Offset of the encrypted blob in the pack. */
  readonly offset: number;
  /** Length of the encrypted blob (IV, ciphertext, MAC). */
  readonly length: number;
  /** Plaintext length of a compressed blob; absent for uncompressed ones. */
  readonly uncompressedLength?: number;
}

const ENTRY_PLAIN = 1 + 4 + 32;
const ENTRY_COMPRESSED = 1 + 4 + 4 + 32;

/**
 * Builds one pack: `EncryptedBlob1 || … || EncryptedHeader || Header_Length` (design.rst, "Pack
 * Format"). Blobs arrive already compressed (or not) and are encrypted here.
 */
export class PackBuilder {
  readonly type: BlobType;
  readonly #key: CryptoKey;
  #parts: Buffer[] = [];
  /** Bytes of {@link #parts} (blobs not yet taken by {@link takePieces}). */
  #partBytes = 0;
  readonly #blobs: PackedBlob[] = [];
  #size = 0;
  /** The pack's id, hashed as its pieces arrive (they may be written out before it is finished). */
  readonly #hash = createHash('sha256');

  constructor(key: CryptoKey, type: BlobType) {
    this.#key = key;
    this.type = type;
  }

  /** Bytes of blobs so far (without the header). */
  get size(): number {
    return this.#size;
  }

  get count(): number {
    return this.#blobs.length;
  }

  /** Adds a blob; `body` is the plaintext, or its zstd frame when `uncompressedLength` is given. */
  add(id: string, body: Uint8Array, uncompressedLength?: number): PackedBlob {
    return this.addSealed(id, encrypt(this.#key, body), uncompressedLength);
  }

  /**
   * Adds a blob already encrypted with this pack's key (sealed in a worker thread), whole or as
   * its pieces in order (IV, ciphertext, MAC: stored one after the other, never joined).
   */
  addSealed(id: string, sealed: Buffer | readonly Buffer[], uncompressedLength?: number): PackedBlob {
    const pieces = Buffer.isBuffer(sealed) ? [sealed] : sealed;
    const length = pieces.reduce((n, piece) => n + piece.length, 0);
    const blob: PackedBlob = {
      id,
      type: this.type,
      offset: this.#size,
      length,
      ...(uncompressedLength !== undefined ? { uncompressedLength } : {}),
    };
    for (const piece of pieces) this.#hash.update(piece);
    this.#parts.push(...pieces);
    this.#partBytes += length;
    this.#blobs.push(blob);
    this.#size += length;
    return blob;
  }

  /** Bytes of blobs added and not yet taken by {@link takePieces}. */
  get heldBytes(): number {
    return this.#partBytes;
  }

  /**
   * The blobs' pieces added since the last call, in order, for the caller to write out (a pack
   * staged in a file as it fills); {@link finish} then gives only what came after.
   */
  takePieces(): Buffer[] {
    const parts = this.#parts;
    this.#parts = [];
    this.#partBytes = 0;
    return parts;
  }

  /**
   * The finished pack file as its pieces in order (blobs not yet taken, sealed header, header
   * length: handed to the backend as they are, never joined), its id (SHA-256 of all of its bytes,
   * taken pieces included) and its blobs.
   */
  finish(): { id: string; pieces: readonly Buffer[]; blobs: readonly PackedBlob[] } {
    const header = Buffer.alloc(
      this.#blobs.reduce(
        (n, b) => n + (b.uncompressedLength !== undefined ? ENTRY_COMPRESSED : ENTRY_PLAIN),
        0,
      ),
    );
    let at = 0;
    for (const blob of this.#blobs) {
      const compressed = blob.uncompressedLength !== undefined;
      header[at] = (compressed ? 2 : 0) | (blob.type === 'tree' ? 1 : 0);
      header.writeUInt32LE(blob.length, at + 1);
      at += 5;
      if (compressed) {
        header.writeUInt32LE(blob.uncompressedLength!, at);
        at += 4;
      }
      header.write(blob.id, at, 'hex');
      at += 32;
    }
    const sealedHeader = encrypt(this.#key, header);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(sealedHeader.length);
    this.#hash.update(sealedHeader).update(length);
    return {
      id: this.#hash.digest('hex'),
      pieces: [...this.takePieces(), sealedHeader, length],
      blobs: this.#blobs,
    };
  }
}

/** How many bytes from the end of a pack to read so that the header is likely inside. */
export const PACK_TAIL_GUESS = 4 + CRYPTO_OVERHEAD + 64 * ENTRY_COMPRESSED;

/**
 * Parses a pack's header from the pack's last `tail.length` bytes (or the whole pack). Returns
 * `needed` when the tail is too short to hold the whole header.
 */
export function parsePackHeader(
  key: CryptoKey,
  tail: Buffer,
  packSize: number,
  packId: string,
): { blobs: PackedBlob[] } | { needed: number } {
  if (tail.length < 4 || packSize < 4)
    throw new RepositoryError(RepositoryErrorCode.Malformed, `pack ${packId} is too short`);
  const headerLength = tail.readUInt32LE(tail.length - 4);
  if (headerLength + 4 > packSize || headerLength < CRYPTO_OVERHEAD) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `pack ${packId}: header length ${headerLength} does not fit`,
    );
  }
  if (headerLength + 4 > tail.length) return { needed: headerLength + 4 };
  const header = decrypt(key, tail.subarray(tail.length - 4 - headerLength, tail.length - 4));
  const blobs: PackedBlob[] = [];
  let at = 0;
  let offset = 0;
  while (at < header.length) {
    const kind = header[at]!;
    if (kind > 3)
      throw new RepositoryError(RepositoryErrorCode.Malformed, `pack ${packId}: blob type ${kind}`);
    const compressed = (kind & 2) !== 0;
    if (at + (compressed ? ENTRY_COMPRESSED : ENTRY_PLAIN) > header.length) {
      throw new RepositoryError(RepositoryErrorCode.Malformed, `pack ${packId}: truncated header`);
    }
    const length = header.readUInt32LE(at + 1);
    at += 5;
    let uncompressedLength: number | undefined;
    if (compressed) {
      uncompressedLength = header.readUInt32LE(at);
      at += 4;
    }
    const id = header.subarray(at, at + 32).toString('hex');
    at += 32;
    blobs.push({
      id,
      type: kind & 1 ? 'tree' : 'data',
      offset,
      length,
      ...(compressed ? { uncompressedLength } : {}),
    });
    offset += length;
  }
  if (offset + headerLength + 4 !== packSize) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `pack ${packId}: blobs and header do not add up to its size`,
    );
  }
  return { blobs };
}
