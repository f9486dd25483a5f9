import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { nativeRabin } from './native.ts';
import { CHUNKER_POLYNOMIAL_DEGREE, polDegree, polMod, polMulMod, type Pol } from './polynomial.ts';

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
  /**
   * Whether to roll the fingerprint in the native loop (default: when it was built) or in
   * JavaScript; both cut the same chunks. For tests that compare them.
   */
  native?: boolean;
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

const WINDOW = CHUNKER_WINDOW_SIZE;
const TWO_POW_32 = 2 ** 32;
// The fingerprint is kept as hi = bits 32–52 and lo = bits 0–31 (int32 arithmetic only); its top
// byte, bits 45–52, is hi >>> 13. A constant shift is why only degree 53 is accepted.
const TOP_SHIFT = CHUNKER_POLYNOMIAL_DEGREE - 8 - 32;
// Offsets in the one table array (one array keeps V8's register pressure down in the hot loop).
const OUT_HI = 0;
const OUT_LO = 256;
const MOD_HI = 512;
const MOD_LO = 768;

interface RabinTables {
  /** out then mod, as int32 halves, for the JavaScript loop. */
  readonly halves: Int32Array;
  /** out then mod, as 64-bit entries, for the native loop. */
  readonly whole: BigUint64Array;
}

const tablesCache = new Map<Pol, RabinTables>();

/**
 * restic's two tables for a polynomial, as int32 halves of their 61-bit entries:
 * - out[b] = fingerprint of b followed by 63 zero bytes: XOR it in to drop b from the window;
 * - mod[t] = (t·x^53 mod pol) | t·x^53: one XOR clears the 8 bits t above the degree and reduces.
 */
