import { availableParallelism } from 'node:os';
import { releaseAfterViews } from '../format/release.ts';
import { loadNativeAddon } from '../native-addon.ts';
import type { CryptoKey } from './crypto.ts';
import { plainLength, type SealedPart } from './seal-pool.ts';

/** libs/repository/native/open.c (see there). */
interface NativeOpen {
  openRun(
    sealed: Uint8Array,
    parts: Float64Array,
    ids: Uint8Array | null,
    key: Uint8Array,
    out: Uint8Array,
  ): Promise<Array<string | null>>;
}

const PART = 4;
const addon = loadNativeAddon<NativeOpen>('open');

/**
 * Runs opened at once: one per core, so that libuv's pool (four threads) keeps a thread for the
 * reads and writes the opened blobs wait for.
 */
const AT_ONCE = Math.max(1, Math.min(availableParallelism(), 3));
let running = 0;
const waiting: Array<() => void> = [];

/** Whether blobs are opened by the addon (no worker threads needed to read a repository). */
export const opensNatively = addon !== undefined;

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

/**
 * Opens the blobs of one run as the seal workers do ({@link SealPool.openMany}), on libuv's
 * thread pool, each blob a view of one buffer of all their plaintexts, or the Error it met.
 * `sealed` is decrypted in place: the caller's to drop afterwards. Only when
 * {@link opensNatively}.
 */
export async function openRunNatively(
  key: CryptoKey,
  sealed: Uint8Array,
  parts: readonly SealedPart[],
  checkIds: boolean,
): Promise<Array<Buffer | Error>> {
  const layout = new Float64Array(parts.length * PART);
  const ids = checkIds ? Buffer.allocUnsafe(parts.length * 32) : null;
  let total = 0;
  for (const [i, part] of parts.entries()) {
    layout.set([part.offset, part.length, part.uncompressedLength ?? -1, total], i * PART);
    total += plainLength(part);
    if (ids && ids.write(part.id, i * 32, 'hex') !== 32)
      throw new Error(`blob id ${JSON.stringify(part.id)} is not 64 hex digits`);
  }
  if (running < AT_ONCE) running++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // a slot handed over
  let errors: Array<string | null>;
  let out: Buffer<ArrayBuffer>;
  try {
    out = Buffer.allocUnsafeSlow(total);
    errors = await addon!.openRun(sealed, layout, ids, bytesOf(key), out);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
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
