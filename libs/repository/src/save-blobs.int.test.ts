import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatChunkerPolynomial,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  RepositoryErrorCode,
} from './index.ts';
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

  it.each([
    ['in a worker', 1],
    ['on the calling thread', 0],
  ])(
    'with verify, stores nothing of a blob or batch that does not match its id (%s), and a good copy sent at the same time is stored',
    async (_how, sealWorkers) => {
      const dir = join(mkdtempSync(join(tmpdir(), 'volback-verify-blobs-')), 'repo');
      const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
        chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
        sealWorkers,
      });
      const good = randomBytes(20_000);
      const id = sha256(good);
      const bad = randomBytes(20_000);
      // A bad body and a good one for the same id at once: the bad one never counts as present.
      const [refused, stored] = await Promise.allSettled([
        repo.saveBlob('data', bad, id, { verify: true }),
        repo.saveBlob('data', good, id, { verify: true }),
      ]);
      expect(refused.status === 'rejected' && (refused.reason as { code: string }).code).toBe(
        RepositoryErrorCode.BlobIdMismatch,
      );
      expect(refused.status === 'rejected' && String(refused.reason)).toContain(sha256(bad));
      expect(stored.status === 'fulfilled' && stored.value.added).toBe(true);

      const batch = [randomBytes(1_000), randomBytes(2_000)].map((data) => ({ id: sha256(data), data }));
      const wrong = { id: sha256(Buffer.from('other')), data: randomBytes(500) };
      await expect(repo.saveBlobs('data', [...batch, wrong], { verify: true })).rejects.toMatchObject({
        code: RepositoryErrorCode.BlobIdMismatch,
        message: expect.stringContaining('blob 3 of 3') as unknown,
      });
      for (const { id: refusedId } of [...batch, wrong]) expect(repo.hasBlob('data', refusedId)).toBe(false);
      expect(await repo.saveBlobs('data', batch, { verify: true })).toEqual([true, true]);
      await repo.flush();
      expect((await repo.loadBlob('data', id)).equals(good)).toBe(true);
      await repo.close();
      expect(await restic(dir, ['check', '--read-data'])).toMatch(/no errors were found/);
    },
  );
});

describe('saveBlob: small blobs gathered into batches for the seal workers', () => {
  it('stores every blob of full and partial batches once, handed over or copied; restic reads them back', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-batched-blobs-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
      sealWorkers: 1,
    });
    // A blob over 64 KiB starts the workers at once; the small ones after it are batched.
    const large = randomBytes(100_000);
    await repo.saveBlob('data', large, sha256(large), { handOver: true });
    const small = Array.from({ length: 600 }, (_, i) =>
      i % 3 === 0 ? randomBytes(1 + ((i * 97) % 9_000)) : Buffer.from(`{"line":${i}}\n`.repeat(1 + (i % 50))),
    );
    const expected = small.map((data) => Buffer.from(data));
    let sealed = 0;
    const onSealed = () => sealed++;
    const added: boolean[] = [];
    for (const [i, data] of small.entries()) {
      const id = sha256(data);
      // Every other blob is handed over (the repository may free it), the rest are copied:
      // the caller overwrites those at once, which must not change what is stored.
      const saved = await repo.saveBlob('data', data, id, { handOver: i % 2 === 0, onSealed });
      if (i % 2 === 1) data.fill(0);
      added.push(saved.added);
      // The same blob again, while the first is still waiting in its batch.
      if (i === 10) added.push((await repo.saveBlob('data', expected[10]!, id)).added);
    }
    const tree = Buffer.from(JSON.stringify({ nodes: [] }) + '\n');
    await repo.saveBlob('tree', tree);
    await repo.flush();

    expect(added.filter((a) => !a)).toHaveLength(1);
    expect(sealed).toBe(600);
    for (const data of expected) expect((await repo.loadBlob('data', sha256(data))).equals(data)).toBe(true);
    expect((await repo.loadBlob('tree', sha256(tree))).equals(tree)).toBe(true);
    await repo.close();

    const listed = (await restic(dir, ['list', 'blobs'])).split('\n');
    for (const data of expected) expect(listed).toContain(`data ${sha256(data)}`);
    expect(await restic(dir, ['check', '--read-data'])).toMatch(/no errors were found/);
  });
});
