import { mkdtempSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatChunkerPolynomial,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  RepositoryErrorCode,
  type TreeNode,
} from './index.ts';
import { TEST_PASSWORD } from './test-support/restic.ts';

/** A local backend that counts its reads of pack files. */
class CountingBackend extends LocalBackend {
  packReads = 0;
  override load(...args: Parameters<LocalBackend['load']>): ReturnType<LocalBackend['load']> {
    if (args[0].type === 'data') this.packReads++;
    return super.load(...args);
  }
}

const tree = (i: number): TreeNode[] => [
  { name: `file-${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: i, content: [] },
];

describe('loadTrees: trees read together', () => {
  it('gives what loadTree gives for each id, reading neighbours in one pack at once', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-load-trees-')), 'repo');
    const backend = new CountingBackend(dir);
    const repo = await Repository.init(backend, TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await repo.saveTree(tree(i)));
    await repo.flush();
    const unknown = 'f'.repeat(64);

    backend.packReads = 0;
    const wanted = [...ids.slice(0, 40).reverse(), ids[3]!, unknown];
    const loads = repo.loadTrees(wanted);
    const results = await Promise.allSettled(loads);
    const reads = backend.packReads;

    for (const [i, id] of wanted.slice(0, -1).entries()) {
      expect(results[i]).toEqual({ status: 'fulfilled', value: await repo.loadTree(id) });
    }
    const missing = results.at(-1) as PromiseRejectedResult;
    expect(missing.status).toBe('rejected');
    expect(missing.reason.code).toBe(RepositoryErrorCode.FileNotFound);
    // Forty trees of one pack, asked in any order: one read (the unknown one reads nothing).
    expect(reads).toBe(1);
    await repo.close();
  });

  it('fails a damaged tree on its own and gives the others', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volback-load-trees-')), 'repo');
    const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await repo.saveTree(tree(i)));
    await repo.flush();
    // Flip a byte inside the third tree's ciphertext.
    const entry = repo.index.get('tree', ids[2]!)!;
    const path = join(dir, 'data', entry.packId.slice(0, 2), entry.packId);
    const fd = openSync(path, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, entry.offset + 20);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, entry.offset + 20);
    closeSync(fd);

    const results = await Promise.allSettled(repo.loadTrees(ids));

    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect((results[2] as PromiseRejectedResult).reason.code).toBe(RepositoryErrorCode.Authentication);
    expect((results[3] as PromiseFulfilledResult<TreeNode[]>).value[0]!.name).toBe('file-3');
    await repo.close();
  });
});
