import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { unmountAll } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resticRun, volback, type CommandResult } from '../test-support/commands.ts';
import { pseudoRandom } from '../test-support/fixture-tree.ts';

const run = promisify(execFile);
const PASSWORD = 'failure-test-password';
const ENV = { VOLBACK_PASSWORD: PASSWORD, RESTIC_PASSWORD: PASSWORD };

/** Every file below `dir` with a hash of its content: a repository's complete state. */
async function snapshotOfFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, rel);
    if ((await stat(path)).isFile())
      out[rel] = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
  }
  return out;
}

function expectFailure(result: CommandResult, code: number, message: RegExp): void {
  expect({ code: result.code, stderr: result.stderr }).toEqual({
    code,
    stderr: expect.stringMatching(message),
  });
  // A clear message: one line naming the problem, no stack trace.
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('bad input: wrong password, missing or existing repository', () => {
  let dir: string;
  let repo: string;
  let source: string;
  let before: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-failure-'));
    repo = join(dir, 'repo');
    source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'a.txt'), 'some data\n');
    await writeFile(join(source, 'b.bin'), pseudoRandom(200_000, 3));
    expect((await volback(['repo', 'init', '--repo', repo], ENV)).code).toBe(0);
    expect((await volback(['repo', 'backup', source, '--repo', repo], ENV)).code).toBe(0);
    before = await snapshotOfFiles(repo);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a wrong password exits 12 with a clear message and changes nothing', async () => {
    const wrong = { VOLBACK_PASSWORD: 'not the password' };
    const commands = [
      ['snapshots'],
      ['backup', source],
      ['restore', 'latest', '--target', join(dir, 'never')],
      ['check'],
      ['forget', '--keep-last', '1'],
      ['prune'],
    ];
    const results = await Promise.all(
      commands.map((args) => volback(['repo', ...args, '--repo', repo], wrong)),
    );
    for (const result of results) {
      expectFailure(result, 12, /^volback: wrong password or no key found for .*repo\n$/);
    }
    const json = await volback(['repo', 'snapshots', '--json', '--repo', repo], wrong);
    expect(json.code).toBe(12);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'VOLBACK_REPO_WRONG_PASSWORD', message: expect.stringContaining('wrong password') },
    });
    expect(await snapshotOfFiles(repo)).toEqual(before);
    await expect(stat(join(dir, 'never'))).rejects.toThrow();
  });

  it('a missing repository exits 10 and creates nothing', async () => {
    const missing = join(dir, 'no-such-repo');
    const empty = join(dir, 'empty-dir');
    await mkdir(empty);
    const commands = [
      ['snapshots'],
      ['backup', source],
      ['check'],
      ['restore', 'latest', '--target', join(dir, 'never')],
    ];
    const results = await Promise.all(
      [missing, empty].flatMap((location) =>
        commands.map((args) => volback(['repo', ...args, '--repo', location], ENV)),
      ),
    );
    for (const result of results) {
      expectFailure(result, 10, /^volback: no repository at .* \(no config file\)\n$/);
    }
    await expect(stat(missing)).rejects.toThrow();
    expect(await readdir(empty)).toEqual([]);
    await expect(stat(join(dir, 'never'))).rejects.toThrow();
  });

  it('a missing S3 bucket exits 10', async () => {
    const h = inject('harness');
    const result = await volback(
      ['repo', 'snapshots', '--repo', `s3:${h.minioUrl}/volback-missing-${randomBytes(4).toString('hex')}`],
      {
        ...ENV,
        AWS_ACCESS_KEY_ID: h.minioAccessKey,
        AWS_SECRET_ACCESS_KEY: h.minioSecretKey,
      },
    );
    expectFailure(result, 10, /no repository at s3:/);
  });

  it('init on an existing repository fails clearly and changes nothing', async () => {
    for (const password of [PASSWORD, 'another password']) {
      const result = await volback(['repo', 'init', '--repo', repo], { VOLBACK_PASSWORD: password });
      expect(result.code).not.toBe(0);
      expectFailure(result, result.code!, /^volback: .*repo already holds a repository\n$/);
      expect(result.stdout).toBe('');
    }
    expect(await snapshotOfFiles(repo)).toEqual(before);
    const list = await volback(['repo', 'snapshots', '--json', '--repo', repo], ENV);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toHaveLength(1);
    expect((await resticRun(repo, ['check'], ENV)).code).toBe(0);
  });
});

describe('failing storage', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-storage-failure-'));
  });

  afterAll(async () => {
    if (!dir) return;
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it('an unreachable S3 endpoint fails within seconds with a clear message', async () => {
    const source = join(dir, 'small');
    await mkdir(source);
    await writeFile(join(source, 'f'), 'x');
    const env = { ...ENV, AWS_ACCESS_KEY_ID: 'volback', AWS_SECRET_ACCESS_KEY: 'unreachable' };
    for (const args of [['init'], ['snapshots'], ['backup', source], ['check', '--read-data']]) {
      const result = await volback(['repo', ...args, '--repo', 's3:http://127.0.0.1:1/bucket'], env);
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toMatch(
        /^volback: .*s3:http:\/\/127\.0\.0\.1:1\/bucket: http:\/\/127\.0\.0\.1:1 refused the connection/,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.durationMs).toBeLessThan(10_000);
    }
  });

  it('a full disk fails the backup with a no-space error; the repository stays checkable and without a snapshot', async () => {
    const repo = join(dir, 'tmpfs-repo');
    await mkdir(repo);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', repo]);
    expect((await volback(['repo', 'init', '--repo', repo], ENV)).code).toBe(0);
    const source = join(dir, 'big');
    await mkdir(source);
    // 24 MiB of incompressible data: the first 16 MiB pack does not fit in 4 MiB.
    for (let i = 0; i < 3; i++)
      await writeFile(join(source, `f${i}`), pseudoRandom(8 * 1024 * 1024, 100 + i));
    await writeFile(join(source, 'small.txt'), 'small\n');

    const result = await volback(['repo', 'backup', source, '--repo', repo], ENV);
    expectFailure(
      result,
      1,
      // A pack fails where it is written: staged as it fills, or at its last write.
      /^volback: save (data\/[0-9a-f]{2}\/[0-9a-f]{64}|a new data file \(\.volback-tmp\/data-[0-9a-f]{24}\)) in .*tmpfs-repo: no space left on device\n$/,
    );
    // The source files are fine: no warning blames them for the repository being full.
    expect(result.stderr).not.toMatch(/warning:/);

    expect(await readdir(join(repo, 'snapshots'))).toEqual([]);
    expect(await readdir(join(repo, 'locks'))).toEqual([]);
    expect(await readdir(join(repo, 'index'))).toEqual([]);
    const check = await resticRun(repo, ['check'], ENV);
    expect(check.code, check.stderr + check.stdout).toBe(0);
    expect(check.stdout).toContain('no errors were found');
    const snapshots = await resticRun(repo, ['snapshots', '--json'], ENV);
    expect(JSON.parse(snapshots.stdout)).toEqual([]);
    expect((await volback(['repo', 'check', '--repo', repo], ENV)).code).toBe(0);

    // Once there is room again, the next backup succeeds and the repository verifies.
    await run('mount', ['-o', 'remount,size=64m', repo]);
    const retry = await volback(['repo', 'backup', source, '--repo', repo, '--json'], ENV);
    expect(retry.code, retry.stderr).toBe(0);
    expect((await volback(['repo', 'prune', '--repo', repo], ENV)).code).toBe(0);
    const verified = await resticRun(repo, ['check', '--read-data'], ENV);
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
    expect(verified.stdout).not.toContain('not referenced in any index');
  });
});
