import { mkdtempSync, writeFileSync, appendFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'minio';
import { inject, beforeAll, describe, expect, it } from 'vitest';
import {
  backup,
  check,
  formatChunkerPolynomial,
  LocalBackend,
  openBackend,
  randomIrreduciblePolynomial,
  Repository,
  restore,
  listSnapshot,
  type Backend,
} from './index.ts';
import { buildFixtureTree, manifest, pseudoRandom } from './test-support/fixture-tree.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'volback-interop-'));

let source: string;
beforeAll(() => {
  source = scratch();
  buildFixtureTree(source);
});

async function initRepo(backend: Backend): Promise<Repository> {
  return Repository.init(backend, TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
}

describe('restic reads what volback writes (local backend)', () => {
  it('passes restic check --read-data, and restic restore gives back the same bytes and metadata', async () => {
    const dir = join(scratch(), 'repo');
    const repo = await initRepo(new LocalBackend(dir));
    const summary = await backup(repo, { source });
    expect(summary.errors).toEqual([]);
    expect(summary.filesNew).toBeGreaterThanOrEqual(10);

    await restic(dir, ['check', '--read-data']);
    const snapshots = JSON.parse(await restic(dir, ['snapshots', '--json'])) as Array<{
      id: string;
      paths: string[];
    }>;
    expect(snapshots.map((s) => s.id)).toEqual([summary.snapshotId]);
    expect(snapshots[0]!.paths).toEqual([source]);

    const target = scratch();
    await restic(dir, ['restore', summary.snapshotId, '--target', target]);
    expect(manifest(join(target, source))).toEqual(manifest(source));
  });

  it('volback restores its own snapshot, whole or a sub-path, with the same bytes and metadata', async () => {
    const repo = await initRepo(new LocalBackend(join(scratch(), 'repo')));
    const { snapshotId } = await backup(repo, { source });
    const whole = scratch();
    const result = await restore(await Repository.open(repo.backend, TEST_PASSWORD), {
      snapshot: snapshotId,
      target: whole,
    });
    expect(result.errors).toEqual([]);
    expect(manifest(join(whole, source))).toEqual(manifest(source));

    const sub = scratch();
    await restore(repo, { snapshot: snapshotId.slice(0, 8), target: sub, path: `${source}/app/config` });
    // hard-b's other name lies outside the restored sub-path, so here it is a single link.
    const expected = manifest(join(source, 'app/config'));
    delete expected['hard-b']!.hardlinkGroup;
    expect(manifest(sub)).toEqual(expected);
  });

  it('skips unchanged files by metadata against the parent, and reads changed ones', async () => {
    const src = scratch();
    buildFixtureTree(src);
    const repo = await initRepo(new LocalBackend(join(scratch(), 'repo')));
    const first = await backup(repo, { source: src });
    appendFileSync(join(src, 'app/compressible.log'), 'GET /changed 500\n');
    writeFileSync(join(src, 'app/new-file'), 'new\n');
    const second = await backup(repo, { source: src });
    expect(second.parentSnapshotId).toBe(first.snapshotId);
    expect(second.filesNew).toBe(1);
    expect(second.filesChanged).toBe(1);
    expect(second.filesUnmodified).toBe(first.filesNew - 1);
    // Only the changed log and the new file were read again.
    expect(second.bytesRead).toBeLessThan(2 * 1024 * 1024);
    const target = scratch();
    await restic(repo.backend.location, ['restore', 'latest', '--target', target]);
    expect(manifest(join(target, src))).toEqual(manifest(src));
  });
});

describe('volback reads what restic writes', () => {
  it('restores a restic snapshot with the same bytes and metadata', async () => {
    const dir = join(scratch(), 'repo');
    await restic(dir, ['init', '--repository-version', '2']);
    await restic(dir, ['backup', source]);
    const repo = await Repository.open(new LocalBackend(dir), TEST_PASSWORD);
    const target = scratch();
    const result = await restore(repo, { snapshot: 'latest', target });
    expect(result.errors).toEqual([]);
    expect(manifest(join(target, source))).toEqual(manifest(source));
    const listed: string[] = [];
    for await (const { path } of listSnapshot(repo, 'latest', `${source}/app/config`)) listed.push(path);
    expect(listed).toContain(`${source}/app/config/nested/deeper/leaf.txt`);
  });

  it('deduplicates against restic in both directions: the same data adds no data blobs', async () => {
    const data = scratch();
    writeFileSync(join(data, 'db.bin'), pseudoRandom(12 * 1024 * 1024, 99));
    writeFileSync(join(data, 'small.txt'), 'small\n');
    // Either side of the size up to which volback reads a file on the walk's thread (64 KiB) and of
    // the chunker's minimum (512 KiB), and empty: each must make restic's blobs.
    for (const [i, size] of [0, 1, 65_535, 65_536, 65_537, 524_287, 524_288, 700_000].entries())
      writeFileSync(join(data, `sized-${i}.bin`), pseudoRandom(size, 100 + i));

    // restic first, then volback into restic's repository.
    const dir = join(scratch(), 'repo');
    await restic(dir, ['init', '--repository-version', '2']);
    await restic(dir, ['backup', data]);
    const repo = await Repository.open(new LocalBackend(dir), TEST_PASSWORD);
    const ours = await backup(repo, { source: data, parent: null });
    expect(ours.bytesRead).toBeGreaterThan(12 * 1024 * 1024);
    expect(ours.bytesAdded).toBe(0);

    // volback first, then restic into volback's repository.
    const dir2 = join(scratch(), 'repo');
    await backup(await initRepo(new LocalBackend(dir2)), { source: data });
    const stats = JSON.parse(
      await restic(dir2, ['backup', '--json', '--force', data]).then((out) => out.trim().split('\n').at(-1)!),
    ) as {
      data_added: number;
      data_blobs: number;
    };
    expect(stats.data_blobs).toBe(0);
    await restic(dir2, ['check', '--read-data']);
  });
});

describe('S3 backend on the real MinIO', () => {
  it('writes a repository restic checks and restores over S3, and restic writes one volback reads', async () => {
    const h = inject('harness');
    const bucket = `interop-${Date.now()}`;
    const client = new Client({
      endPoint: h.minioEndpoint,
      port: h.minioPort,
      useSSL: false,
      accessKey: h.minioAccessKey,
      secretKey: h.minioSecretKey,
    });
    await client.makeBucket(bucket);
    const env = { AWS_ACCESS_KEY_ID: h.minioAccessKey, AWS_SECRET_ACCESS_KEY: h.minioSecretKey };
    const location = `s3:${h.minioUrl}/${bucket}/volback`;
    const repo = await initRepo(openBackend(location, env));
    const { snapshotId } = await backup(repo, { source });
    await repo.backend.close();
    await restic(location, ['check', '--read-data'], env);
    const target = scratch();
    await restic(location, ['restore', snapshotId, '--target', target], env);
    expect(manifest(join(target, source))).toEqual(manifest(source));

    const resticLocation = `s3:${h.minioUrl}/${bucket}/restic`;
    await restic(resticLocation, ['init', '--repository-version', '2'], env);
    await restic(resticLocation, ['backup', source], env);
    const theirs = await Repository.open(openBackend(resticLocation, env), TEST_PASSWORD);
    const report = await check(theirs, { readDataFraction: 1 });
    expect(report.errors).toEqual([]);
    const back = scratch();
    await restore(theirs, { snapshot: 'latest', target: back });
    expect(manifest(join(back, source))).toEqual(manifest(source));
    expect(readdirSync(back)).toEqual([source.split('/')[1]]);
  });
});
