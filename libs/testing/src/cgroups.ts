import { readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil } from '@volback/process';
import { killAndWait } from './processes.ts';

/** Where each cgroup hierarchy is mounted (one per v1 controller, or the single v2 tree). */
async function cgroupRoots(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === 'cgroup' || fields[2] === 'cgroup2')
    .map((fields) => fields[1])
    .filter((point): point is string => point !== undefined);
}

/** `dir` and every cgroup below it, children before their parents. */
async function cgroupTree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const children = entries.filter((entry) => entry.isDirectory()).map((entry) => join(dir, entry.name));
  return [...(await Promise.all(children.map(cgroupTree))).flat(), dir];
}

async function processesIn(cgroup: string): Promise<number[]> {
  try {
    const procs = await readFile(join(cgroup, 'cgroup.procs'), 'utf8');
    return procs.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Kills whatever still runs in the top-level cgroup `name` and removes it from every hierarchy.
 * The Docker engines we start put their containers under a cgroup parent of their own, so a
 * container whose shim died with the engine is found here rather than left running.
 */
export async function removeCgroup(name: string): Promise<void> {
  if (!/^[\w.-]+$/.test(name)) throw new Error(`not a top-level cgroup name: ${name}`);
  const trees = await Promise.all((await cgroupRoots()).map((root) => cgroupTree(join(root, name))));
  const cgroups = trees.flat();
  const pids = [...new Set((await Promise.all(cgroups.map(processesIn))).flat())];
  if (pids.length > 0) await killAndWait(pids);
  for (const cgroup of cgroups) {
    // An exited process leaves its cgroup a moment after it is reaped.
    await waitUntil(`removal of cgroup ${cgroup}`, async () => {
      try {
        await rmdir(cgroup);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      return true;
    });
  }
}
