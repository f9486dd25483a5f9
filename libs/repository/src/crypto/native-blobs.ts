import { availableParallelism } from 'node:os';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { sha256Hex } from '../format/ids.ts';
import { detach, release, releaseAfterViews } from '../format/release.ts';
import { loadNativeAddon } from '../native-addon.ts';
import { CRYPTO_OVERHEAD, type CryptoKey } from './crypto.ts';
import { plainLength, type SealedPart, type SealPool } from './seal-pool.ts';

/** libs/repository/native/blobs.c (see there). */
interface NativeBlobs {
  openRun(
    sealed: Uint8Array,
    parts: Float64Array,
    ids: Uint8Array | null,
    key: Uint8Array,
    out: Uint8Array,
  ): Promise<Array<string | null>>;
  sealRun(
    plain: Uint8Array,
    lengths: Float64Array,
    ids: Uint8Array | null,
    compress: boolean,
    key: Uint8Array,
    out: Uint8Array,
  ): Promise<Float64Array | number>;
}

const PART = 4;
const addon = loadNativeAddon<NativeBlobs>('blobs');

/** Whether blobs are sealed and opened by the addon (no worker threads needed). */
export const sealsNatively = addon !== undefined;

/**
 * Jobs at once: one per core, so that libuv's pool (four threads) keeps a thread for the reads
 * and writes the blobs wait for.
 */
const AT_ONCE = Math.max(1, Math.min(availableParallelism(), 3));
let running = 0;
const waiting: Array<() => void> = [];

