import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
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

describe('a pack staged on disk as it fills', () => {
  it('is written before it is full, read back blob for blob once flushed; restic check passes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-staged-pack-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
      sealWorkers: 0,
    });
    const blobs = Array.from({ length: 6 }, () => randomBytes(1024 * 1024));
    const ids: string[] = [];
    for (const blob of blobs) ids.push((await repo.saveBlob('data', Buffer.from(blob))).id);
    // 6 MiB held of a 16 MiB pack: the first 4 MiB and more are in the staging directory already.
    const staged = readdirSync(join(dir, '.volback-tmp'));
    expect(staged).toHaveLength(1);
    expect(statSync(join(dir, '.volback-tmp', staged[0]!)).size).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(packsIn(dir)).toEqual([]);

    await repo.flush();
    expect(readdirSync(join(dir, '.volback-tmp'))).toEqual([]);
    expect(packsIn(dir)).toHaveLength(1);
    for (const [i, id] of ids.entries())
      expect((await repo.loadBlob('data', id)).equals(blobs[i]!)).toBe(true);
    await repo.close();
    expect(await restic(dir, ['check', '--read-data'])).toMatch(/no errors were found/);
  });

  it('fails the flush when its file cannot be written, and leaves no pack and no staged file', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-staged-fail-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
      sealWorkers: 0,
    });
    await repo.saveBlob('data', randomBytes(64 * 1024));
    await repo.flush();
    const indexed = packsIn(dir);

    // The staging directory turns into a link to nowhere: no staged file can be created.
    rmSync(join(dir, '.volback-tmp'), { recursive: true });
    symlinkSync(join(dir, 'nowhere'), join(dir, '.volback-tmp'));
    const saved = [];
    for (let i = 0; i < 6; i++)
      saved.push(await repo.saveBlob('data', randomBytes(1024 * 1024)).catch((e: Error) => e));
    const failure = await repo.flush().then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure ?? saved.find((s) => s instanceof Error)).toBeInstanceOf(Error);
    rmSync(join(dir, '.volback-tmp'));
    await repo.close();

    expect(packsIn(dir)).toEqual(indexed);
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);
    expect(await restic(dir, ['check'])).toMatch(/no errors were found/);
  });
});