function rabinTables(pol: Pol): RabinTables {
  const cached = tablesCache.get(pol);
  if (cached) return cached;
  const degree = polDegree(pol);
  if (degree !== CHUNKER_POLYNOMIAL_DEGREE) {
    throw new RepositoryError(
      RepositoryErrorCode.Unsupported,
      `chunker polynomial ${pol.toString(16)} has degree ${degree}: volback chunks with degree ` +
        `${CHUNKER_POLYNOMIAL_DEGREE} only, the degree restic always draws`,
    );
  }
  const table = new Int32Array(1024);
  const whole = new BigUint64Array(512);
  // Sliding b in and 63 zero bytes after it multiplies b by x^(8·63).
  const leaveFactor = polMod(1n << BigInt(8 * (WINDOW - 1)), pol);
  for (let b = 0; b < 256; b++) {
    const out = polMulMod(BigInt(b), leaveFactor, pol);
    const top = BigInt(b) << BigInt(degree);
    const mod = polMod(top, pol) | top;
    table[OUT_HI + b] = Number(out >> 32n);
    table[OUT_LO + b] = Number(BigInt.asIntN(32, out));
    table[MOD_HI + b] = Number(mod >> 32n);
    table[MOD_LO + b] = Number(BigInt.asIntN(32, mod));
    whole[b] = out;
    whole[256 + b] = mod;
  }
  const tables = { halves: table, whole };
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
  readonly #table: Int32Array;
  readonly #wholeTable: BigUint64Array;
  readonly #native: typeof nativeRabin;
  readonly #minSize: number;
  readonly #maxSize: number;
  readonly #splitMask: number;

  /**
   * Bytes 0–63: the window, oldest byte first (restic keeps a ring; the order is what matters).
   * Bytes 64–127: a buffer's first bytes, copied behind the window so that one loop, which finds
   * the byte leaving the window 64 bytes back, serves both.
   */
  readonly #staging = new Uint8Array(2 * WINDOW);
  /** The fingerprint, below 2^53: bits 32–52 and bits 0–31 (shared with the native loop). */
  readonly #digest = new Int32Array(2);
  /** Bytes still to skip unhashed at the start of the current chunk. */
  #skip = 0;
  /** Bytes of the current chunk seen so far (restic's `count`). */
  #count = 0;
  #chunkOffset = 0;
  /** The current chunk's bytes from earlier buffers. */
  #pieces: Uint8Array[] = [];
  #piecesLength = 0;

  constructor(pol: Pol, options: ChunkerOptions = {}) {
    const tables = rabinTables(pol);
    this.#table = tables.halves;
    this.#wholeTable = tables.whole;
    this.#native = options.native === false ? undefined : nativeRabin;
    if (options.native === true && !nativeRabin) {
      throw new RepositoryError(
        RepositoryErrorCode.Unsupported,
        'the native chunker is not built (scripts/build-native.sh) or VOLBACK_NATIVE=off',
      );
    }
    this.#minSize = validSize('minSize', options.minSize ?? CHUNKER_MIN_SIZE, WINDOW);
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
   * Where a chunk that starts at `bytes[0]` is cut, when only the windows ending at an index in
   * `[from, to)` need a look: the index just after the first cut among them (or after the forced
   * cut at the maximum size, when they reach it), or −1 when there is none. A window covers 64
   * bytes and the chunker restarts at every cut, so the fingerprint at an index depends only on the
   * 64 bytes up to it: for a chunk cut before whose bytes changed only in `[from, to − 64)`, the
   * windows elsewhere are as they were, and so are their decisions. Rolls from `from − 63` (or
   * where restic starts to after a cut) only. Leaves the chunker as {@link finish} does.
   */
  firstCutIn(bytes: Uint8Array, from: number, to: number): number {
    const first = Math.max(from, this.#minSize - 1);
    const stop = Math.min(to, bytes.length, this.#maxSize);
    let cut = -1;
    if (first < stop) {
      // 64 bytes rolled up to `first`: its window holds only them, whatever the state before.
      const start = first - (WINDOW - 1);
      const staging = this.#staging;
      staging.fill(0, 0, WINDOW);
      staging.set(bytes.subarray(start, start + WINDOW), WINDOW);
      this.#digest.fill(0);
      const headCut = this.#roll(staging, WINDOW, 2 * WINDOW, first - start + WINDOW);
      if (headCut >= 0) cut = start + headCut - WINDOW;
      else if (stop > start + WINDOW) cut = this.#roll(bytes, start + WINDOW, stop, first);
    }
    if (cut < 0 && stop === this.#maxSize) cut = stop;
    this.#chunkOffset = 0;
    this.#restart();
    return cut;
  }

  /** Hashes bytes[start..] until a cut; returns the index just after the cut, or −1 if none. */
  #scan(bytes: Uint8Array, start: number): number {
    // The byte at index i brings the chunk to count + (i − start + 1) bytes.
    const firstCutIndex = start + this.#minSize - this.#count - 1;
    const forcedCutIndex = start + this.#maxSize - this.#count - 1;
    const stop = Math.min(bytes.length, forcedCutIndex + 1);

    // The first 64 bytes push out the window's bytes: roll them in the staging copy.
    const staging = this.#staging;
    const head = Math.min(stop - start, WINDOW);
    staging.set(bytes.subarray(start, start + head), WINDOW);
    const headCut = this.#roll(staging, WINDOW, WINDOW + head, firstCutIndex - start + WINDOW);
    if (headCut >= 0) return start + headCut - WINDOW;
    // The rest push out bytes of this same buffer.
    if (head === WINDOW) {
      const cutAt = this.#roll(bytes, start + WINDOW, stop, firstCutIndex);
      if (cutAt >= 0) return cutAt;
    }
    if (stop > forcedCutIndex) return stop;

    // No cut in this buffer (stop is its end): keep its last 64 bytes as the window.
    if (head === WINDOW) staging.set(bytes.subarray(stop - WINDOW, stop));
    else staging.copyWithin(0, head, head + WINDOW);
    this.#count += bytes.length - start;
    return -1;
  }

  /**
   * The hot loop: rolls src[from..to) into the fingerprint, the byte leaving the window being the
   * one 64 bytes back in src. Returns the index just after the first allowed cut, or −1. Int32
   * locals and one typed array only: no allocation, no bigint.
   */
  #roll(src: Uint8Array, from: number, to: number, firstCutIndex: number): number {
    const splitMask = this.#splitMask;
    const digest = this.#digest;
    if (this.#native) {
      return this.#native.roll(src, from, to, firstCutIndex, this.#wholeTable, digest, splitMask);
    }
    const table = this.#table;
    let hi = digest[0]!;
    let lo = digest[1]!;
    let cutAt = -1;
    let i = from;
    let byte = 0;
    let out = 0;
    let top = 0;
    // Two bytes per round: about a fifth faster in V8 than one.
    for (; i + 1 < to; i += 2) {
      byte = src[i]!;
      out = src[i - WINDOW]!;
      hi ^= table[OUT_HI + out]!;
      lo ^= table[OUT_LO + out]!;
      top = hi >>> TOP_SHIFT;
      hi = ((hi << 8) | (lo >>> 24)) ^ table[MOD_HI + top]!;
      lo = ((lo << 8) | byte) ^ table[MOD_LO + top]!;
      if ((lo & splitMask) === 0 && i >= firstCutIndex) {
        cutAt = i + 1;
        break;
      }
      byte = src[i + 1]!;
      out = src[i + 1 - WINDOW]!;
      hi ^= table[OUT_HI + out]!;
      lo ^= table[OUT_LO + out]!;
      top = hi >>> TOP_SHIFT;
      hi = ((hi << 8) | (lo >>> 24)) ^ table[MOD_HI + top]!;
      lo = ((lo << 8) | byte) ^ table[MOD_LO + top]!;
      if ((lo & splitMask) === 0 && i + 1 >= firstCutIndex) {
        cutAt = i + 2;
        break;
      }
    }
    if (cutAt < 0 && i < to) {
      byte = src[i]!;
      out = src[i - WINDOW]!;
      hi ^= table[OUT_HI + out]!;
      lo ^= table[OUT_LO + out]!;
      top = hi >>> TOP_SHIFT;
      hi = ((hi << 8) | (lo >>> 24)) ^ table[MOD_HI + top]!;
      lo = ((lo << 8) | byte) ^ table[MOD_LO + top]!;
      if ((lo & splitMask) === 0 && i >= firstCutIndex) cutAt = i + 1;
    }
    digest[0] = hi;
    digest[1] = lo;
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
      cut: this.#digest[0]! * TWO_POW_32 + (this.#digest[1]! >>> 0),
      data,
    };
    this.#chunkOffset += length;
    this.#restart();
    return chunk;
  }

  /** restic's `reset`: a window of zeros with a 1 slid in last, and skip to near the minimum size. */
  #restart(): void {
    this.#staging.fill(0, 0, WINDOW);
    this.#staging[WINDOW - 1] = 1;
    // out[0] and mod[0] are 0, so sliding in that 1 leaves the fingerprint at 1.
    this.#digest[0] = 0;
    this.#digest[1] = 1;
    this.#count = 0;
    this.#skip = this.#minSize - WINDOW;
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
