import type { NatsConnection } from '@volback/messaging';
import type { HealthCheck, Logger, Metrics } from '@volback/observability';
import type { DockerEngineClient, EngineEvent, EngineWatch } from './adapters/docker-engine.ts';
import { readPublishedView } from './adapters/event-log.ts';
import { AgentEventPublisher } from './adapters/event-publisher.ts';
import type { Quiescer } from './adapters/quiesce.ts';
import { decideDiscoveryEvents } from './domain/discovery.ts';
import { canonicalJson } from './domain/event-id.ts';
import { hostRegistered, hostSeen, type HostIdentity } from './domain/host.ts';
import type { HostInventory } from './domain/inventory.ts';
import { evolveAll, type PublishedView } from './domain/published-view.ts';

/** What {@link startAgent} needs: the host's identity, an engine client, NATS. */
export interface AgentOptions {
  readonly hostId: string;
  /** Display name; the engine's host name when absent. */
  readonly hostName?: string;
  readonly agentVersion: string;
  readonly engine: DockerEngineClient;
  readonly nc: NatsConnection;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly heartbeatSeconds: number;
  /** How long to let a burst of engine events settle before looking (default 100 ms). */
  readonly settleMs?: number;
  /** Longest wait between two attempts after a failure (default 5 s). */
  readonly maxBackoffMs?: number;
  readonly clock?: () => Date;
  /**
   * The container runs volback stopped itself (the {@link Quiescer}): their stops are published
   * with `byVolback`. Without it every stop is published as someone else's.
   */
  readonly volbackStops?: Pick<Quiescer, 'stoppedRuns'>;
}

