import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { waitUntil } from '@volback/process';

/** The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`…), or undefined when there is no such process. */
async function processState(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may itself contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ', 1)[0];
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs; a zombie counts as dead, since only its parent can still reap it. */
export async function isAlive(pid: number): Promise<boolean> {
  const state = await processState(pid);
  return state !== undefined && state !== 'Z';
}

/**
 * PIDs of the live processes whose command line contains `text`, such as a private directory only
 * they were given. Lets the harness find what a server left behind without matching by name.
 */
export async function pidsMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(text) && (await isAlive(pid))) pids.push(pid);
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

/** SIGKILLs `pids` and waits until none of them is alive any more. */
export async function killAndWait(pids: readonly number[], timeoutMs = 10_000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await waitUntil(
    `processes ${pids.join(', ')} to exit`,
    async () => (await Promise.all(pids.map(isAlive))).every((alive) => !alive),
    timeoutMs,
  );
}

/** Runs a command to its end (no input), with its output (stdout and stderr, interleaved). */
export function runToEnd(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}
