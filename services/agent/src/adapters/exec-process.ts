import { readdir, readFile } from 'node:fs/promises';
import type Dockerode from 'dockerode';

/** Pids of `pid` and its descendants, read from /proc (a local engine's processes). */
async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/**
 * Kills an exec (a hook or a dump that ran out of time) with its children. Only for a local
 * engine, whose exec pids are host pids: each is checked to be in the container's cgroup before
 * it is killed. False when nothing was killed.
 */
export async function killExec(exec: Dockerode.Exec, containerId: string): Promise<boolean> {
  try {
    const pid = (await exec.inspect()).Pid;
    if (!pid) return false;
    const inContainer = async (p: number) =>
      (await readFile(`/proc/${p}/cgroup`, 'utf8')).includes(containerId);
    if (!(await inContainer(pid))) return false;
    let killed = false;
    for (const p of await processTree(pid)) {
      try {
        if (await inContainer(p)) {
          process.kill(p, 'SIGKILL');
          killed = true;
        }
      } catch {
        // exited meanwhile
      }
    }
    return killed;
  } catch {
    return false;
  }
}

/** The exit status once the engine has it (the stream may end a moment before); undefined after `attempts` looks 20 ms apart. */
export async function execExitCode(exec: Dockerode.Exec, attempts = 50): Promise<number | undefined> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode ?? undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