/** A running agent (discovery only; backup and restore commands are not consumed yet). */
export interface Agent {
  readonly hostId: string;
  /** Resolves once the first full discovery is in the stream. */
  readonly discovered: Promise<void>;
  /** True while the engine answers and its events are followed. */
  engineConnected(): boolean;
  /** Readiness checks: `docker-connected`, `discovery-synced`. */
  healthChecks(): HealthCheck[];
  /**
   * Announces the host and everything it has again, as if nothing had been published: after the
   * event stream was deleted and recreated, what it held (registration, volumes, containers) is
   * gone, and the catalog and the scheduler know only what is published from then on.
   */
  republish(): void;
  /** Stops following the engine, lets a look in progress finish, and resolves when all is quiet. */
  stop(): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Starts discovery on one host. It registers the host, rebuilds from the event stream what it
 * published before, looks at the engine and publishes the difference; then it follows the
 * engine's events and looks again after each burst, sends heartbeats, and catches up after the
 * engine or NATS went away (a full look, against a view rebuilt from the stream).
 */
export function startAgent(options: AgentOptions): Agent {
  const { hostId, engine, nc } = options;
  const log = options.logger.child({ component: 'discovery', hostId });
  const clock = options.clock ?? (() => new Date());
  const settleMs = options.settleMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  const backoff = (attempt: number) => Math.min(maxBackoffMs, 100 * 2 ** Math.min(attempt, 10));
  const publisher = new AgentEventPublisher({ nc, source: `volback://agent/${hostId}`, logger: log });
  const stopping = new AbortController();

  const metrics = options.metrics && {
    published: options.metrics.counter({
      name: 'agent_events_published_total',
      help: 'Discovery and host events stored in the event stream, by type.',
      labelNames: ['type'],
    }),
    looks: options.metrics.counter({
      name: 'agent_looks_total',
      help: 'Looks at the engine (list, compare, publish), by outcome.',
      labelNames: ['outcome'],
    }),
    lookSeconds: options.metrics.histogram({
      name: 'agent_look_duration_seconds',
      help: 'Time of one look at the engine, publishing included.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    engineConnected: options.metrics.gauge({
      name: 'agent_engine_connected',
      help: '1 while the Docker Engine answers and its events are followed.',
    }),
    volumes: options.metrics.gauge({
      name: 'agent_volumes',
      help: 'Volumes on the engine at the last look.',
    }),
    containers: options.metrics.gauge({
      name: 'agent_containers',
      help: 'Containers on the engine at the last look.',
    }),
  };

  let engineConnected = false;
  // Nothing is published while NATS is away (it would pile up in the client's reconnect buffer);
  // the reconnect asks for a look.
  let natsConnected = !nc.isClosed();
  let view: PublishedView | undefined;
  let rebuildNeeded = true;
  let inventory: HostInventory | undefined;
  let registeredAs: string | undefined;
  let identity: HostIdentity | undefined;
  let pendingRegistration: ReturnType<typeof hostRegistered> | undefined;
  let fullLookNeeded = true;
  const dirtyContainers = new Set<string>();
  // Volumes the engine reported destroyed, with a count per name: a look forgets only the
  // destructions it has taken into account (one that arrives during a look counts for the next).
  const destroyedVolumes = new Map<string, number>();
  // Destructions already counted: a reconnect asks for the events since the last one's second,
  // which brings some of them again; counted twice, a volume would be removed and discovered again.
  const countedDestructions = new Set<string>();

  let resolveDiscovered!: () => void;
  const discovered = new Promise<void>((resolve) => (resolveDiscovered = resolve));
  let isDiscovered = false;

  // One look at a time; requests made meanwhile are merged into the next one.
  let lookRequested = false;
  let wake: (() => void) | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  const requestLook = () => {
    lookRequested = true;
    wake?.();
  };
  const requestLookSoon = () => {
    settleTimer ??= setTimeout(() => {
      settleTimer = undefined;
      requestLook();
    }, settleMs);
  };

  const setEngineConnected = (connected: boolean) => {
    engineConnected = connected;
    metrics?.engineConnected.set(connected ? 1 : 0);
  };

  async function look(): Promise<void> {
    const now = clock();
    if (pendingRegistration) {
      await publisher.publishHostEvent(pendingRegistration, now);
      metrics?.published.inc({ type: pendingRegistration.type });
      log.info(
        { name: pendingRegistration.data.name, engine: pendingRegistration.data.engine.id },
        'host registered',
      );
      pendingRegistration = undefined;
    }
    if (rebuildNeeded || !view) {
      const started = Date.now();
      const rebuilt = await readPublishedView(nc, hostId, log);
      view = rebuilt.view;
      rebuildNeeded = false;
      log.info(
        { events: rebuilt.events, volumes: countPresent(view), ms: Date.now() - started },
        'rebuilt what was published from the event stream',
      );
    }
    if (fullLookNeeded) {
      engine.forget();
      fullLookNeeded = false;
    } else {
      engine.forget(dirtyContainers);
    }
    dirtyContainers.clear();
    const destroyed = new Map(destroyedVolumes);
    // Read before the engine: a stop the engine shows is then known if volback made it.
    const stoppedByVolback = options.volbackStops?.stoppedRuns();
    const listed = await engine.inventory();
    inventory = {
      ...listed,
      ...(destroyed.size > 0 ? { destroyedVolumes: new Set(destroyed.keys()) } : {}),
      ...(stoppedByVolback?.size ? { stoppedByVolback } : {}),
    };
    metrics?.volumes.set(inventory.volumes.size);
    metrics?.containers.set(inventory.containers.size);
    const events = decideDiscoveryEvents(view, inventory, now);
    if (events.length > 0) {
      const result = await publisher.publishObservation(events, now);
      view = evolveAll(view, result.published);
      for (const event of result.published) {
        metrics?.published.inc({ type: event.type });
        log.debug({ type: event.type, id: event.id }, 'published');
      }
      if (result.duplicate) {
        // Part of it was stored before without our knowing (a lost acknowledgement): re-read.
        rebuildNeeded = true;
        requestLook();
      }
      log.info(
        { published: result.published.length, summary: countByType(result.published) },
        'published changes',
      );
    }
    for (const [name, count] of destroyed) {
      if (destroyedVolumes.get(name) === count) destroyedVolumes.delete(name);
    }
    if (!isDiscovered) {
      isDiscovered = true;
      resolveDiscovered();
      log.info(
        { volumes: inventory.volumes.size, containers: inventory.containers.size },
        'discovery published',
      );
      beat();
    }
  }

  async function runLooks(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      if (!lookRequested) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      lookRequested = false;
      // The engine loop, or the NATS reconnect, asks for a look as soon as it is connected again.
      if (!engineConnected || !natsConnected) continue;
      const timer = metrics?.lookSeconds.startTimer();
      try {
        await look();
        failures = 0;
        metrics?.looks.inc({ outcome: 'ok' });
      } catch (error) {
        failures++;
        // After a failure the view may lag the stream (a publish that was stored unacknowledged).
        rebuildNeeded = true;
        metrics?.looks.inc({ outcome: 'failed' });
        const retryInMs = backoff(failures);
        log.warn({ err: (error as Error).message, attempt: failures, retryInMs }, 'look failed; will retry');
        clearTimeout(retryTimer);
        retryTimer = setTimeout(requestLook, retryInMs);
      } finally {
        timer?.();
      }
    }
  }

