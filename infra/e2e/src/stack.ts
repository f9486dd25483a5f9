import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Subscription } from '@nats-io/nats-core';
import {
  createCommand,
  parseMessage,
  progressSubject,
  SUBJECT_ROOTS,
  type CommandDefinition,
  type Envelope,
  type WorkProgress,
} from '@volback/contracts';
import { drainNats, MessagePublisher, type NatsConnection } from '@volback/messaging';
import {
  freePort,
  serviceEnv,
  serviceNodeFlags,
  startProcess,
  waitUntil,
  type DockerEngine,
  type NatsServer,
  type ServerProcess,
} from '@volback/testing';
import type { z } from 'zod';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Entry points of the services, run as processes exactly as deployed. */
export const SERVICE_MAINS = {
  agent: join(ROOT, 'services/agent/src/main.ts'),
  gateway: join(ROOT, 'services/storage-gateway/src/main.ts'),
  catalog: join(ROOT, 'services/catalog/src/main.ts'),
  scheduler: join(ROOT, 'services/scheduler/src/main.ts'),
} as const;

/** The `volback` command line, run as `npx volback` runs it. */
export const CLI_MAIN = join(ROOT, 'tools/cli/src/main.ts');

/** A service process of a test stack. */
export interface ServiceProcess extends ServerProcess {
  readonly name: string;
  /** `http://127.0.0.1:<port>` of its /healthz, /readyz, /metrics. */
  readonly opsUrl: string;
  /** kill -9: no shutdown code runs. */
  kill(): Promise<void>;
  /** What it logged so far. */
  log(): Promise<string>;
}

/**
 * Starts a service's main.ts as every launcher does (`serviceNodeFlags`, `serviceEnv`), with `env`
 * (plus PATH), and waits until its /readyz answers 200.
 */
export async function startService(
  service: keyof typeof SERVICE_MAINS,
  name: string,
  env: Record<string, string>,
  logDir: string,
  readyTimeoutMs = 30_000,
): Promise<ServiceProcess> {
  const port = await freePort();
  const logFile = join(logDir, `${name}.log`);
  const proc = startProcess(process.execPath, [...serviceNodeFlags(), SERVICE_MAINS[service]], logFile, {
    ...serviceEnv(),
    PATH: process.env['PATH'] ?? '',
    LOG_LEVEL: 'debug',
    VOLBACK_OPS_HOST: '127.0.0.1',
    VOLBACK_OPS_PORT: String(port),
    ...env,
  });
  const opsUrl = `http://127.0.0.1:${port}`;
  const log = () => readFile(logFile, 'utf8').catch(() => '');
  let exitedEarly = false;
  void proc.exited.then(() => (exitedEarly = true));
  try {
    await waitUntil(
      `${name} to be ready`,
      async () => {
        if (exitedEarly) throw new Error(`${name} exited:\n${(await log()).slice(-4000)}`);
        return (await fetch(`${opsUrl}/readyz`)).status === 200;
      },
      readyTimeoutMs,
    );
  } catch (error) {
    await proc.stop(1_000);
    throw new Error(
      `${name} did not become ready: ${(error as Error).message}\n${(await log()).slice(-4000)}`,
      {
        cause: error,
      },
    );
  }
  return {
    ...proc,
    name,
    opsUrl,
    log,
    async kill() {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await proc.exited;
      await proc.stop(0);
    },
  };
}

/** Every event published while it is open, in order, with waits on what a test expects. */
export class EventLog {
  readonly events: Envelope[] = [];
  readonly #sub: Subscription;
  #waiters = new Set<() => void>();

