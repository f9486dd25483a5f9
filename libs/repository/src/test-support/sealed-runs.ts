import { createHash, randomBytes } from 'node:crypto';
import type { SealedPart } from '../crypto/seal-pool.ts';

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * Plaintexts for sealing tests: incompressible, compressible (sampled and not), mostly random
 * behind a compressible start, small, one byte, empty.
 */
export function blobSamples(): Buffer[] {
  return [
    randomBytes(300_000),
    Buffer.alloc(2_000_000, 'database page '),
    Buffer.from('x'.repeat(70_000)),
    Buffer.concat([Buffer.alloc(40_000, 'log line '), randomBytes(200_000)]),
    Buffer.from('a short file'),
    Buffer.alloc(1, 7),
    Buffer.alloc(0),
  ];
}

/** Sealed blobs one after the other, as a run read from a pack would hold them, and their parts. */
export function asRun(
  sealed: ReadonlyArray<{ sealed: Buffer; compressed: boolean }>,
  plains: readonly Buffer[],
): { run: Buffer; parts: SealedPart[] } {
  const parts: SealedPart[] = [];
  let offset = 0;
  for (const [i, { sealed: bytes, compressed }] of sealed.entries()) {
    parts.push({
      offset,
      length: bytes.length,
      ...(compressed ? { uncompressedLength: plains[i]!.length } : {}),
      id: sha256(plains[i]!),
    });
    offset += bytes.length;
  }
  return { run: Buffer.concat(sealed.map((s) => s.sealed)), parts };
}
