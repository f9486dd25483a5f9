import { JetStreamError, jetstreamManager, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { eventSubjectFilter, parseMessage, STREAMS } from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';
import { isDiscoveryEventType, type DiscoveryEvent } from '../domain/discovery-events.ts';
import { applyEvent, draftOf, emptyView, type PublishedView } from '../domain/published-view.ts';

/** The log calls the reader makes. */
export interface EventLogLogger {
  warn(obj: object, msg?: string): void;
}

/** Messages asked for per direct-get batch. */
const BATCH = 1000;

/** A 404 status: nothing matches the filter from that sequence on. */
function isNothingFound(error: unknown): boolean {
  return error instanceof JetStreamError && (error as JetStreamError & { code?: unknown }).code === 404;
}

/**
 * Every stored message on `filter` from the start of the event stream, in stream order
 * (JetStream batch direct get: no consumer is created, nothing is acknowledged).
 */
export async function* readStoredMessages(jsm: JetStreamManager, filter: string): AsyncGenerator<StoredMsg> {
  let seq = 1;
  for (;;) {
    let received = 0;
    let pending = 0;
    try {
      const batch = await jsm.direct.getBatch(STREAMS.events.name, {
        seq,
        next_by_subj: filter,
        batch: BATCH,
      });
      for await (const message of batch) {
        received++;
        pending = message.pending;
        seq = message.seq + 1;
        yield message;
      }
    } catch (error) {
      if (isNothingFound(error)) return;
      throw error;
    }
    // The server may send fewer than asked (a byte limit); it says how many are left.
    if (received === 0 || pending === 0) return;
  }
}

/** Every stored discovery event about one host's volumes and containers, in order per aggregate. */
export async function* readHostEvents(
  nc: NatsConnection,
  hostId: string,
  logger?: EventLogLogger,
): AsyncGenerator<DiscoveryEvent> {
  const jsm = await jetstreamManager(nc);
  for (const filter of [eventSubjectFilter('volume', hostId), eventSubjectFilter('container', hostId)]) {
    for await (const message of readStoredMessages(jsm, filter)) {
      const parsed = parseMessage(message.data);
      if (!parsed.ok) {
        logger?.warn(
          { seq: message.seq, subject: message.subject, code: parsed.error.code },
          'skipping an unreadable event',
        );
        continue;
      }
      const { envelope } = parsed.message;
      // Other events on these subjects (VolumeAtRisk, from the scheduler) are not the agent's to count.
      if (!isDiscoveryEventType(envelope.type)) continue;
      yield { type: envelope.type, id: envelope.id, data: envelope.data } as DiscoveryEvent;
    }
  }
}

/** What the event stream says the agent published about its host: the fold of its events. */
export async function readPublishedView(
  nc: NatsConnection,
  hostId: string,
  logger?: EventLogLogger,
): Promise<{ view: PublishedView; events: number }> {
  const draft = draftOf(emptyView(hostId));
  let events = 0;
  for await (const event of readHostEvents(nc, hostId, logger)) {
    applyEvent(draft, event);
    events++;
  }
  return { view: draft, events };
}