  constructor(nc: NatsConnection) {
    const sub = nc.subscribe(`${SUBJECT_ROOTS.events}.>`);
    this.#sub = sub;
    void (async () => {
      for await (const msg of sub) {
        const parsed = parseMessage(msg.data);
        if (!parsed.ok) continue;
        this.events.push(parsed.message.envelope);
        for (const wake of this.#waiters) wake();
      }
    })();
  }

  /** Events of one piece of work (its correlation id, or a data field equal to it). */
  of(workId: string): Envelope[] {
    return this.events.filter((e) => {
      const data = e.data as Record<string, unknown>;
      return e.correlationid === workId || data['backupId'] === workId || data['restoreId'] === workId;
    });
  }

  /** Waits for the first event matching `predicate` (already seen ones count). */
  async waitFor(what: string, predicate: (e: Envelope) => boolean, timeoutMs = 60_000): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.map((e) => e.type).join(', ');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw: ${seen.slice(-2000)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000));
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  /** Waits for a backup's or restore's final event. */
  outcome(workId: string, timeoutMs = 120_000): Promise<Envelope> {
    return this.waitFor(
      `the outcome of ${workId}`,
      (e) => this.of(workId).includes(e) && /\.(completed|partially-failed|failed)\.v\d+$/.test(e.type),
      timeoutMs,
    );
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}

/** Sends a command into the commands stream, as the scheduler or the catalog would. */
export async function sendCommand<Schema extends z.ZodType>(
  nc: NatsConnection,
  definition: CommandDefinition<string, string, Schema>,
  data: z.input<Schema>,
): Promise<void> {
  await new MessagePublisher(nc).publish(createCommand(definition, data, { source: 'volback://e2e-test' }));
}

/** Resolves once a backup or restore of `hostId` has moved `bytes` (as its progress messages say). */
export function progressReached(
  nc: NatsConnection,
  hostId: string,
  workId: string,
  bytes: number,
): Promise<void> {
  const sub = nc.subscribe(progressSubject(hostId, workId));
  return (async () => {
    for await (const msg of sub) {
      if ((JSON.parse(msg.string()) as WorkProgress).bytes >= bytes) break;
    }
    sub.unsubscribe();
  })();
}

/** A catalog process and the URL of its API. */
export interface CatalogProcess extends ServiceProcess {
  /** `http://127.0.0.1:<port>` of the HTTP API. */
  readonly url: string;
}

/** Starts a catalog on a free loopback port (API and ops), its data in `dataDir`. */
export async function startCatalogService(
  name: string,
  env: Record<string, string>,
  dataDir: string,
  logDir: string,
): Promise<CatalogProcess> {
  const port = await freePort();
  const service = await startService(
    'catalog',
    name,
    {
      VOLBACK_DATA_DIR: dataDir,
      VOLBACK_CATALOG_HOST: '127.0.0.1',
      VOLBACK_CATALOG_PORT: String(port),
      ...env,
    },
    logDir,
  );
  return { ...service, url: `http://127.0.0.1:${port}` };
}

/**
 * A scheduler that starts backups only when asked ("back up now" goes through it): it protects
 * only labelled volumes, so the unlabelled volumes of a test are never backed up on a schedule.
 */
export function startOnDemandScheduler(
  name: string,
  natsUrl: string,
  logDir: string,
): Promise<ServiceProcess> {
  return startService(
    'scheduler',
    name,
    { VOLBACK_NATS_URL: natsUrl, VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled', VOLBACK_SCHEDULER_ID: name },
    logDir,
  );
}

/**
 * A scheduler for tests that run many backups: only labelled volumes, the first backup after a
 * second, no jitter, a 3-second lease, and failed backups retried quickly up to 10 times.
 */
export const FAST_SCHEDULER_ENV = {
  VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled',
  VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '1',
  VOLBACK_SCHEDULER_JITTER_SECONDS: '0',
  VOLBACK_SCHEDULER_LEASE_SECONDS: '3',
  VOLBACK_SCHEDULER_RETRY_DELAY_SECONDS: '1',
  VOLBACK_SCHEDULER_RETRY_MAX_DELAY_SECONDS: '4',
  VOLBACK_SCHEDULER_RETRY_ATTEMPTS: '10',
} as const;

/** What a test's `beforeAll` started, any part of it possibly missing (a start that failed). */
export interface TestStackParts {
  readonly events?: EventLog | undefined;
  readonly services: Iterable<ServiceProcess>;
  readonly nc?: NatsConnection | undefined;
  readonly engine?: DockerEngine | undefined;
  readonly nats?: NatsServer | undefined;
  /** Removed unless `VOLBACK_E2E_KEEP` is set. */
  readonly dir?: string | undefined;
}

/** Stops what a test started, services first, then NATS and the engine; removes its directory. */
export async function stopTestStack(parts: TestStackParts): Promise<void> {
  parts.events?.close();
  await Promise.allSettled([...parts.services].map((s) => s.stop(5_000)));
  if (parts.nc) await drainNats(parts.nc);
  await Promise.allSettled([parts.engine?.stop(), parts.nats?.stop()]);
  if (parts.dir && !process.env['VOLBACK_E2E_KEEP']) await rm(parts.dir, { recursive: true, force: true });
}