  async function runEngine(): Promise<void> {
    // Time of the last engine event, by the engine's clock (the agent's may differ from a remote
    // engine's); replayed on reconnect. The first subscription needs none: the look that follows
    // it lists everything.
    let since: number | undefined;
    let attempt = 0;
    let watch: EngineWatch | undefined;
    const stopWatch = () => watch?.stop();
    stopping.signal.addEventListener('abort', stopWatch, { once: true });
    while (!stopping.signal.aborted) {
      try {
        await engine.ping();
        const info = await engine.info();
        identity = {
          hostId,
          name: options.hostName ?? info.hostName,
          engine: info.engine,
          agentVersion: options.agentVersion,
        };
        const key = canonicalJson({ ...identity });
        if (key !== registeredAs) {
          pendingRegistration = hostRegistered(identity, clock());
          registeredAs = key;
        }
        watch = await engine.watch({
          ...(since !== undefined ? { since } : {}),
          onEvent: (event: EngineEvent) => {
            since = Math.max(since ?? 0, event.time);
            if (event.type === 'container') dirtyContainers.add(event.actor);
            if (event.type === 'volume' && event.action === 'destroy') {
              const key = `${event.actor}\u0000${event.timeNano ?? event.time}`;
              if (!countedDestructions.has(key)) {
                countedDestructions.add(key);
                // Only replays of the last second matter: a short memory is enough.
                if (countedDestructions.size > 1000) {
                  countedDestructions.delete(countedDestructions.values().next().value!);
                }
                destroyedVolumes.set(event.actor, (destroyedVolumes.get(event.actor) ?? 0) + 1);
              }
            }
            if (event.containerId) dirtyContainers.add(event.containerId);
            requestLookSoon();
          },
        });
        if (stopping.signal.aborted) watch.stop();
        setEngineConnected(true);
        if (attempt > 0) log.info({ attempts: attempt }, 'Docker Engine reachable again; catching up');
        attempt = 0;
        fullLookNeeded = true;
        requestLook();
        await watch.ended;
        if (!stopping.signal.aborted) log.warn('the Docker Engine closed its event stream');
      } catch (error) {
        if (stopping.signal.aborted) break;
        const level = attempt === 0 ? 'warn' : 'debug';
        log[level](
          { err: (error as Error).message, attempt: attempt + 1 },
          'Docker Engine unavailable; retrying',
        );
      }
      setEngineConnected(false);
      if (stopping.signal.aborted) break;
      await sleep(backoff(attempt++), stopping.signal);
    }
    stopping.signal.removeEventListener('abort', stopWatch);
  }

  async function watchNats(): Promise<void> {
    for await (const status of nc.status()) {
      if (stopping.signal.aborted) break;
      if (status.type === 'disconnect') {
        natsConnected = false;
      } else if (status.type === 'reconnect') {
        natsConnected = true;
        rebuildNeeded = true;
        requestLook();
      }
    }
  }

  async function heartbeat(): Promise<void> {
    // No heartbeat while the engine is away: the host is then not seen, and shows as offline.
    if (!isDiscovered || !inventory || !engineConnected || !natsConnected || stopping.signal.aborted) return;
    try {
      const event = hostSeen(hostId, inventory, options.heartbeatSeconds, clock());
      await publisher.publishHeartbeat(event, clock());
      metrics?.published.inc({ type: event.type });
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'heartbeat not published');
    }
  }
  let beating: Promise<void> = Promise.resolve();
  const beat = () => {
    beating = beating.then(heartbeat);
  };
  const heartbeats = setInterval(beat, options.heartbeatSeconds * 1000);

  const looks = runLooks();
  const engineLoop = runEngine();
  void watchNats();

  return {
    hostId,
    discovered,
    engineConnected: () => engineConnected,
    republish() {
      if (identity) pendingRegistration = hostRegistered(identity, clock());
      rebuildNeeded = true;
      fullLookNeeded = true;
      log.info('the event stream was recreated: announcing the host and its volumes again');
      requestLook();
    },
    healthChecks: () => [
      {
        name: 'docker-connected',
        async check() {
          if (!engineConnected) return { ok: false, detail: 'not following the Docker Engine events' };
          await engine.ping(AbortSignal.timeout(700));
          return { ok: true };
        },
      },
      {
        name: 'discovery-synced',
        async check() {
          return isDiscovered ? { ok: true } : { ok: false, detail: 'first discovery not published yet' };
        },
      },
    ],
    async stop() {
      stopping.abort();
      clearInterval(heartbeats);
      clearTimeout(settleTimer);
      clearTimeout(retryTimer);
      wake?.();
      await Promise.all([looks, engineLoop, beating]);
    },
  };
}

function countPresent(view: PublishedView): number {
  let n = 0;
  for (const record of view.volumes.values()) if (record.volume) n++;
  return n;
}

function countByType(events: readonly { type: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { type } of events) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}
