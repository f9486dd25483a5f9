import {
  connectNats,
  drainNats,
  ensureStreamsWithRetry,
  natsHealthChecks,
  type NatsConnection,
} from '@volback/messaging';
import {
  createLogger,
  createMetrics,
  onShutdownSignals,
  startOpsServer,
  startupCheck,
  type Logger,
  type Metrics,
  type OpsServer,
  type StartupCheck,
} from '@volback/observability';
import { setFlagsFromString } from 'node:v8';
import type { NatsSettings } from './env.ts';

/** Where a service serves `/healthz`, `/readyz` and `/metrics` (`VOLBACK_OPS_HOST`, `_PORT`). */
export interface OpsSettings {
  readonly opsHost: string;
  readonly opsPort: number;
}

/** The ops endpoint, its metrics and the start-up check that keeps `/readyz` failing until done. */
export interface ServiceOps {
  readonly ops: OpsServer;
  readonly metrics: Metrics;
  readonly startup: StartupCheck;
}

/** What {@link runService} hands a service's start-up: the process's shared pieces. */
export interface ServiceProcess {
  readonly log: Logger;
  /** True once a signal arrived: start-up should stop where it is. */
  readonly stopping: boolean;
  /**
   * Starts the metrics and the ops endpoint; `/readyz` fails ("connecting to NATS") until
   * `startup.done()`. The endpoint closes on shutdown, after every {@link onStop}.
   */
  startOps(settings: OpsSettings): Promise<ServiceOps>;
  /**
   * Connects to NATS with the service's identity and creates (or updates) the streams, adding the
   * NATS checks to readiness; undefined when a signal arrived meanwhile. Drained on shutdown,
   * after the ops endpoint closed.
   */
  connectNats(
    settings: NatsSettings & { readonly streamReplicas: number },
    identity: {
      readonly name: string;
      readonly inboxPrefix: string;
      /** Gives up the first connection after this long (default: tries until a signal). */
      readonly connectTimeoutMs?: number;
    },
  ): Promise<NatsConnection | undefined>;
  /** Stops a part of the service on shutdown, before the ops endpoint and NATS; the last added first. */
  onStop(stop: () => Promise<void>): void;
  /** Closes something on shutdown once NATS is drained (a storage backend). */
  onClose(close: () => Promise<void>): void;
}

/** Options of {@link runService}. */
export interface RunServiceOptions {
  /** The service's name in logs and metrics (`scheduler`). */
  readonly service: string;
  /** How the fatal log names it (`the scheduler` could not start). */
  readonly title: string;
  /** Longest a graceful shutdown may take before the process exits anyway. */
  readonly shutdownTimeoutMs: number;
  start(process: ServiceProcess): Promise<void>;
}

/**
 * V8's flags for the services that V8 takes while running (those it reads only when it sets up
 * its heap, the young generation's size, every launcher passes: `serviceNodeFlags` of
 * `@volback/process`). One counts memory outside the JavaScript heap (ArrayBuffers: NATS
 * messages, blobs, packs) against its own, growing share of the global limit. Without it, every
 * byte of them allocated since the last full collection counts as old-generation growth, so a
 * service whose heap is 30 MiB ran a full collection every few tens of MiB a restore or a backup
 * passed through it: 12 in the agent during a 256 MiB restore, their marking and sweeping threads
 * about 0.6 CPU-s of 3. End to end, `database`, 256 MiB, two runs each: restore 1.73–1.83 instead
 * of 2.26–2.42 CPU-s, backup 3.24–3.34 instead of 3.56–3.92, the agent and the gateway each peaking
 * about 100 MiB higher (bench/README.md, "Flush, collection and batch round"). V8 later made this
 * its only behaviour. Set before the service allocates anything to speak of; the limits are
 * computed from it at every collection, in every thread of the process.
 *
 * And a fixed heap growth: a full collection once the heap (ArrayBuffers counted, above) has
 * doubled since the last, where V8 lets it grow up to fourfold while collections are cheap beside
 * the work, which they are in a service that moves bytes. What is alive in the agent and the
 * gateway stays about the same from 1 to 4 GiB of small files; the heap V8 let grow around it did
 * not. End to end, `many-small`, peak RSS MiB (bench/README.md, "Commit walk and heap growth
 * round"): 1 GiB, gateway backup 500-601 -> 422-473, agent restore 525-577 -> 435-451 (three
 * runs each, CPU time within 1 s); 4 GiB, gateway 684 / 836 -> 558 / 583 (backup /
 * restore), agent 595 / 744 -> 428 / 532 (one run each; user CPU-s +17% and +26% in the backup).
 */
const SERVICE_V8_FLAGS = ['--external-memory-accounted-in-global-limit', '--heap-growing-percent=100'];

/**
 * Runs a service process: its logger, graceful shutdown on SIGTERM/SIGINT (the service's parts,
 * then the ops endpoint, then NATS, then what must outlive NATS), and a fatal log and exit 1 when
 * start-up fails. Config errors' messages name the variable and never hold a secret.
 */
export function runService(options: RunServiceOptions): void {
  for (const flag of SERVICE_V8_FLAGS) setFlagsFromString(flag);
  const log = createLogger({ service: options.service });
  const stops: (() => Promise<void>)[] = [];
  const closes: (() => Promise<void>)[] = [];
  let ops: ServiceOps | undefined;
  let nc: NatsConnection | undefined;
  const shutdown = onShutdownSignals({
    logger: log,
    timeoutMs: options.shutdownTimeoutMs,
    async stop() {
      for (const stop of [...stops].reverse()) await stop();
      await ops?.ops.close();
      if (nc) await drainNats(nc);
      for (const close of closes) await close();
    },
  });
  const service: ServiceProcess = {
    log,
    get stopping() {
      return shutdown.stopping;
    },
    async startOps(settings) {
      const metrics = createMetrics({ service: options.service });
      // Not ready until every dependency has its own check: /readyz must not pass while NATS is awaited.
      const startup = startupCheck('connecting to NATS');
      const server = await startOpsServer({
        host: settings.opsHost,
        port: settings.opsPort,
        logger: log,
        registry: metrics.registry,
        checks: { readiness: [startup] },
      });
      ops = { ops: server, metrics, startup };
      return ops;
    },
    async connectNats(settings, identity) {
      if (!ops) throw new Error('startOps comes before connectNats');
      const connection = await connectNats({
        servers: [...settings.natsServers],
        name: identity.name,
        logger: log,
        ...settings.natsAuth,
        inboxPrefix: identity.inboxPrefix,
        ...(identity.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: identity.connectTimeoutMs }),
      });
      nc = connection;
      if (shutdown.stopping) return undefined;
      ops.startup.step('creating the streams');
      await ensureStreamsWithRetry(connection, {
        replicas: settings.streamReplicas,
        logger: log,
        stopping: () => shutdown.stopping,
      });
      for (const check of natsHealthChecks(connection)) ops.ops.addCheck('readiness', check);
      return connection;
    },
    onStop(stop) {
      stops.push(stop);
    },
    onClose(close) {
      closes.push(close);
    },
  };
  options.start(service).catch((error: Error & { code?: string }) => {
    log.fatal({ code: error.code, err: error.message }, `${options.title} could not start`);
    process.exit(1);
  });
}
