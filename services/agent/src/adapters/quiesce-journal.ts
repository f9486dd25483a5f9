import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Directory of the journals, under the agent's state dir. */
export const QUIESCE_JOURNAL_DIR = 'quiesced';

/** A container a backup stopped or paused, as its journal records it. */
export interface JournalEntry {
  readonly id: string;
  readonly name: string;
  readonly action: 'stop' | 'pause';
  /** The container's `State.StartedAt` when it was quiesced: recovery leaves a container that ran again since. */
  readonly startedAt: string;
  readonly at: string;
}

/** The containers one backup (a work id) quiesced. */
export interface Journal {
  readonly version: 1;
  readonly workId: string;
  readonly containers: JournalEntry[];
}

/** The journal file of a work id: its name as is when the file system allows, else a hash. */
export function journalFileName(workId: string): string {
  const encoded = encodeURIComponent(workId);
  return encoded.length <= 200 && !encoded.startsWith('.')
    ? `${encoded}.json`
    : `sha256-${createHash('sha256').update(workId).digest('hex')}.json`;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The journals of quiesced containers, one per work id in `<stateDir>/quiesced/`: written aside,
 * synced and renamed, so a crash leaves the old journal or the new one, never half of one.
 */
export class QuiesceJournals {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, QUIESCE_JOURNAL_DIR);
  }

  /** Writes (or replaces) the journal of its work id. */
  async write(journal: Journal): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = join(this.#dir, journalFileName(journal.workId));
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(journal, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDir(this.#dir);
  }

  /** Deletes a journal file; one already gone is fine. */
  async delete(file: string): Promise<void> {
    try {
      await unlink(join(this.#dir, file));
      await syncDir(this.#dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** The journal files, sorted; what interrupted writes left (`*.tmp`) is deleted. */
  async files(): Promise<string[]> {
    let files: string[];
    try {
      files = await readdir(this.#dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const journals: string[] = [];
    for (const file of files.sort()) {
      if (file.endsWith('.tmp')) await unlink(join(this.#dir, file)).catch(() => undefined);
      else if (file.endsWith('.json')) journals.push(file);
    }
    return journals;
  }

  /** Reads a journal file: `undefined` when it is gone, an error when it is not a journal. */
  async read(file: string): Promise<Journal | undefined> {
    let journal: Journal;
    try {
      journal = JSON.parse(await readFile(join(this.#dir, file), 'utf8')) as Journal;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (
      typeof journal.workId !== 'string' ||
      !Array.isArray(journal.containers) ||
      !journal.containers.every(
        (c) => typeof c.id === 'string' && (c.action === 'stop' || c.action === 'pause'),
      )
    ) {
      throw new Error('not a quiesce journal');
    }
    return journal;
  }

  /** Renames a journal that cannot be read to `<file>.corrupt`, out of recovery's way. */
  async setAside(file: string): Promise<void> {
    const path = join(this.#dir, file);
    await rename(path, `${path}.corrupt`).catch(() => undefined);
  }
}
