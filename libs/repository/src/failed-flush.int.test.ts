import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatChunkerPolynomial, LocalBackend, randomIrreduciblePolynomial, Repository } from './index.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

/** Every pack file under data/. */
const packsIn = (dir: string): string[] =>
  readdirSync(join(dir, 'data'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(dir, 'data', d.name)));

describe('a flush that fails leaves no pack behind that no index names', () => {
  it('removes the packs it wrote when their index cannot be written; restic check passes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-failed-flush-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    await repo.saveBlob('data', randomBytes(64 * 1024));
    await repo.flush();
    const indexed = packsIn(dir);
    expect(indexed).toHaveLength(1);

    // The storage refuses the index (as a full disk would, after the packs went in): the index
    // directory is replaced by a link to nowhere, which no write into it can pass, root or not.
    for (let i = 0; i < 4; i++) await repo.saveBlob('data', randomBytes(256 * 1024));
    renameSync(join(dir, 'index'), join(dir, 'index.away'));
    symlinkSync(join(dir, 'nowhere'), join(dir, 'index'));
    await expect(repo.flush()).rejects.toThrow();
    rmSync(join(dir, 'index'));
    renameSync(join(dir, 'index.away'), join(dir, 'index'));
    await repo.close();

    expect(packsIn(dir)).toEqual(indexed);
    const checked = await restic(dir, ['check']);
    expect(checked).toMatch(/no errors were found/);
  });
});
