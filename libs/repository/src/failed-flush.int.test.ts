import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from '@volback/testing';
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

  it('removes the packs a session already wrote when a later pack cannot be written', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-failed-pack-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
      packSize: 256 * 1024,
      sealWorkers: 0,
    });
    // The session's first packs go in (full packs are written at once, not yet indexed)…
    for (let i = 0; i < 3; i++) await repo.saveBlob('data', randomBytes(300 * 1024));
    // Full packs are uploaded in the background.
    await waitUntil('the first three packs', async () => packsIn(dir).length === 3);
    // …then the storage refuses every further pack: each data/<xx> directory without a pack is
    // replaced by a link to nowhere (what a full disk does to the next write, root or not).
    const moved: string[] = [];
    for (const sub of readdirSync(join(dir, 'data'))) {
      if (readdirSync(join(dir, 'data', sub)).length > 0) continue;
      renameSync(join(dir, 'data', sub), join(dir, `away-${sub}`));
      symlinkSync(join(dir, 'nowhere'), join(dir, 'data', sub));
      moved.push(sub);
    }
    for (let i = 0; i < 3; i++) await repo.saveBlob('data', randomBytes(300 * 1024)).catch(() => undefined);
    await expect(repo.flush()).rejects.toThrow();
    for (const sub of moved) {
      rmSync(join(dir, 'data', sub));
      renameSync(join(dir, `away-${sub}`), join(dir, 'data', sub));
    }
    await repo.close();

    expect(packsIn(dir)).toEqual([]);
    expect(await restic(dir, ['check'])).toMatch(/no errors were found/);
  });
});
