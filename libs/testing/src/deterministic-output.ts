import { createHash } from 'node:crypto';

/**
 * SHA-256 and length of what `seq 1 n` prints (busybox or coreutils), computed here piece by
 * piece: a large, reproducible output a container can write and a test can check without
 * holding it.
 */
export function seqDigest(n: number): { sha256: string; size: number } {
  const hash = createHash('sha256');
  let size = 0;
  for (let start = 1; start <= n; start += 100_000) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(start + 100_000, n + 1); i++) lines.push(String(i));
    const piece = Buffer.from(`${lines.join('\n')}\n`);
    hash.update(piece);
    size += piece.length;
  }
  return { sha256: hash.digest('hex'), size };
}
