import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatChunkerPolynomial,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  type Backend,
} from './index.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

const BLOBS = 120_000;

async function indexFiles(backend: Backend): Promise<string[]> {
  const names: string[] = [];
  for await (const file of backend.list('index')) names.push(file.name);
  return names;
}

describe('index files written as packs land', () => {
  it('given more than 50,000 new blobs, writes index files of at most 50,000 and a pack before the flush, which counts every pack; every blob is indexed once, and restic agrees', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-index-ahead-')), 'repo');
    const backend = new LocalBackend(dir);
    const repo = await Repository.init(backend, TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
      packSize: 256 * 1024,
      sealWorkers: 1,
    });
    const blob = (n: number) => {
      const data = Buffer.from(`blob ${n}\n`);
      return { id: createHash('sha256').update(data).digest('hex'), data };
    };
    for (let start = 0; start < BLOBS; start += 256) {
      const batch = Array.from({ length: Math.min(256, BLOBS - start) }, (_, i) => blob(start + i));
      await repo.saveBlobs('data', batch);
    }
    // Before any flush, the packs that landed are named by index files already.
    await expect.poll(() => indexFiles(backend), { timeout: 30_000 }).toHaveLength(2);
    // The flush counts every pack since the last one, those indexed ahead of it too.
    const packs = await repo.flush();
    const names = await indexFiles(backend);
    expect(names).toHaveLength(3);
    let packFiles = 0;
    for await (const file of backend.list('data')) if (file.name) packFiles++;
    expect(packs).toBe(packFiles);
    await repo.close();

    // Each index file holds at most 50,000 blobs and one pack's more; together every blob once.
    const listed = await restic(dir, ['list', 'blobs']);
    expect(listed.trim().split('\n')).toHaveLength(BLOBS);
    for (const name of names) {
      const index = JSON.parse(await restic(dir, ['cat', 'index', name])) as {
        packs: Array<{ blobs: unknown[] }>;
      };
      const count = index.packs.reduce((sum, pack) => sum + pack.blobs.length, 0);
      expect(count).toBeLessThanOrEqual(50_000 + Math.max(...index.packs.map((p) => p.blobs.length)));
    }
    expect(await restic(dir, ['check'])).toMatch(/no errors were found/);

    const reopened = await Repository.open(backend, TEST_PASSWORD);
    await reopened.loadIndex();
    for (const n of [0, 49_999, 50_000, 99_999, BLOBS - 1])
      expect(reopened.hasBlob('data', blob(n).id)).toBe(true);
    expect(reopened.index.size).toBe(BLOBS);
    await reopened.close();
  }, 120_000);
});
