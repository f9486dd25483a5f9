import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { polDegree, polMod, polMulMod, type Pol } from './polynomial.ts';

/** Bytes in the rolling hash's window. */
export const CHUNKER_WINDOW_SIZE = 64;
/** No chunk but a file's last is shorter (512 KiB). */
export const CHUNKER_MIN_SIZE = 512 * 1024;
/** No chunk is longer (8 MiB). */
export const CHUNKER_MAX_SIZE = 8 * 1024 * 1024;
/** A cut wherever the low 20 bits of the fingerprint are zero: about 1 MiB per chunk. */
export const CHUNKER_AVERAGE_BITS = 20;

/**
 * Deviations from restic's parameters, for tests that reproduce restic's own vectors only:
 * anything but the defaults makes chunks restic would never make, and so defeats deduplication.
 */
export interface ChunkerOptions {
  minSize?: number;
  maxSize?: number;
  averageBits?: number;
}

/** Where a chunk lies in its file. */
export interface ChunkBoundary {
  /** Position of the chunk's first byte in the file. */
  readonly offset: number;
  readonly length: number;
  /**
   * The Rabin fingerprint (below 2^53, so exact as a number) when the chunk was cut, as restic's
   * `Chunk.Cut`; for a file's last chunk, whatever the fingerprint was at the end.
   */
  readonly cut: number;
}

/** One content-defined chunk of a file. */
export interface Chunk extends ChunkBoundary {
  /** The chunk's bytes; a view of the input when the chunk lay within one input buffer. */
  readonly data: Buffer;
}

/**
 * The tables restic precomputes per polynomial, each 64-bit entry split into two int32 halves so
 * the hot loop runs on 32-bit integers. Degrees are at most 53, so every entry fits 61 bits.
 */
interface RabinTables {
  /** out[b] = fingerprint of b followed by 63 zero bytes: XOR it in to drop b from the window. */
  readonly outHi: Int32Array;
  readonly outLo: Int32Array;
  /** mod[t] = (t·x^deg mod pol) | t·x^deg: one XOR clears the 8 top bits t and reduces. */
  readonly modHi: Int32Array;
  readonly modLo: Int32Array;
  /** deg − 8 − 32: shifts the top 8 bits of the fingerprint's high half down to a table index. */
  readonly hiShift: number;
}

const MIN_DEGREE = 40;
const MAX_DEGREE = 53;
const TWO_POW_32 = 2 ** 32;
const tablesCache = new Map<Pol, RabinTables>();

