import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatChunkerPolynomial, LocalBackend, randomIrreduciblePolynomial, Repository } from './index.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('saveBlobs: small blobs sealed together', () => {
  it.each([
    ['in a worker', 1],
    ['on the calling thread', 0],
  ])(
    'stores each blob once (%s), compressed where it pays; restic reads them back',
    async (_how, sealWorkers) => {
      const dir = join(mkdtempSync(join(tmpdir(), 'volback-save-blobs-')), 'repo');
      const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
        chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
        sealWorkers,
      });
      const text = Buffer.from('{"level":"info","msg":"request served"}\n'.repeat(200));
      const blobs = [randomBytes(3_000), text, Buffer.alloc(0), randomBytes(40_000)].map((data) => ({
        id: sha256(data),
        data,
      }));
      const known = randomBytes(5_000);
      await repo.saveBlob('data', known);
      let stored = 0;
      const added = await repo.saveBlobs('data', [...blobs, blobs[1]!, { id: sha256(known), data: known }], {
        onSealed: (length) => (stored += length),
      });
      expect(added).toEqual([true, true, true, true, false, false]);
      await repo.flush();
      // The text compresses: its stored length is well below its own.
      expect(stored).toBeLessThan(3_000 + 40_000 + text.length);
      expect(stored).toBeGreaterThan(3_000 + 40_000);
      for (const { id, data } of blobs) expect((await repo.loadBlob('data', id)).equals(data)).toBe(true);
      await repo.close();

      const listed = (await restic(dir, ['list', 'blobs'])).split('\n');
      for (const { id } of blobs) expect(listed).toContain(`data ${id}`);
      expect(await restic(dir, ['check', '--read-data'])).toMatch(/no errors were found/);
    },
  );
});
