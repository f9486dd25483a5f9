import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { Repository } from '../repository.ts';
import { resticRun, type CommandResult } from './commands.ts';

/** Checks of a local repository's state after a crash, through restic and through the files themselves. */
export function repositoryState(password: string) {
  const env = { RESTIC_PASSWORD: password };
  return {
    /** `restic check <args>` passes (`--no-lock` when a stale lock of ours may still be there). */
    async expectResticCheckPasses(repo: string, args: string[] = []): Promise<CommandResult> {
      const result = await resticRun(repo, ['check', ...args], env);
      expect(result.code, `restic check ${args.join(' ')}:\n${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('no errors were found');
      return result;
    },

    /** Host names of the snapshots restic sees, sorted. */
    async visibleHosts(repo: string): Promise<string[]> {
      const result = await resticRun(repo, ['--no-lock', 'snapshots', '--json'], env);
      expect(result.code, result.stderr).toBe(0);
      return (JSON.parse(result.stdout) as Array<{ hostname: string }>).map((s) => s.hostname).sort();
    },

    /** Packs in data/ that no index names, and how many packs are indexed. */
    async packState(repo: string): Promise<{ unindexed: string[]; indexed: number }> {
      const handle = await Repository.open(new LocalBackend(repo), password);
      try {
        await handle.loadIndex();
        const indexed = handle.index.packs();
        const unindexed: string[] = [];
        for await (const { name } of handle.backend.list('data'))
          if (!indexed.has(name)) unindexed.push(name);
        return { unindexed, indexed: indexed.size };
      } finally {
        await handle.backend.close();
      }
    },
  };
}

/** Pack files in data/, read from the directory (works while a backup writes). */
export async function packCount(repo: string): Promise<number> {
  let count = 0;
  for (const sub of await readdir(join(repo, 'data')))
    count += (await readdir(join(repo, 'data', sub))).length;
  return count;
}

/** Lock files in locks/. */
export async function lockFiles(repo: string): Promise<string[]> {
  return readdir(join(repo, 'locks'));
}
