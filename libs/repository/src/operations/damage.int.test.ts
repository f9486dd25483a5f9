import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { Repository } from '../repository.ts';
import { resticRun, volback } from '../test-support/commands.ts';
import { pseudoRandom } from '../test-support/fixture-tree.ts';
import { listSnapshot } from './ls.ts';

const PASSWORD = 'damage-test-password';
const ENV = { VOLBACK_PASSWORD: PASSWORD, RESTIC_PASSWORD: PASSWORD };

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function backupJson(repo: string, source: string): Promise<string> {
  const result = await volback(['repo', 'backup', source, '--repo', repo, '--json'], ENV);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { snapshotId: string }).snapshotId;
}

describe('a flipped byte in a pack', () => {
  let dir: string;
  let repo: string;
  let alpha: string;
  let beta: string;
  let healthySnapshot: string;
  let damagedSnapshot: string;
  let damagedBlob: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-damage-'));
    repo = join(dir, 'repo');
    alpha = join(dir, 'alpha');
    beta = join(dir, 'beta');
    await mkdir(alpha);
    await mkdir(join(beta, 'sub'), { recursive: true });
    await writeFile(join(alpha, 'a.bin'), pseudoRandom(700_000, 1));
    await writeFile(join(alpha, 'a.txt'), 'alpha\n');
    // Over 16 MiB: at least three chunks whatever the repository's random polynomial (max 8 MiB).
    await writeFile(join(beta, 'victim.bin'), pseudoRandom(17 * 1024 * 1024, 2));
    await writeFile(join(beta, 'healthy.bin'), pseudoRandom(500_000, 3));
    await writeFile(join(beta, 'sub/healthy.txt'), 'beta\n');
    expect((await volback(['repo', 'init', '--repo', repo], ENV)).code).toBe(0);
    healthySnapshot = await backupJson(repo, alpha);
    damagedSnapshot = await backupJson(repo, beta);

    // Flip one byte in the middle of the first blob of victim.bin, found through the index.
    const handle = await Repository.open(new LocalBackend(repo), PASSWORD);
    await handle.loadIndex();
    let content: string[] = [];
    for await (const { path, node } of listSnapshot(handle, damagedSnapshot)) {
      if (path.endsWith('/victim.bin')) content = node.content ?? [];
    }
    expect(content.length).toBeGreaterThan(1);
    damagedBlob = content[0]!;
    const entry = handle.index.get('data', damagedBlob)!;
    const pack = await open(join(repo, 'data', entry.packId.slice(0, 2), entry.packId), 'r+');
    const at = entry.offset + Math.floor(entry.length / 2);
    const byte = Buffer.alloc(1);
    await pack.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0x40;
    await pack.write(byte, 0, 1, at);
    await pack.close();
    await handle.backend.close();
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('volback check --read-data names the damaged blob and the snapshot using it', async () => {
    const result = await volback(['repo', 'check', '--read-data', '--json', '--repo', repo], ENV);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      damagedBlobs: string[];
      damagedSnapshots: string[];
      errors: string[];
    };
    expect(report.ok).toBe(false);
    expect(report.damagedBlobs).toEqual([damagedBlob]);
    expect(report.damagedSnapshots).toEqual([damagedSnapshot]);
    expect(report.errors.join('\n')).toContain(damagedBlob);

    const text = await volback(['repo', 'check', '--read-data', '--repo', repo], ENV);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(damagedBlob);
    expect(text.stdout).toContain(`damaged snapshots: ${damagedSnapshot.slice(0, 8)}`);
    expect(text.stdout).not.toContain(healthySnapshot.slice(0, 8));
    expect(text.stdout).toContain('the repository has ERRORS');
  });

  it('restic check --read-data fails too', async () => {
    const result = await resticRun(repo, ['check', '--read-data'], ENV);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/Fatal: repository contains errors/);
  });

  it('a structure-only check passes: headers and index are intact', async () => {
    expect((await volback(['repo', 'check', '--repo', repo], ENV)).code).toBe(0);
  });

  it('the unaffected snapshot restores completely', async () => {
    const target = join(dir, 'restore-alpha');
    const result = await volback(
      ['repo', 'restore', healthySnapshot, '--target', target, '--repo', repo],
      ENV,
    );
    expect(result.code, result.stderr).toBe(0);
    const restored = join(target, alpha);
    expect(sha256(await readFile(join(restored, 'a.bin')))).toBe(
      sha256(await readFile(join(alpha, 'a.bin'))),
    );
    expect(await readFile(join(restored, 'a.txt'), 'utf8')).toBe('alpha\n');
  });

  it('the damaged snapshot restores every file but the damaged one, and fails loudly naming it', async () => {
    const target = join(dir, 'restore-beta');
    const result = await volback(
      ['repo', 'restore', damagedSnapshot, '--target', target, '--repo', repo],
      ENV,
    );
    expect(result.code).toBe(1);
    const restored = join(target, beta);
    expect(result.stderr).toContain(`${join(restored, 'victim.bin')}:`);
    expect(result.stderr).toContain(damagedBlob);
    expect(result.stderr).toMatch(/the file was not restored/);
    expect(result.stderr).not.toMatch(/healthy/);
    expect(result.stdout).toMatch(/1 entries FAILED to restore/);
    // No half-written file is left where the damaged one belongs.
    expect((await readdir(restored)).sort()).toEqual(['healthy.bin', 'sub']);
    expect(sha256(await readFile(join(restored, 'healthy.bin')))).toBe(
      sha256(await readFile(join(beta, 'healthy.bin'))),
    );
    expect(await readFile(join(restored, 'sub/healthy.txt'), 'utf8')).toBe('beta\n');
  });

  it('restoring only the healthy part of the damaged snapshot succeeds', async () => {
    const target = join(dir, 'restore-beta-sub');
    const result = await volback(
      ['repo', 'restore', damagedSnapshot, '--target', target, '--path', join(beta, 'sub'), '--repo', repo],
      ENV,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(target, 'healthy.txt'), 'utf8')).toBe('beta\n');
  });
});
