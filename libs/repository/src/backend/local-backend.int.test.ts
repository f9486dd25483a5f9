import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { unmountAll } from '@volback/testing';
import { describe, expect, it } from 'vitest';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { describeBackendConformance } from './backend-conformance.ts';
import { LocalBackend } from './local-backend.ts';

const run = promisify(execFile);

describeBackendConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'volback-local-backend-'));
  const root = join(dir, 'repo');
  const backend = new LocalBackend(root);
  return {
    backend,
    async writeRaw(path, data) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), data);
    },
    async cleanup() {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('LocalBackend', () => {
  it('creates restic’s directories, with the 256 data sub-directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volback-local-backend-'));
    try {
      const backend = new LocalBackend(join(dir, 'repo'));
      await backend.create();
      const top = await readdir(join(dir, 'repo'));
      expect(top).toEqual(expect.arrayContaining(['data', 'index', 'keys', 'locks', 'snapshots']));
      const data = await readdir(join(dir, 'repo', 'data'));
      expect(data.length).toBe(256);
      expect(data).toContain('00');
      expect(data).toContain('ff');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // A 1 MiB tmpfs fills up cheaply; mounting one needs root.
  it.skipIf(process.getuid?.() !== 0)(
    'maps a full disk to NoSpace and leaves no partial file behind',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'volback-local-enospc-'));
      try {
        await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
        const root = join(dir, 'repo');
        const backend = new LocalBackend(root);
        await backend.create();
        const name = `ab${randomBytes(31).toString('hex')}`;

        const error = await backend.save({ type: 'data', name }, randomBytes(2 * 1024 * 1024)).then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(error).toBeInstanceOf(RepositoryError);
        expect((error as RepositoryError).code).toBe(RepositoryErrorCode.NoSpace);
        expect(await readdir(join(root, 'data', 'ab'))).toEqual([]);
        expect(await readdir(join(root, '.volback-tmp'))).toEqual([]);
        const listed = [];
        for await (const file of backend.list('data')) listed.push(file);
        expect(listed).toEqual([]);
        // The failed save gave its space back: a small file still fits.
        await backend.save({ type: 'data', name }, Buffer.from('fits'));
        expect((await backend.load({ type: 'data', name })).toString()).toBe('fits');
      } finally {
        await unmountAll(dir);
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it('reports an unusable root as BackendUnavailable, not as a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volback-local-backend-'));
    try {
      // A file where the repository directory should be.
      await writeFile(join(dir, 'repo'), 'not a directory');
      const backend = new LocalBackend(join(dir, 'repo'));
      const error = await backend.create().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RepositoryError);
      expect((error as RepositoryError).code).toBe(RepositoryErrorCode.BackendUnavailable);
      expect((error as RepositoryError).message).toContain(join(dir, 'repo'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
