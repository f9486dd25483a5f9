import {
  ContractViolationError,
  createEvent,
  createHeartbeat,
  findDefinition,
  type EventDefinition,
  type OutgoingMessage,
} from '@volback/contracts';
import { MAX_ATOMIC_BATCH, MessagePublisher, type NatsConnection } from '@volback/messaging';
import type { DiscoveryEvent, HostEvent } from '../domain/discovery-events.ts';

/** The few log calls the publisher makes; a pino logger fits. */
export interface PublisherLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Outcome of publishing one observation. */
export interface ObservationPublished {
  /** Events now in the stream, in order: the ones to evolve the published view with. */
  readonly published: readonly DiscoveryEvent[];
  /**
   * True when JetStream reported a batch as stored before: the view may lag the stream (an
   * earlier publish whose acknowledgement was lost), so it should be rebuilt from the stream.
   */
  readonly duplicate: boolean;
  /** Events left out because their data breaks the contract (each logged). */
  readonly rejected: number;
}

function aggregateKey(event: DiscoveryEvent): string {
  return 'volumeName' in event.data
    ? `volume/${event.data.volumeName}`
    : `container/${event.data.containerId}`;
}

/**
 * Publishes the agent's events. The events of one observation go out as atomic batches (all or
 * none, in order; JetStream caps a batch at 1000), each with its deterministic id as
 * `Nats-Msg-Id`, so a retried or repeated observation is stored once.
 */
export class AgentEventPublisher {
  readonly #publisher: MessagePublisher;
  readonly #source: string;
  readonly #logger: PublisherLogger;
  readonly #timeoutMs: number;
  /** Ids of refused events already logged, so a bad label is reported once, not at every look. */
  readonly #reported = new Set<string>();

  constructor(options: { nc: NatsConnection; source: string; logger: PublisherLogger; timeoutMs?: number }) {
    this.#publisher = new MessagePublisher(options.nc);
    this.#source = options.source;
    this.#logger = options.logger;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
  }

  #message(event: DiscoveryEvent | HostEvent, now: Date): OutgoingMessage {
    const definition = findDefinition(event.type) as EventDefinition;
    return createEvent(definition, event.data, { source: this.#source, id: event.id, time: now });
  }

  /** Publishes one host event (registration) on the event log; resolves once stored. */
  async publishHostEvent(event: HostEvent, now: Date): Promise<void> {
    await this.#publisher.publish(this.#message(event, now), { timeoutMs: this.#timeoutMs });
  }

  /**
   * Publishes a heartbeat on the host's heartbeat subject (`VOLBACK_HEARTBEATS` keeps only the
   * last per host); resolves once stored.
   */
  async publishHeartbeat(
    event: Extract<HostEvent, { type: 'io.volback.host.seen.v1' }>,
    now: Date,
  ): Promise<void> {
    const message = createHeartbeat(event.data, { source: this.#source, id: event.id, time: now });
    await this.#publisher.publish(message, { timeoutMs: this.#timeoutMs });
  }

  /**
   * Publishes the events of one observation. An event whose data breaks the contract (a label
   * longer than the schema allows, say) is left out with the later events of its aggregate, and
   * reported once; the rest go out.
   */
  async publishObservation(events: readonly DiscoveryEvent[], now: Date): Promise<ObservationPublished> {
    const refused = new Set<string>();
    const entries: { event: DiscoveryEvent; message: OutgoingMessage }[] = [];
    for (const event of events) {
      const key = aggregateKey(event);
      if (refused.has(key)) continue;
      try {
        entries.push({ event, message: this.#message(event, now) });
      } catch (error) {
        if (!(error instanceof ContractViolationError)) throw error;
        refused.add(key);
        if (!this.#reported.has(event.id)) {
          this.#reported.add(event.id);
          this.#logger.error(
            {
              code: error.code,
              type: event.type,
              aggregate: key,
              issues: error.issues.map((i) => `${i.path}: ${i.message}`),
            },
            'an observation breaks the event contract; it is not published',
          );
        }
      }
    }
    const published: DiscoveryEvent[] = [];
    let duplicate = false;
    for (let start = 0; start < entries.length; start += MAX_ATOMIC_BATCH) {
      const batch = entries.slice(start, start + MAX_ATOMIC_BATCH);
      const result = await this.#publisher.publishAtomic(
        batch.map(({ message }) => ({ message })),
        this.#timeoutMs,
      );
      duplicate ||= result.duplicate;
      if (!result.duplicate) published.push(...batch.map(({ event }) => event));
    }
    return { published, duplicate, rejected: events.length - entries.length };
  }
}
