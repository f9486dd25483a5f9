import { spawn, type ChildProcess } from 'node:child_process';
import type { HealthCheck } from '@volback/observability';
import { serviceEnv, serviceNodeFlags } from './service-launch.ts';
import type { ServerProcess } from './processes.ts';

/** The few log calls the supervisor makes. */
export interface SupervisorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Runs services as Node child processes ({@link serviceNodeFlags}, {@link serviceEnv} under the
 * supervisor's own environment), each in its own process group (a Ctrl-C reaches the supervisor
 * only, which stops them in order) with its output going to the supervisor's; starts one again
 * after it exits unexpectedly (with a growing pause), and stops them all on request.
 */
export class Supervisor<Name extends string> {
  readonly #log: SupervisorLogger;
  /** Each service's entry point (`services/<name>/src/main.ts`). */
  readonly #entries: Readonly<Record<Name, string>>;
  /** Groups stopped one after the other; the services of a group together. */
  readonly #stopOrder: readonly (readonly Name[])[];
  readonly #children = new Map<Name, ChildProcess>();
  /** Each service's ops port (its `VOLBACK_OPS_PORT`), for its `/readyz`. */
  readonly #opsPorts = new Map<Name, string>();
  #stopping = false;

  constructor(
    log: SupervisorLogger,
    entries: Readonly<Record<Name, string>>,
    stopOrder: readonly (readonly Name[])[],
  ) {
    this.#log = log;
    this.#entries = entries;
    this.#stopOrder = stopOrder;
  }

  start(name: Name, env: Record<string, string>, attempt = 1): void {
    if (this.#stopping) return;
    if (env['VOLBACK_OPS_PORT']) this.#opsPorts.set(name, env['VOLBACK_OPS_PORT']);
    const child = spawn(process.execPath, [...serviceNodeFlags(), this.#entries[name]], {
      env: { ...serviceEnv(), ...process.env, ...env },
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
   * Stops the services in the stop order, one group after the other: SIGTERM, SIGKILL after
   * `graceMs`; the next group only once the previous one has exited. Resolves once all have.
   */
  async stop(graceMs = 20_000): Promise<void> {
    this.#stopping = true;
    for (const group of this.#stopOrder) {
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

/**
 * Keeps a server the caller started running: one that exits while `stopping()` is false (killed,
 * crashed) is started again, with a growing pause while it fails to come up. `onRestart` gets each
 * new process.
 */
export function restartOnExit<S extends ServerProcess>(
  server: S,
  options: {
    /** How logs name it (`NATS server`). */
    readonly name: string;
    readonly log: SupervisorLogger;
    readonly start: () => Promise<S>;
    readonly stopping: () => boolean;
    readonly onRestart: (server: S) => void;
    /** Fields logged with a restart (`{ url }`). */
    readonly describe?: (server: S) => object;
  },
): void {
  const { log, name, stopping } = options;
  void server.exited.then(async (exit) => {
    if (stopping()) return;
    log.error({ pid: server.pid, ...exit }, `the ${name} exited; starting it again`);
    for (let attempt = 1; !stopping(); attempt++) {
      try {
        const again = await options.start();
        if (stopping()) {
          await again.stop();
          return;
        }
        options.onRestart(again);
        log.info({ ...options.describe?.(again), pid: again.pid, attempt }, `${name} restarted`);
        restartOnExit(again, options);
        return;
      } catch (error) {
        log.error({ err: (error as Error).message, attempt }, `could not restart the ${name}; retrying`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
      }
    }
  });
}
