import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';

const main = new URL('./main.ts', import.meta.url).pathname;
const scratch = () => mkdtempSync(join(tmpdir(), 'volback-cli-'));

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function volback(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], {
      env: { ...process.env, VOLBACK_PASSWORD: 'cli-test-password', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

const json = <T>(run: Run): T => JSON.parse(run.stdout.toString()) as T;

async function untar(bytes: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(
          header.name,
          header.type === 'file' ? Buffer.concat(chunks).toString() : `<${header.type}>`,
        );
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return files;
}

describe('npx volback repo …', () => {
  it('initialises, backs up, lists, restores, dumps and checks a repository', async () => {
    const repo = join(scratch(), 'repo');
    const source = scratch();
    mkdirSync(join(source, 'sub'));
    writeFileSync(join(source, 'a.txt'), 'alpha\n');
    writeFileSync(join(source, 'sub/b.txt'), 'beta\n');

    const init = await volback(['repo', 'init', '--repo', repo, '--json']);
    expect(init.code).toBe(0);
    expect(json<{ version: number }>(init).version).toBe(2);

    const first = await volback(['repo', 'backup', source, '--repo', repo, '--json', '--tag', 'nightly']);
    expect(first.code).toBe(0);
    const { snapshotId } = json<{ snapshotId: string; filesNew: number }>(first);

    const snapshots = json<Array<{ id: string; tags: string[]; paths: string[] }>>(
      await volback(['repo', 'snapshots', '--repo', repo, '--json']),
    );
    expect(snapshots).toEqual([
      expect.objectContaining({ id: snapshotId, tags: ['nightly'], paths: [source] }),
    ]);

    const ls = json<Array<{ path: string; type: string }>>(
      await volback(['repo', 'ls', snapshotId.slice(0, 8), source, '--repo', repo, '--json']),
    );
    expect(ls.map((e) => e.path)).toEqual([`${source}/a.txt`, `${source}/sub`, `${source}/sub/b.txt`]);

    const target = scratch();
    const restored = await volback([
      'repo',
      'restore',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--path',
      source,
      '--json',
    ]);
    expect(restored.code).toBe(0);
    expect(json<{ files: number }>(restored).files).toBe(2);

    const dump = await volback(['repo', 'dump', 'latest', `${source}/sub`, '--repo', repo]);
    expect(dump.code).toBe(0);
    expect(await untar(dump.stdout)).toEqual(new Map([['b.txt', 'beta\n']]));

    const checked = await volback(['repo', 'check', '--read-data', '--repo', repo, '--json']);
    expect(checked.code).toBe(0);
    expect(json<{ ok: boolean; packsRead: number }>(checked)).toMatchObject({ ok: true });
  });

  it('exits with codes that mean something, and a clear message', async () => {
    const repo = join(scratch(), 'repo');
    expect((await volback(['repo', 'init', '--repo', repo])).code).toBe(0);

    const wrong = await volback(['repo', 'snapshots', '--repo', repo], { VOLBACK_PASSWORD: 'not-it' });
    expect(wrong.code).toBe(12);
    expect(wrong.stderr).toContain('wrong password');

    const missing = await volback(['repo', 'snapshots', '--repo', join(scratch(), 'nothing-here'), '--json']);
    expect(missing.code).toBe(10);
    expect(json<{ error: { code: string } }>(missing).error.code).toBe('VOLBACK_REPO_NOT_FOUND');

    const again = await volback(['repo', 'init', '--repo', repo]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds a repository');

    const usage = await volback(['repo', 'restore', 'latest', '--repo', repo]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('restore needs --target');

    const noPassword = await volback(['repo', 'snapshots', '--repo', repo], { VOLBACK_PASSWORD: '' });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('VOLBACK_PASSWORD');

    const unknown = await volback(['repo', 'frobnicate', '--repo', repo]);
    expect(unknown.code).toBe(2);
  });
});
