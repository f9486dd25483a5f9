// Packs kept open between reads must still read as gone once removed, as they would without it.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OpenFiles } from './open-files.ts';

describe('OpenFiles', () => {
  it('reads ranges from a file it keeps open, and a removed or replaced file as gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-open-files-'));
    const path = join(dir, 'pack');
    writeFileSync(path, 'abcdefghij');
    const files = new OpenFiles();
    expect((await files.read(path, 2, 3)).toString()).toBe('cde');
    expect((await files.read(path, 8, 10)).toString()).toBe('ij'); // short at the end, as a read is
    rmSync(path);
    await expect(files.read(path, 0, 3)).rejects.toMatchObject({ code: 'ENOENT' });
    // Written again under the same name: the new file is read, not the one kept open before.
    writeFileSync(join(dir, 'next'), 'ABCDEFGHIJ');
    expect((await files.read(join(dir, 'next'), 0, 2)).toString()).toBe('AB');
    writeFileSync(join(dir, 'other'), 'klmnopqrst');
    renameSync(join(dir, 'other'), join(dir, 'next'));
    expect((await files.read(join(dir, 'next'), 0, 2)).toString()).toBe('kl');
    await files.closeAll();
  });
});
