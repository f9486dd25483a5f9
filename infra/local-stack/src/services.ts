import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The services the local stack runs, by name, with their entry points. */
export const STACK_SERVICES = {
  'storage-gateway': join(ROOT, 'services/storage-gateway/src/main.ts'),
  scheduler: join(ROOT, 'services/scheduler/src/main.ts'),
  catalog: join(ROOT, 'services/catalog/src/main.ts'),
  agent: join(ROOT, 'services/agent/src/main.ts'),
} as const;
/** One of {@link STACK_SERVICES}. */
export type StackService = keyof typeof STACK_SERVICES;

/** The few log calls the supervisor makes. */
interface SupervisorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * The repository password kept in `<dataDir>/repository-password` when `VOLBACK_PASSWORD` is not
 * set: created on first start, readable by its owner only. Returns the file the gateway reads.
 */
export async function repositoryPasswordFile(dataDir: string): Promise<{ file: string; created: boolean }> {
  const file = join(dataDir, 'repository-password');
  if (existsSync(file)) {
    if ((await readFile(file, 'utf8')).trim() === '')
      throw new Error(`${file} is empty; restore it from your backup of it`);
    await chmod(file, 0o600);
    return { file, created: false };
  }
  await writeFile(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return { file, created: true };
}

/** Whether a Docker Engine answers `_ping` at `DOCKER_HOST` (unix sockets; TCP engines are assumed up). */
export function dockerAnswers(dockerHost: string, timeoutMs = 2_000): Promise<boolean> {
  if (!dockerHost.startsWith('unix://')) return Promise.resolve(true);
  const socketPath = dockerHost.slice('unix://'.length);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/**
 * Runs the stack's services as child processes (their output goes to the stack's), starts one
 * again after it exits unexpectedly (with a growing pause), and stops them all on request.
 */
export class Supervisor {
  readonly #log: SupervisorLogger;
  readonly #children = new Map<StackService, ChildProcess>();
  #stopping = false;

  constructor(log: SupervisorLogger) {
    this.#log = log;
  }

  start(name: StackService, env: Record<string, string>, attempt = 1): void {
    if (this.#stopping) return;
    const child = spawn(process.execPath, [STACK_SERVICES[name]], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
      // Its own process group: a Ctrl-C reaches the supervisor only, which stops the services
      // first and NATS last (a service whose NATS vanished first fails its shutdown noisily).
      detached: true,
    });
    this.#children.set(name, child);
    const startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (this.#children.get(name) === child) this.#children.delete(name);
      if (this.#stopping) return;
      // A service that ran for a while starts over at the shortest pause.
      const next = Date.now() - startedAt > 60_000 ? 1 : attempt + 1;
      const delayMs = Math.min(30_000, 1_000 * 2 ** (next - 1));
      this.#log.error(
        { service: name, code, signal, restartInMs: delayMs },
        'a service exited; starting it again',
      );
      setTimeout(() => this.start(name, env, next), delayMs).unref();
    });
    this.#log.info({ service: name, pid: child.pid }, 'service started');
  }

  /** SIGTERM to every service, SIGKILL after `graceMs`; resolves once all have exited. */
  async stop(graceMs = 20_000): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      [...this.#children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