/** Runs `job` once fewer than {@link AT_ONCE} jobs run. */
async function inTurn<T>(job: () => Promise<T>): Promise<T> {
  if (running < AT_ONCE) running++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // a slot handed over
  try {
    return await job();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** A key's 64 bytes as the addon takes them: AES-256 key, then Poly1305-AES's k and r. */
const keyBytes = new WeakMap<CryptoKey, Uint8Array>();

function bytesOf(key: CryptoKey): Uint8Array {
  let bytes = keyBytes.get(key);
  if (!bytes) {
    bytes = new Uint8Array(64);
    bytes.set(key.encrypt, 0);
    bytes.set(key.macK, 32);
    bytes.set(key.macR, 48);
    keyBytes.set(key, bytes);
  }
  return bytes;
}

/** Blob ids as the addon takes them: 32 bytes each. */
function idBytes(ids: readonly string[]): Buffer {
  const bytes = Buffer.allocUnsafe(ids.length * 32);
  for (const [i, id] of ids.entries())
    if (!/^[0-9a-f]{64}$/.test(id) || bytes.write(id, i * 32, 'hex') !== 32)
      throw new Error(`blob id ${JSON.stringify(id)} is not 64 hex digits`);
  return bytes;
}

/**
 * Opens the blobs of one run as the seal workers do ({@link SealPool.openMany}), on libuv's
 * thread pool, each blob a view of one buffer of all their plaintexts, or the Error it met.
 * `sealed` is decrypted in place: the caller's to drop afterwards. Only when
 * {@link sealsNatively}.
 */
export async function openRunNatively(
  key: CryptoKey,
  sealed: Uint8Array,
  parts: readonly SealedPart[],
  checkIds: boolean,
): Promise<Array<Buffer | Error>> {
  const layout = new Float64Array(parts.length * PART);
  const ids = checkIds ? idBytes(parts.map((part) => part.id)) : null;
  let total = 0;
  for (const [i, part] of parts.entries()) {
    layout.set([part.offset, part.length, part.uncompressedLength ?? -1, total], i * PART);
    total += plainLength(part);
  }
  const { out, errors } = await inTurn(async () => {
    const out = Buffer.allocUnsafeSlow(total);
    return { out, errors: await addon!.openRun(sealed, layout, ids, bytesOf(key), out) };
  });
  let at = 0;
  const opened = parts.map((part, i) => {
    const length = plainLength(part);
    at += length;
    const error = errors[i];
    return error ? new Error(error) : out.subarray(at - length, at);
  });
  // The buffer is freed once every blob in it is released, not at a later garbage collection.
  releaseAfterViews(out.buffer, opened.filter((blob) => !(blob instanceof Error)).length);
  return opened;
}

/**
 * Seals plaintexts (joined in `plain`, `lengths` long each) on libuv's thread pool: each the
 * IV, ciphertext and MAC of its zstd frame where that pays, else of itself, one after the other
 * in the returned buffer. With `ids`, nothing is sealed unless every plaintext hashes to its id.
 */
async function sealRunNatively(
  key: CryptoKey,
  plain: Uint8Array,
  lengths: readonly number[],
  compress: boolean,
  ids: readonly string[] | undefined,
): Promise<{ out: Buffer<ArrayBuffer>; stored: Float64Array } | { mismatch: number }> {
  const layout = Float64Array.from(lengths);
  const expected = ids ? idBytes(ids) : null;
  return inTurn(async () => {
    const out = Buffer.allocUnsafeSlow(plain.length + lengths.length * CRYPTO_OVERHEAD);
    const result = await addon!.sealRun(plain, layout, expected, compress, bytesOf(key), out);
    if (typeof result === 'number') {
      detach(out.buffer);
      return { mismatch: result };
    }
    return { out, stored: result };
  });
}

/**
 * The sealed bytes in a buffer of their own size when compression left most of `out` unused
 * (sealed blobs wait in their pack's buffer until it is written): a copy of the frames is cheap
 * next to compressing them.
 */
function compact(out: Buffer<ArrayBuffer>, used: number): Buffer<ArrayBuffer> {
  if (used * 2 > out.length) return out;
  const own = Buffer.allocUnsafeSlow(used);
  own.set(out.subarray(0, used));
  detach(out.buffer);
  return own;
}

/**
 * {@link SealPool}'s work without its threads: sealing and opening on libuv's thread pool
 * through the addon. Only when {@link sealsNatively}.
 */
export class NativeSealer implements Pick<
  SealPool,
  'seal' | 'sealMany' | 'open' | 'openMany' | 'grow' | 'close'
> {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async seal(
    plaintext: Uint8Array,
    compress: boolean,
    take = false,
    expectId?: string,
  ): Promise<{ sealed: readonly Buffer[]; compressed: boolean }> {
    const result = await sealRunNatively(
      this.#key,
      plaintext,
      [plaintext.length],
      compress,
      expectId === undefined ? undefined : [expectId],
    );
    if ('mismatch' in result) {
      const actual = sha256Hex(plaintext);
      if (take) release(plaintext);
      throw new RepositoryError(
        RepositoryErrorCode.BlobIdMismatch,
        `the body hashes to ${actual}, not to ${expectId}: nothing was stored`,
      );
    }
    if (take) release(plaintext);
    const length = result.stored[0]!;
    const sealed = compact(result.out, length);
    releaseAfterViews(sealed.buffer, 1); // freed once released, slack and all
    return { sealed: [sealed.subarray(0, length)], compressed: result.stored[1] === 1 };
  }

  async sealMany(
    plaintexts: readonly Uint8Array[],
    compress: boolean,
    expectIds?: readonly string[],
  ): Promise<Array<{ sealed: Buffer; compressed: boolean }>> {
    const joined = Buffer.concat(plaintexts);
    const result = await sealRunNatively(
      this.#key,
      joined,
      plaintexts.map((p) => p.length),
      compress,
      expectIds,
    );
    if ('mismatch' in result) {
      const i = result.mismatch;
      throw new RepositoryError(
        RepositoryErrorCode.BlobIdMismatch,
        `blob ${i + 1} of ${plaintexts.length} hashes to ${sha256Hex(plaintexts[i]!)}, not to ${expectIds![i]}: nothing was stored`,
      );
    }
    let used = 0;
    for (let i = 0; i < plaintexts.length; i++) used += result.stored[2 * i]!;
    const sealed = compact(result.out, used);
    releaseAfterViews(sealed.buffer, plaintexts.length);
    let at = 0;
    return plaintexts.map((_, i) => {
      const length = result.stored[2 * i]!;
      at += length;
      return { sealed: sealed.subarray(at - length, at), compressed: result.stored[2 * i + 1] === 1 };
    });
  }

  async open(
    sealed: Uint8Array,
    uncompressedLength: number | undefined,
    expectId: string,
    what: string,
  ): Promise<Buffer> {
    const part = {
      offset: 0,
      length: sealed.length,
      ...(uncompressedLength !== undefined ? { uncompressedLength } : {}),
      id: expectId,
    };
    const [plain] = await openRunNatively(this.#key, sealed, [part], true);
    if (plain instanceof Error)
      throw new RepositoryError(RepositoryErrorCode.Authentication, `${what} is damaged: ${plain.message}`, {
        cause: plain,
      });
    return plain!;
  }

  openMany(
    sealed: Uint8Array,
    parts: readonly SealedPart[],
    checkIds = true,
  ): Promise<Array<Buffer | Error>> {
    return openRunNatively(this.#key, sealed, parts, checkIds);
  }

  /** No threads to add. */
  grow(): void {}

  async close(): Promise<void> {}
}
