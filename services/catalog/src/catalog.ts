import {
  followHeartbeats,
  MessagePublisher,
  NotificationChannels,
  RestoreGrants,
  type NatsConnection,
  type StreamOptions,
} from '@volback/messaging';
import type { Logger, Metrics } from '@volback/observability';
import type { FastifyInstance } from 'fastify';
import { CatalogDatabase } from './adapters/catalog-database.ts';
import { CatalogQueries } from './adapters/catalog-queries.ts';
import { CommandSender } from './adapters/command-sender.ts';
import { EventHistory } from './adapters/event-history.ts';
import { LiveEvents } from './adapters/live-events.ts';
import { NotificationAdmin } from './adapters/notification-admin.ts';
import { startProjection, type Projection } from './adapters/projection-consumer.ts';
import { SnapshotReader } from './adapters/snapshot-reader.ts';
import { projectHeartbeat } from './projection/project-event.ts';
import { buildApi } from './http/api.ts';
import type { GuardOptions } from './http/guard.ts';

/** Options of {@link startCatalog}. */
export interface CatalogOptions {
  nc: NatsConnection;
  /** SQLite file of the read model (`:memory:` in tests). */
  databaseFile: string;
  /** This replica's id: its durable consumer is `catalog-<instanceId>`. */
  instanceId: string;
  /** Empty the read model and replay the log from the start. */
  rebuild?: boolean;
  /** Tokens and who needs them (`http/guard.ts`); no tokens: open to 127.0.0.1 and ::1 only. */
  access?: GuardOptions;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  logger?: Logger;
  metrics?: Metrics;
  now?: () => Date;
  version?: string;
  /** Time limit of one data-path request when reading snapshots. */
  dataTimeoutMs?: number;
  /** Settings the streams are recreated with if they are deleted under the catalog. */
  streams?: StreamOptions;
}

/** A running catalog: the projection, and the HTTP API (not listening yet: call `app.listen`). */
export interface Catalog {
  readonly app: FastifyInstance;
  readonly database: CatalogDatabase;
  readonly queries: CatalogQueries;
  readonly durable: string;
  /** Events of the stream the projection has not applied yet. */
  pending(): Promise<number>;
  /** Resolves once every event stored so far is applied (tests, readiness). */
  caughtUp(timeoutMs?: number): Promise<void>;
  /** Empties the read model and replays the log, while the API keeps answering. */
  rebuild(): Promise<void>;
  /** Stops the API, the projection and the live stream; closes the database (not NATS). */
  stop(): Promise<void>;
}

/** Wires the catalog: database, projection consumer, snapshot reader, command sender, live stream, API. */
export async function startCatalog(options: CatalogOptions): Promise<Catalog> {
  const log = options.logger?.child({ component: 'projection' });
  const { database, emptied } = CatalogDatabase.open(options.databaseFile, {
    rebuild: options.rebuild ?? false,
  });
  if (emptied) log?.info({ file: options.databaseFile }, 'read model is empty: replaying the event log');
  const durable = `catalog-${options.instanceId}`;
  const source = `volback://catalog/${options.instanceId}`;
  const applied = options.metrics?.counter({
    name: 'catalog_events_applied_total',
    help: 'Events applied to the read model',
    labelNames: ['type'],
  });
  const checkpointGauge = options.metrics?.gauge({
    name: 'catalog_checkpoint_sequence',
    help: 'Stream sequence of the last event applied to the read model',
  });
  const projectionOptions = {
    nc: options.nc,
    database,
    durable,
    source,
    ...(log ? { logger: log } : {}),
    ...(options.streams ? { streams: options.streams } : {}),
    onApplied: (type: string, sequence: number) => {
      applied?.inc({ type });
      checkpointGauge?.set(sequence);
    },
  };
  let projection: Projection = await startProjection(projectionOptions);
  // Liveness (VOLBACK_HEARTBEATS): each host's last heartbeat, then the new ones; read again from
  // the last per host after a rebuild, which empties the hosts.
  const heartbeatOptions = {
    nc: options.nc,
    logger: log ?? { warn: () => undefined },
    onHeartbeat: (heartbeat: Parameters<typeof projectHeartbeat>[1]) => projectHeartbeat(database, heartbeat),
  };
  let heartbeats = await followHeartbeats(heartbeatOptions);
  const queries = new CatalogQueries(database, options.now);
  const live = new LiveEvents(options.nc);
  const reader = new SnapshotReader(options.nc, {
    sessionId: `catalog-${options.instanceId}`,
    ...(options.dataTimeoutMs ? { timeoutMs: options.dataTimeoutMs } : {}),
  });
  const grants = new RestoreGrants(options.nc, { replicas: options.streams?.replicas ?? 1 });
  const publisher = new MessagePublisher(options.nc, { recreateStreams: options.streams ?? {} });
  const commands = new CommandSender(publisher, source, grants, options.now);
  const notifications = new NotificationAdmin(
    options.nc,
    new NotificationChannels(options.nc, { replicas: options.streams?.replicas ?? 1 }),
    publisher,
    source,
    options.now,
  );

  let rebuilding: Promise<void> | undefined;
  const rebuild = () => {
    rebuilding ??= (async () => {
      await projection.stop();
      await heartbeats.stop();
      database.reset();
      log?.info('read model emptied on request: replaying the event log');
      projection = await startProjection(projectionOptions);
      heartbeats = await followHeartbeats(heartbeatOptions);
    })().finally(() => (rebuilding = undefined));
    return rebuilding;
  };

  const app = await buildApi({
    queries,
    commands,
    reader,
    live,
    history: new EventHistory(options.nc),
    notifications,
    access: options.access ?? { tokens: [] },
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.now ? { now: options.now } : {}),
    version: options.version ?? '0.0.0',
    rebuild,
  });

  return {
    app,
    database,
    queries,
    durable,
    pending: () => projection.pending(),
    async caughtUp(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await projection.pending()) > 0) {
        if (Date.now() > deadline) throw new Error(`the projection did not catch up within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    rebuild,
    async stop() {
      await app.close();
      live.close();
      await heartbeats.stop();
      await projection.stop();
      database.close();
    },
  };
}
