import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backup,
  formatChunkerPolynomial,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  resolveTreePath,
  restore,
} from '@volback/repository';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotVerifier } from './drill-verify.ts';

/** Bytes no chunker boundary is predictable in; above 8 MiB (the largest chunk) a file has several. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('a drill compares a restored volume with its snapshot (a real repository, no gateway)', () => {
  let dir: string;
  let repo: Repository;
  let volumeTree: string;
  let target: string;

  const verifier = () => SnapshotVerifier.load(repo, volumeTree, repo.config.chunker_polynomial);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-drill-verify-'));
    repo = await Repository.init(new LocalBackend(join(dir, 'repo')), 'drill', {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    const source = join(dir, 'source');
    await mkdir(join(source, 'db/wal'), { recursive: true });
    await writeFile(join(source, 'db/big.bin'), noise(8 * 1024 * 1024 + 17, 7));
    await writeFile(join(source, 'db/wal/0001'), 'wal 1\n');
    await writeFile(join(source, 'config.json'), '{"ok":true}\n');
    await chmod(join(source, 'config.json'), 0o640);
    await writeFile(join(source, 'empty'), '');
    await symlink('db/big.bin', join(source, 'current'));
    const { snapshotId } = await backup(repo, { source, hostname: 'drill' });
    const { snapshot } = await repo.findSnapshot(snapshotId);
    volumeTree = (await resolveTreePath(repo, snapshot.tree, source)).tree;
    target = join(dir, 'restored');
    const summary = await restore(repo, { snapshot: snapshotId, target, path: source });
    expect(summary.errors).toEqual([]);
  }, 60_000);

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds every entry equal in a faithful restore, read from its directory and from a tar of it', async () => {
    const direct = await (await verifier()).compareDirectory(target);
    expect(direct).toMatchObject({ files: 4, dirs: 2, symlinks: 1, mismatchCount: 0, mismatches: [] });
    expect(direct.bytes).toBe(8 * 1024 * 1024 + 17 + 6 + 12);

    const tar = spawn('tar', ['-C', target, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const archived = await (await verifier()).compareArchive(tar.stdout);
    expect(archived).toMatchObject({ files: 4, dirs: 2, symlinks: 1, mismatchCount: 0 });
  });

  it('names each difference: a changed byte of one chunk, a mode, a missing file, an extra one, a link', async () => {
    const big = await open(join(target, 'db/big.bin'), 'r+');
    await big.write(Buffer.from([0xff ^ noise(1_500_001, 7)[1_500_000]!]), 0, 1, 1_500_000);
    await big.close();
    await chmod(join(target, 'config.json'), 0o644);
    await unlink(join(target, 'db/wal/0001'));
    await writeFile(join(target, 'stray.txt'), 'not in the snapshot');
    await unlink(join(target, 'current'));
    await symlink('elsewhere', join(target, 'current'));

    const report = await (await verifier()).compareDirectory(target);
    expect(report.mismatchCount).toBe(5);
    expect(report.mismatches).toEqual(
      expect.arrayContaining([
        {
          path: '/db/big.bin',
          problem: expect.stringMatching(/^content differs at chunk \d+ of ([2-9]|\d\d)$/),
        },
        { path: '/config.json', problem: "mode 644, the snapshot's is 640" },
        { path: '/db/wal/0001', problem: 'missing' },
        { path: '/stray.txt', problem: 'not in the snapshot' },
        { path: '/current', problem: 'links to "elsewhere", the snapshot\'s to "db/big.bin"' },
      ]),
    );
  });
});
