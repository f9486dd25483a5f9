import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from './wait.ts';

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a probe socket'));
      });
    });
  });
}

/** How a process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A server process started by the harness, stopped by its PID. */
export interface ServerProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Settles once the process has exited, for whatever reason; lets a start fail fast. */
  readonly exited: Promise<ProcessExit>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `command` with no terminal input, output appended to `logFile`. With `ownProcessGroup`
 * a Ctrl-C at the terminal does not reach it: whoever started it stops it, in its own order.
 */
export function startProcess(
  command: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { ownProcessGroup?: boolean } = {},
): ServerProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child: ChildProcess = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    detached: options.ownProcessGroup ?? false,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  const exited = new Promise<ProcessExit>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    pid,
    logFile,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        // An unref'd timer, so a quick exit does not hold the runner open for the whole grace period.
        const killed = await Promise.race([exited.then(() => true), sleep(graceMs, false, { ref: false })]);
        if (!killed) {
          process.kill(pid, 'SIGKILL');
          await exited;
        }
      }
      // A grandchild (a containerd shim) may hold the pipes open after the exit: take what is
      // buffered, then let go of them so late output cannot write to a closed log.
      await Promise.race([closed, sleep(1_000, undefined, { ref: false })]);
      for (const stream of [child.stdout, child.stderr]) {
        stream?.unpipe(log);
        stream?.destroy();
      }
      log.end();
    },
  };
}

/** Polls `probe` until it returns true, or fails with `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(what, async () => (await probe()) || undefined, timeoutMs);
}

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
