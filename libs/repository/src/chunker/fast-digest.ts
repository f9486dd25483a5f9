import { xxh64 } from '@node-rs/xxhash';

/**
 * Bytes per block of a fast digest: a chunk that changed is cut again by rolling the Rabin window
 * over its changed blocks only ({@link changedSpan}).
 */
export const FAST_DIGEST_BLOCK = 64 * 1024;
/** Hex digits of one block's digest. */
const BLOCK_DIGITS = 16;

/**
 * The chunk cache's fast, non-cryptographic digest of a chunk: XXH64 (@node-rs/xxhash, native)
 * with the cache's secret seed of each {@link FAST_DIGEST_BLOCK} bytes, as 16 hex digits each, one
 * after the other. About 4× cheaper than SHA-256 here and 15× cheaper than the Rabin roll; it only
 * ever decides whether bytes are still the ones the repository holds under a known blob id, and
 * where they are not (see the repository README, "Chunk cache").
 */
export function fastDigest(bytes: Uint8Array, seed: bigint): string {
  let digest = '';
  for (let at = 0; at < bytes.length; at += FAST_DIGEST_BLOCK) {
    const block = bytes.subarray(at, at + FAST_DIGEST_BLOCK);
    digest += xxh64(block, seed).toString(16).padStart(BLOCK_DIGITS, '0');
  }
  return digest;
}

/**
 * Where a chunk of `length` bytes whose fast digest was `before` and is `now` differs: from the
 * first changed block's start to the last changed block's end (at most `length`); undefined when
 * the digests cannot be compared block by block (not of that length), or are equal.
 */
export function changedSpan(
  now: string,
  before: string,
  length: number,
): { from: number; to: number } | undefined {
  const blocks = Math.ceil(length / FAST_DIGEST_BLOCK);
  if (now.length !== blocks * BLOCK_DIGITS || before.length !== now.length) return undefined;
  let first = -1;
  let last = -1;
  for (let block = 0; block < blocks; block++) {
    const at = block * BLOCK_DIGITS;
    if (now.startsWith(before.slice(at, at + BLOCK_DIGITS), at)) continue;
    if (first < 0) first = block;
    last = block;
  }
  if (first < 0) return undefined;
  return { from: first * FAST_DIGEST_BLOCK, to: Math.min(length, (last + 1) * FAST_DIGEST_BLOCK) };
}
