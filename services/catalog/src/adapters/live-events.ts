import type { Subscription } from '@nats-io/nats-core';
import {
  checkEventOrigin,
  eventSubjectFilter,
  heartbeatSubjectFilter,
  parseHeartbeat,
  parseMessage,
  parseProgressSubject,
  progressSubjectFilter,
  workProgress,
  type Envelope,
  type WorkProgress,
} from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';

/** What a live stream's client wants to see. Every given filter must match. */
export interface LiveFilter {
  hostId?: string | undefined;
  volumeName?: string | undefined;
  /** Prefixes of event types (`io.volback.backup.` or a full type). */
  types?: readonly string[] | undefined;
  /** A backup or restore id: its events, and its live progress. */
  workId?: string | undefined;
  /** Live progress of all work (of `hostId` when given), not only of `workId`. */
  allProgress?: boolean | undefined;
}

/** One item of a live stream. */
export type LiveItem = { kind: 'event'; event: Envelope } | { kind: 'progress'; progress: WorkProgress };

/** True when an event passes the filter. */
export function matchesLiveFilter(event: Envelope, filter: LiveFilter): boolean {
  const data = (event.data ?? {}) as Record<string, unknown>;
  if (filter.hostId !== undefined && data['hostId'] !== filter.hostId) return false;
  if (filter.volumeName !== undefined && data['volumeName'] !== filter.volumeName) return false;
  if (filter.types?.length && !filter.types.some((t) => event.type.startsWith(t))) return false;
  if (
    filter.workId !== undefined &&
    data['backupId'] !== filter.workId &&
    data['restoreId'] !== filter.workId &&
    data['operationId'] !== filter.workId &&
    event.correlationid !== filter.workId
  )
    return false;
  return true;
}

/**
 * Fans the live events (`volback.evt.>`, core NATS: what happens from now on) and work progress
 * (`volback.progress.>`) out to subscribers, each with its own filter. One NATS subscription per
 * catalog, whatever the number of clients.
 */
export class LiveEvents {
  readonly #listeners = new Set<{ filter: LiveFilter; send: (item: LiveItem) => void }>();
  readonly #subs: Subscription[];

  constructor(nc: NatsConnection) {
    const events = nc.subscribe(eventSubjectFilter());
    const progress = nc.subscribe(progressSubjectFilter());
    // Heartbeats are not in the event log (VOLBACK_HEARTBEATS), but a live view shows them as events.
    const heartbeats = nc.subscribe(heartbeatSubjectFilter());
    this.#subs = [events, progress, heartbeats];
    void (async () => {
      for await (const msg of heartbeats) {
        if (this.#listeners.size === 0) continue;
        const parsed = parseHeartbeat(msg.subject, msg.data);
        if (!parsed.ok) continue;
        for (const l of this.#listeners)
          if (matchesLiveFilter(parsed.envelope, l.filter)) l.send({ kind: 'event', event: parsed.envelope });
      }
    })();
    void (async () => {
      for await (const msg of events) {
        if (this.#listeners.size === 0) continue;
        const parsed = parseMessage(msg.data);
        // Live, the time of receipt stands in for the stream's; a forged event is never shown.
        if (!parsed.ok || !checkEventOrigin(msg.subject, parsed.message.envelope, new Date()).ok) continue;
        const event = parsed.message.envelope;
        for (const l of this.#listeners)
          if (matchesLiveFilter(event, l.filter)) l.send({ kind: 'event', event });
      }
    })();
    void (async () => {
      for await (const msg of progress) {
        if (this.#listeners.size === 0) continue;
        let value: unknown;
        try {
          value = msg.json();
        } catch {
          continue;
        }
        const parsed = workProgress.safeParse(value);
        // `volback.progress.<H>.<workId>`: only the work the subject names (an agent publishes only
        // under its own host), and only to a client that watches that host, when it says one.
        const on = parseProgressSubject(msg.subject);
        if (!parsed.success || !on || on.workId !== parsed.data.workId) continue;
        const { hostId } = on;
        for (const l of this.#listeners) {
          const wanted = l.filter.allProgress === true || l.filter.workId === parsed.data.workId;
          if (wanted && (l.filter.hostId ?? hostId) === hostId)
            l.send({ kind: 'progress', progress: parsed.data });
        }
      }
    })();
  }

  /** Starts sending matching items to `send`; returns the function that stops it. */
  subscribe(filter: LiveFilter, send: (item: LiveItem) => void): () => void {
    const listener = { filter, send };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  close(): void {
    for (const sub of this.#subs) sub.unsubscribe();
    this.#listeners.clear();
  }
}
