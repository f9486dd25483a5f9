import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { eventSubjectFilter, STREAMS } from '@volback/contracts';
import {
  ensureStreams,
  MessagePublisher,
  startDurableConsumer,
  type StreamOptions,
  type MessagingLogger,
  type NatsConnection,
  type RunningConsumer,
} from '@volback/messaging';
import { projectEvent } from '../projection/project-event.ts';
import type { CatalogDatabase } from './catalog-database.ts';

/** Options of {@link startProjection}. */
export interface ProjectionOptions {
  nc: NatsConnection;
  database: CatalogDatabase;
  /** Durable consumer name, one per catalog replica: `catalog-<instance id>`. */
  durable: string;
  /** Envelope source of `MessageRejected` reports. */
  source: string;
  logger?: MessagingLogger;
  /** Called after each applied event (metrics). */
  onApplied?: (type: string, streamSequence: number) => void;
  /** Settings the streams are recreated with if they are deleted under the catalog. */
  streams?: StreamOptions;
}

/** The running projection. */
export interface Projection {
  readonly durable: string;
  /** Events of the stream not applied yet (pending plus in hand), from the consumer's view. */
  pending(): Promise<number>;
  stop(): Promise<void>;
}

/** Ack wait of the projection consumer: applying an event takes milliseconds. */
const ACK_WAIT_MS = 30_000;
/**
 * A projection may never give an event up (that would leave a hole in the read model): a
 * failing handler (disk full) is retried, with backoff, until it succeeds or an operator steps in.
 */
const MAX_DELIVER = 1_000_000;

/**
 * Positions the durable consumer at the database's checkpoint, so the database is the source of
 * truth: a consumer ahead of it (the database was deleted, rebuilt, or lost its last commits) is
 * recreated to start right after the checkpoint; one behind it redelivers events the
 * projection skips.
 */
async function positionConsumer(nc: NatsConnection, durable: string, checkpoint: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    const info = await jsm.consumers.info(STREAMS.events.name, durable);
    if (info.ack_floor.stream_seq <= checkpoint) return;
    await jsm.consumers.delete(STREAMS.events.name, durable);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound))
      throw error;
  }
  await jsm.consumers.add(STREAMS.events.name, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    filter_subjects: [eventSubjectFilter()],
    ack_wait: nanos(ACK_WAIT_MS),
    max_deliver: MAX_DELIVER,
    max_ack_pending: 1,
    ...(checkpoint > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: checkpoint + 1 }
      : { deliver_policy: DeliverPolicy.All }),
  });
}

/**
 * Makes sure the read model was built from the `VOLBACK_EVENTS` that exists now. Sequences restart
 * at 1 in a stream deleted and created again, so an old checkpoint there would skip every new
 * event: the stream's creation time is kept with the checkpoint, and on a mismatch the read model
 * is emptied and rebuilt from the new stream.
 */
async function adoptStream(
  nc: NatsConnection,
  database: CatalogDatabase,
  logger: MessagingLogger | undefined,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const created = (await jsm.streams.info(STREAMS.events.name)).created;
  const adopted = database.streamCreated();
  if (adopted === created) return;
  if (adopted !== undefined || database.checkpoint() > 0) {
    logger?.warn(
      { checkpoint: database.checkpoint(), checkpointedStream: adopted ?? null, streamCreated: created },
      'the event stream is not the one the read model was built from: rebuilding the read model from the new stream',
    );
    database.reset();
  }
  database.setStreamCreated(created);
}

/**
 * Projects `VOLBACK_EVENTS` into the database: a durable consumer in strict stream order; each
 * event and the checkpoint are written in one transaction, and the event is acknowledged after
 * the commit. Unknown types and newer versions are skipped with a warning.
 */
export async function startProjection(options: ProjectionOptions): Promise<Projection> {
  const { nc, database, durable } = options;
  await adoptStream(nc, database, options.logger);
  await positionConsumer(nc, durable, database.checkpoint());
  const consumer: RunningConsumer = await startDurableConsumer({
    nc,
    stream: STREAMS.events.name,
    durable,
    filterSubjects: [eventSubjectFilter()],
    publisher: new MessagePublisher(nc),
    source: options.source,
    unknownTypes: 'skip',
    // A forged event (another host's subject or agent, dated ahead) is reported, never projected.
    checkOrigin: true,
    strictOrder: true,
    ackWaitMs: ACK_WAIT_MS,
    maxDeliver: MAX_DELIVER,
    ...(options.logger ? { logger: options.logger } : {}),
    // The stream (or only this consumer) was deleted under the catalog: recreate the streams,
    // rebuild if the stream is a new one, and resume right after the checkpoint.
    async recreate() {
      await ensureStreams(await jetstreamManager(nc), options.streams ?? {});
      await adoptStream(nc, database, options.logger);
      await positionConsumer(nc, durable, database.checkpoint());
    },
    async handler(message) {
      const applied = projectEvent(database, {
        name: message.definition.name,
        data: message.envelope.data,
        streamSequence: message.streamSequence,
      });
      if (applied) options.onApplied?.(message.envelope.type, message.streamSequence);
    },
  });
  return {
    durable,
    async pending() {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.info(STREAMS.events.name, durable);
      return info.num_pending + info.num_ack_pending;
    },
    stop: () => consumer.stop(),
  };
}
