// The command as users run it: bin/volback runs the bundle scripts/build-cli.sh makes
// (tools/cli/dist), not the TypeScript sources the other tests run. This runs the bundle through
// a backup that starts both kinds of worker thread and uses the chunk cache, an incremental, a
// restore that must give back nanosecond times (the native times addon, loaded from the
// library's build directory by the bundle), and restic reading what it wrote.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { manifest } from '@volback/repository/test-support/fixture-tree.ts';
import { resticRun } from '@volback/repository/test-support/commands.ts';
import { changeOnePercent, makeDataset } from '@volback/repository/test-support/volume-shapes.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY = join(ROOT, 'tools/cli/bin/volback.mjs');
const PASSWORD = 'bundle-test-password';
/** Database files of about 2 MiB (two or more chunks: the chunk cache keeps them), small files, blobs. */
const SIZE = 64 * 1024 * 1024;

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, ...args], {
      env: { ...process.env, VOLBACK_PASSWORD: PASSWORD, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the bundled command line (tools/cli/dist)', () => {
  it('backs up with its worker threads and chunk cache, restores exactly, and restic reads it', async () => {
    // Up to date with the sources (npm test has built it already; then this costs a `find`).
    execFileSync('sh', [join(ROOT, 'scripts/build-cli.sh')], { stdio: 'inherit' });
    const work = mkdtempSync(join(tmpdir(), 'volback-bundle-'));
    const data = join(work, 'data');
    const repo = join(work, 'repo');
    const env = { VOLBACK_CACHE_DIR: join(work, 'cache') };
    // Database pages, small files and blobs: files above the inline limit start chunk workers,
    // and more than a few MiB of new blobs start seal workers.
    makeDataset('mixed', data, SIZE);
    const exact = join(data, 'exact-times');
    closeSync(openSync(exact, 'w'));
    execFileSync('touch', ['-m', '-d', '2024-02-29 12:34:56.123456789', exact]);

    expect((await run(['repo', 'init', '--repo', repo], env)).code).toBe(0);
    const full = await run(['repo', 'backup', data, '--repo', repo, '--json'], env);
    expect(full.code, full.out).toBe(0);

    changeOnePercent('mixed', data, SIZE);
    const fd = openSync(exact, 'r+');
    writeSync(fd, 'changed');
    closeSync(fd);
    execFileSync('touch', ['-m', '-d', '2024-02-29 12:34:56.987654321', exact]);
    const incremental = await run(['repo', 'backup', data, '--repo', repo, '--json'], env);
    expect(incremental.code, incremental.out).toBe(0);
    const summary = JSON.parse(incremental.out.trim().split('\n').at(-1)!) as {
      filesChanged: number;
      bytesReused: number;
    };
    expect(summary.filesChanged).toBeGreaterThan(0);
    // The chunk cache proved unchanged regions of the changed database files: the chunk worker ran.
    expect(summary.bytesReused, incremental.out).toBeGreaterThan(0);

    const target = join(work, 'restored');
    const restore = await run(['repo', 'restore', 'latest', '--repo', repo, '--target', target], env);
    expect(restore.code, restore.out).toBe(0);
    const restored = join(target, data);
    expect(manifest(restored)).toEqual(manifest(data));
    expect(statSync(join(restored, 'exact-times'), { bigint: true }).mtimeNs).toBe(
      statSync(exact, { bigint: true }).mtimeNs,
    );

    const check = await resticRun(repo, ['check', '--read-data'], { RESTIC_PASSWORD: PASSWORD });
    expect(check.code, check.stdout + check.stderr).toBe(0);
  }, 120_000);
});
