import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from './wait.ts';

/**
 * Ports {@link freePort} draws from: below Linux's ephemeral range (32768–60999), so neither the
 * kernel's own choice for another probe nor the source port of an outgoing connection can take a
 * port between the probe and the server that binds it.
 */
const PROBE_PORTS = { first: 20_000, count: 12_000 } as const;
/** Ports this process has handed out; never handed out twice (a cluster allocates several at once). */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on loopback that this process has not handed out before. The kernel's `bind(0)`
 * may give the same port to two probes in a row once the first is closed, and a server started
 * later then finds its port taken by a neighbour's.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PROBE_PORTS.first + Math.floor(Math.random() * PROBE_PORTS.count);
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(
    `no free port on 127.0.0.1 in ${PROBE_PORTS.first}–${PROBE_PORTS.first + PROBE_PORTS.count - 1}`,
  );
}

/** How a process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A server process (NATS, MinIO, a service) started as a child, stopped by its PID. */
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
