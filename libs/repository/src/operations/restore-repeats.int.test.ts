import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { Repository } from '../repository.ts';
import { backup } from './backup.ts';
import { restore } from './restore.ts';

const MiB = 1024 * 1024;

describe('restoring files whose blobs repeat', () => {
  it.each([
    ['in a worker per core', undefined],
    ['on the calling thread', 0],
  ])(
    'gives every file its bytes when one blob serves several places (%s): a written blob is freed only after its last',
    async (_how, sealWorkers) => {
      const dir = await mkdtemp(join(tmpdir(), 'volback-restore-repeats-'));
      const repo = await Repository.init(new LocalBackend(join(dir, 'repo')), 'repeats', {
        chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
        ...(sealWorkers === undefined ? {} : { sealWorkers }),
      });
      const source = join(dir, 'source');
      await mkdir(join(source, 'sub'), { recursive: true });
      // Zeros cut at the minimum size: 512 KiB blobs, all the same, within a file and across
      // files of one batch; a random tail and a random file between them.
      const files: Record<string, Buffer> = {
        'a-zeros': Buffer.alloc(2 * MiB),
        'b-zeros': Buffer.alloc(2 * MiB),
        'c-zeros-tail': Buffer.concat([Buffer.alloc(3 * MiB), randomBytes(300_000)]),
        'd-random': randomBytes(3 * MiB),
        'sub/e-zeros': Buffer.alloc(5 * MiB),
      };
      for (const [name, data] of Object.entries(files)) await writeFile(join(source, name), data);
      // Two names of one inode: restored from a stream of its own.
      await link(join(source, 'sub/e-zeros'), join(source, 'sub/f-link'));
      files['sub/f-link'] = files['sub/e-zeros']!;
      await backup(repo, { source });

      const target = join(dir, 'target');
      const summary = await restore(repo, { snapshot: 'latest', target, path: source });

      expect(summary.errors).toEqual([]);
      for (const [name, data] of Object.entries(files)) {
        expect((await readFile(join(target, name))).equals(data), name).toBe(true);
      }
      await repo.close();
    },
  );
});
