import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HealthCheck } from '@volback/observability';

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

/**
 * The order services stop in: the agent first (it interrupts a running backup and hands its
 * command back, which needs the gateways to make what was sent durable and NATS to take the
 * command back), then the scheduler and the catalog, the gateways last of the services (every
 * other one may still read or write through them). The stack stops NATS after all of them.
 */
export const STOP_ORDER: readonly (readonly StackService[])[] = [
  ['agent'],
  ['scheduler', 'catalog'],
  ['storage-gateway'],
];

/** The few log calls the supervisor makes. */
interface SupervisorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
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
  /** Each service's ops port (its `VOLBACK_OPS_PORT`), for its `/readyz`. */
  readonly #opsPorts = new Map<StackService, string>();
  #stopping = false;

  constructor(log: SupervisorLogger) {
    this.#log = log;
  }

  start(name: StackService, env: Record<string, string>, attempt = 1): void {
    if (this.#stopping) return;
    if (env['VOLBACK_OPS_PORT']) this.#opsPorts.set(name, env['VOLBACK_OPS_PORT']);
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

  /**
   * One readiness check per service started, `service-<name>`: passes while the service's own
   * `/readyz` answers 200 (the catalog's only once its API listens), else names what fails.
   */
  readinessChecks(): HealthCheck[] {
    return [...this.#opsPorts].map(([name, port]) => ({
      name: `service-${name}`,
      async check() {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(700) });
          if (res.status === 200) return { ok: true };
          const body = (await res.json().catch(() => ({}))) as {
            checks?: { name: string; ok: boolean; detail?: string }[];
          };
          const failing = (body.checks ?? []).filter((c) => !c.ok);
          return {
            ok: false,
            detail:
              failing.map((c) => (c.detail ? `${c.name}: ${c.detail}` : c.name)).join('; ') ||
              `HTTP ${res.status}`,
          };
        } catch {
          return { ok: false, detail: 'not answering yet' };
        }
      },
    }));
  }

  /**
   * Resolves once every service's `/readyz` answers 200 (or the stack is stopping). Says which
   * are still starting, and why, every few seconds (a warning after a minute).
   */
  async waitUntilReady(): Promise<void> {
    const checks = this.readinessChecks();
    const started = Date.now();
    let lastReport = started;
    while (!this.#stopping) {
      const results = await Promise.all(checks.map(async (c) => ({ name: c.name, ...(await c.check()) })));
      const waiting = results.filter((r) => !r.ok);
      if (waiting.length === 0) return;
      if (Date.now() - lastReport >= 5_000) {
        lastReport = Date.now();
        const level = Date.now() - started > 60_000 ? 'warn' : 'info';
        this.#log[level](
          { waiting: Object.fromEntries(waiting.map((w) => [w.name.replace(/^service-/, ''), w.detail])) },
          'waiting for services to be ready',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * Stops the services in {@link STOP_ORDER}, one group after the other: SIGTERM, SIGKILL after
   * `graceMs`; the next group only once the previous one has exited. Resolves once all have.
   */
  async stop(graceMs = 20_000): Promise<void> {
    this.#stopping = true;
    for (const group of STOP_ORDER) {
      await Promise.all(
        group.map((name) => {
          const child = this.#children.get(name);
          return new Promise<void>((resolve) => {
            if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const started = Date.now();
            child.once('exit', (code, signal) => {
              clearTimeout(timer);
              this.#log.info({ service: name, code, signal, ms: Date.now() - started }, 'service stopped');
              resolve();
            });
            child.kill('SIGTERM');
          });
        }),
      );
    }
  }
}
