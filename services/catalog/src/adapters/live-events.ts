import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/nats-core';
import {
  checkEventOrigin,
  eventSubjectFilter,
  heartbeatSubjectFilter,
  parseHeartbeat,
  parseMessage,
  parseProgressSubject,
  progressSubjectFilter,
  STREAMS,
  workProgress,
  type Envelope,
  type WorkProgress,
} from '@volback/contracts';
import { closeWithin, type NatsConnection } from '@volback/messaging';

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
export type LiveItem =
  | { kind: 'event'; event: Envelope; /** Its sequence in `VOLBACK_EVENTS`. */ seq: number }
  /** A host's heartbeat (`VOLBACK_HEARTBEATS`, one kept per host): live only, no sequence. */
  | { kind: 'heartbeat'; event: Envelope }
  | { kind: 'progress'; progress: WorkProgress };

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
 * Fans the live events and work progress (`volback.progress.>`, core NATS, not stored) out to
 * subscribers, each with its own filter. The events are read from `VOLBACK_EVENTS` as they are
 * stored (one ordered consumer per catalog, whatever the number of clients), so each carries its
 * stream sequence: the SSE `id` a client sends back as `Last-Event-ID` to get what it missed.
 */
export class LiveEvents {
  readonly #nc: NatsConnection;
  readonly #listeners = new Set<{ filter: LiveFilter; send: (item: LiveItem) => void }>();
  readonly #progress: Subscription;
  readonly #heartbeats: Subscription;
  #messages: ConsumerMessages | undefined;
  #closed = false;
  /** Sequence of the last event read (0: none yet). */
  #seq = 0;
  readonly #started = new Date();

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    const progress = nc.subscribe(progressSubjectFilter());
    this.#progress = progress;
    // Heartbeats are not in the event log (VOLBACK_HEARTBEATS), but a live view shows them as
    // events, without a sequence (a client that comes back has no heartbeat to catch up on).
    const heartbeats = nc.subscribe(heartbeatSubjectFilter());
    this.#heartbeats = heartbeats;
    void (async () => {
      for await (const msg of heartbeats) {
        if (this.#listeners.size === 0) continue;
        const parsed = parseHeartbeat(msg.subject, msg.data);
        if (!parsed.ok) continue;
        for (const l of this.#listeners)
          if (matchesLiveFilter(parsed.envelope, l.filter))
            l.send({ kind: 'heartbeat', event: parsed.envelope });
      }
    })();
    void this.#followEvents();
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

  /** Reads the events stored from now on; after a failure (the stream deleted), again from where it was. */
  async #followEvents(): Promise<void> {
    const jsm = await jetstreamManager(this.#nc).catch(() => undefined);
    let created: string | undefined;
    for (let failures = 0; !this.#closed && !this.#nc.isClosed();) {
      try {
        const info = await jsm!.streams.info(STREAMS.events.name);
        // A stream created again restarts its sequences: follow it from its start, not our cursor.
        if (created !== undefined && info.created !== created) this.#seq = 0;
        const fromStart = created !== undefined && this.#seq === 0;
        created = info.created;
        const consumer = await jetstream(this.#nc).consumers.get(STREAMS.events.name, {
          filter_subjects: [eventSubjectFilter()],
          ...(this.#seq > 0
            ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#seq + 1 }
            : fromStart
              ? { deliver_policy: DeliverPolicy.All }
              : // What is stored from the catalog's start on, even before this consumer exists.
                { deliver_policy: DeliverPolicy.StartTime, opt_start_time: this.#started.toISOString() }),
        });
        if (this.#closed) return;
        const messages = await consumer.consume({ max_messages: 256, expires: 10_000 });
        this.#messages = messages;
        if (this.#closed) {
          await closeWithin(messages);
          return;
        }
        void (async () => {
          for await (const status of messages.status()) {
            if (
              !['ordered_consumer_recreated', 'consumer_deleted', 'heartbeats_missed'].includes(status.type)
            )
              continue;
            const now = await jsm!.streams.info(STREAMS.events.name).catch(() => undefined);
            if (now?.created !== created) await closeWithin(messages);
          }
        })().catch(() => undefined);
        for await (const msg of messages) {
          failures = 0;
          this.#seq = msg.seq;
          if (this.#listeners.size === 0) continue;
          const parsed = parseMessage(msg.data);
          // A forged event is never shown (the projection reports it).
          if (!parsed.ok || !checkEventOrigin(msg.subject, parsed.message.envelope, msg.time).ok) continue;
          const event = parsed.message.envelope;
          for (const l of this.#listeners)
            if (matchesLiveFilter(event, l.filter)) l.send({ kind: 'event', event, seq: msg.seq });
        }
      } catch {
        // The stream is missing or NATS is away: try again shortly.
      }
      if (this.#closed) return;
      failures++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures, 5))));
    }
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
    this.#closed = true;
    this.#progress.unsubscribe();
    this.#heartbeats.unsubscribe();
    if (this.#messages) void closeWithin(this.#messages);
    this.#listeners.clear();
  }
}