function rabinTables(pol: Pol): RabinTables {
  const cached = tablesCache.get(pol);
  if (cached) return cached;
  const degree = polDegree(pol);
  // restic's chunker needs deg ≤ 53; the hi/lo split needs the top byte in the high half.
  if (degree < MIN_DEGREE || degree > MAX_DEGREE) {
    throw new RepositoryError(
      RepositoryErrorCode.Unsupported,
      `chunker polynomial 0x${pol.toString(16)} has degree ${degree}: supported are ${MIN_DEGREE} to ${MAX_DEGREE} (restic draws 53)`,
    );
  }
  const tables: RabinTables = {
    outHi: new Int32Array(256),
    outLo: new Int32Array(256),
    modHi: new Int32Array(256),
    modLo: new Int32Array(256),
    hiShift: degree - 8 - 32,
  };
  // Sliding b in and 63 zero bytes after it multiplies b by x^(8·63).
  const leaveFactor = polMod(1n << BigInt(8 * (CHUNKER_WINDOW_SIZE - 1)), pol);
  for (let b = 0; b < 256; b++) {
    const out = polMulMod(BigInt(b), leaveFactor, pol);
    const top = BigInt(b) << BigInt(degree);
    const mod = polMod(top, pol) | top;
    tables.outHi[b] = Number(out >> 32n);
    tables.outLo[b] = Number(BigInt.asIntN(32, out));
    tables.modHi[b] = Number(mod >> 32n);
    tables.modLo[b] = Number(BigInt.asIntN(32, mod));
  }
  tablesCache.set(pol, tables);
  return tables;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function validSize(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`chunker ${name} must be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}

/**
 * restic's content-defined chunker (restic/chunker, design.rst "Backups and Deduplication"),
 * bit for bit: a Rabin fingerprint over a 64-byte window, cut where its low 20 bits are zero,
 * chunks between 512 KiB and 8 MiB. After each cut the first 512 KiB − 64 bytes are skipped
 * unhashed and the window restarts as restic's does. Same polynomial, same chunks, same blob ids.
 *
 * Feed one file with {@link push} in buffers of any size (the chunks do not depend on them), then
 * call {@link finish}. Input buffers must not change afterwards: chunks may be views of them.
 */
export class Chunker {
  readonly #tables: RabinTables;
  readonly #minSize: number;
  readonly #maxSize: number;
  readonly #splitMask: number;

  readonly #window = new Uint8Array(CHUNKER_WINDOW_SIZE);
  #windowPos = 0;
  /** The fingerprint, below 2^53: bits 32–52 and bits 0–31. */
  #digestHi = 0;
  #digestLo = 0;
  /** Bytes still to skip unhashed at the start of the current chunk. */
  #skip = 0;
  /** Bytes of the current chunk seen so far (restic's `count`). */
  #count = 0;
  #chunkOffset = 0;
  /** The current chunk's bytes from earlier buffers. */
  #pieces: Uint8Array[] = [];
  #piecesLength = 0;

  constructor(pol: Pol, options: ChunkerOptions = {}) {
    this.#tables = rabinTables(pol);
    this.#minSize = validSize('minSize', options.minSize ?? CHUNKER_MIN_SIZE, CHUNKER_WINDOW_SIZE);
    this.#maxSize = validSize('maxSize', options.maxSize ?? CHUNKER_MAX_SIZE, this.#minSize);
    const averageBits = options.averageBits ?? CHUNKER_AVERAGE_BITS;
    if (!Number.isInteger(averageBits) || averageBits < 1 || averageBits > 32) {
      throw new RangeError(`chunker averageBits must be an integer from 1 to 32, got ${averageBits}`);
    }
    this.#splitMask = averageBits === 32 ? -1 : (1 << averageBits) - 1;
    this.#restart();
  }

  /** Feeds the next bytes of the file; returns the chunks they complete (usually none). */
  push(bytes: Uint8Array): Chunk[] {
    const chunks: Chunk[] = [];
    let chunkStart = 0;
    let pos = 0;
    while (pos < bytes.length) {
      if (this.#skip > 0) {
        const skipped = Math.min(this.#skip, bytes.length - pos);
        this.#skip -= skipped;
        this.#count += skipped;
        pos += skipped;
        continue;
      }
      const cutAt = this.#scan(bytes, pos);
      if (cutAt < 0) break;
      chunks.push(this.#emit(bytes.subarray(chunkStart, cutAt)));
      chunkStart = pos = cutAt;
    }
    if (chunkStart < bytes.length) {
      this.#pieces.push(bytes.subarray(chunkStart));
      this.#piecesLength += bytes.length - chunkStart;
    }
    return chunks;
  }

  /** Ends the file: returns its last chunk, if any bytes remain, and readies the chunker for another file. */
  finish(): Chunk | undefined {
    const last = this.#piecesLength > 0 ? this.#emit(new Uint8Array(0)) : undefined;
    this.#chunkOffset = 0;
    this.#restart();
    return last;
  }

  /**
   * Rolls the fingerprint over bytes[start..] until a cut; returns the index just after the cut,
   * or −1 when the buffer ended first. The state lives in locals here: no allocation, no bigint.
   */
  #scan(bytes: Uint8Array, start: number): number {
    const { outHi, outLo, modHi, modLo, hiShift } = this.#tables;
    const window = this.#window;
    const splitMask = this.#splitMask;
    // The byte at index i brings the chunk to count + (i − start + 1) bytes.
    const firstCutIndex = start + this.#minSize - this.#count - 1;
    const forcedCutIndex = start + this.#maxSize - this.#count - 1;
    const stop = Math.min(bytes.length, forcedCutIndex + 1);
    let hi = this.#digestHi;
    let lo = this.#digestLo;
    let cutAt = -1;
    let i = start;

    // For the buffer's first 64 bytes, the bytes leaving the window are in the ring.
    let windowPos = this.#windowPos;
    for (const ringStop = Math.min(stop, start + CHUNKER_WINDOW_SIZE); i < ringStop; i++) {
      const byte = bytes[i]!;
      const out = window[windowPos]!;
      window[windowPos] = byte;
      windowPos = (windowPos + 1) & (CHUNKER_WINDOW_SIZE - 1);
      hi ^= outHi[out]!;
      lo ^= outLo[out]!;
      const top = hi >>> hiShift;
      hi = (hi << 8) | (lo >>> 24);
      lo = (lo << 8) | byte;
      hi ^= modHi[top]!;
      lo ^= modLo[top]!;
      if ((lo & splitMask) === 0 && i >= firstCutIndex) {
        cutAt = i + 1;
        break;
      }
    }
    this.#windowPos = windowPos;

    // The same step, the leaving byte read from the buffer itself: no ring to keep (~10% faster).
    const ringDone = i;
    if (cutAt < 0) {
      for (; i < stop; i++) {
        const byte = bytes[i]!;
        const out = bytes[i - CHUNKER_WINDOW_SIZE]!;
        hi ^= outHi[out]!;
        lo ^= outLo[out]!;
        const top = hi >>> hiShift;
        hi = (hi << 8) | (lo >>> 24);
        lo = (lo << 8) | byte;
        hi ^= modHi[top]!;
        lo ^= modLo[top]!;
        if ((lo & splitMask) === 0 && i >= firstCutIndex) {
          cutAt = i + 1;
          break;
        }
      }
    }
    if (cutAt < 0 && stop > forcedCutIndex) cutAt = stop;
    this.#digestHi = hi;
    this.#digestLo = lo;
    if (cutAt < 0) {
      this.#count += bytes.length - start;
      if (i > ringDone) {
        // The window is now the buffer's last 64 bytes, oldest first.
        window.set(bytes.subarray(i - CHUNKER_WINDOW_SIZE, i));
        this.#windowPos = 0;
      }
    }
    return cutAt;
  }

  /** Closes the current chunk with its last piece and starts the next one. */
  #emit(lastPiece: Uint8Array): Chunk {
    const length = this.#piecesLength + lastPiece.length;
    const data =
      this.#pieces.length === 0
        ? asBuffer(lastPiece)
        : Buffer.concat(lastPiece.length > 0 ? [...this.#pieces, lastPiece] : this.#pieces, length);
    const chunk: Chunk = {
      offset: this.#chunkOffset,
      length,
      cut: this.#digestHi * TWO_POW_32 + (this.#digestLo >>> 0),
      data,
    };
    this.#chunkOffset += length;
    this.#restart();
    return chunk;
  }

  /** restic's `reset`: an empty window but for a 1 slid in, and skip to near the minimum size. */
  #restart(): void {
    this.#window.fill(0);
    this.#window[0] = 1;
    this.#windowPos = 1;
    // out[0] and mod[0] are 0, so sliding in that 1 leaves the fingerprint at 1.
    this.#digestHi = 0;
    this.#digestLo = 1;
    this.#count = 0;
    this.#skip = this.#minSize - CHUNKER_WINDOW_SIZE;
    this.#pieces = [];
    this.#piecesLength = 0;
  }
}

/** Chunks a whole file given as a stream of buffers (a Node `Readable` is one). */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  pol: Pol,
  options?: ChunkerOptions,
): AsyncGenerator<Chunk> {
  const chunker = new Chunker(pol, options);
  for await (const bytes of source) yield* chunker.push(bytes);
  const last = chunker.finish();
  if (last) yield last;
}

/** Chunk boundaries of a file held in memory. */
export function chunkBoundaries(pol: Pol, bytes: Uint8Array, options?: ChunkerOptions): ChunkBoundary[] {
  const chunker = new Chunker(pol, options);
  const chunks = chunker.push(bytes);
  const last = chunker.finish();
  if (last) chunks.push(last);
  return chunks.map(({ offset, length, cut }) => ({ offset, length, cut }));
}
