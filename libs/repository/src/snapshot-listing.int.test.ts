import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ByteRange, FileHandle } from './backend/backend.ts';
import { LocalBackend, Repository } from './index.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

/** A filesystem backend that counts the snapshot files it reads. */
class CountingBackend extends LocalBackend {
  snapshotLoads = 0;
  override async load(handle: FileHandle, range?: ByteRange): Promise<Buffer> {
    if (handle.type === 'snapshots') this.snapshotLoads++;
    return super.load(handle, range);
  }
}

describe('listing the snapshots of a repository', () => {
  it('reads each snapshot file once per handle; later listings see new and forgotten ones', async () => {
    const root = mkdtempSync(join(tmpdir(), 'volback-snapshot-listing-'));
    const dir = join(root, 'repo');
    const data = join(root, 'data');
    mkdirSync(data);
    await restic(dir, ['init', '--repository-version', '2']);
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(data, 'file'), `version ${i}`);
      await restic(dir, ['backup', data, '--tag', `run-${i}`]);
    }
    const backend = new CountingBackend(dir);
    const repo = await Repository.open(backend, TEST_PASSWORD);

    const first = await repo.listSnapshots();
    expect(first.map((s) => s.snapshot.tags)).toEqual([['run-0'], ['run-1'], ['run-2']]);
    expect(backend.snapshotLoads).toBe(3);
    expect(await repo.listSnapshots()).toEqual(first);
    expect(backend.snapshotLoads).toBe(3);

    // Another process (restic) adds one and forgets one: the next listing reads only the new one.
    writeFileSync(join(data, 'file'), 'version 3');
    await restic(dir, ['backup', data, '--tag', 'run-3']);
    await restic(dir, ['forget', first[0]!.id]);
    const second = await repo.listSnapshots();
    expect(second.map((s) => s.snapshot.tags)).toEqual([['run-1'], ['run-2'], ['run-3']]);
    expect(backend.snapshotLoads).toBe(4);

    // Shared between listings, so no caller may change one.
    expect(() => {
      (second[0]!.snapshot.tags as string[]).push('changed');
    }).toThrow(TypeError);
    await repo.close();
  });
});
