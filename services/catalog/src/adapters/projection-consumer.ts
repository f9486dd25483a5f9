import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  checkEventOrigin,
  ContractErrorCode,
  eventSubjectFilter,
  parseMessage,
  STREAMS,
} from '@volback/contracts';
import {
  ensureStreams,
  MessagePublisher,
  closeWithin,
  reportRejection,
  STREAM_RECREATE_DELAY_MS,
  type MessagingLogger,
  type NatsConnection,
  type Rejection,
  type StreamOptions,
} from '@volback/messaging';
import { projectEvents, type ReadEvent } from '../projection/project-event.ts';
import type { CatalogDatabase } from './catalog-database.ts';

/** Options of {@link startProjection}. */
export interface ProjectionOptions {
  nc: NatsConnection;
  database: CatalogDatabase;
  /**
   * This replica's name, `catalog-<instance id>`: the consumer its `MessageRejected` reports name
   * (and the durable consumer of versions before 0.4, removed at start).
   */
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
  /** Events of the stream after the checkpoint: not applied yet. */
  pending(): Promise<number>;
  stop(): Promise<void>;
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

/** How often the read is checked for progress (see the watchdog in {@link startProjection}). */
const STALL_CHECK_MS = 10_000;

/** Most events applied in one transaction. */
const MAX_BATCH = 1_000;

/**
 * Projects `VOLBACK_EVENTS` into the database. The database's checkpoint is the position: an
 * ordered consumer (no state on the server; in order, without gaps, or it starts itself again
 * where it was) reads from right after it, and the events read so far are applied in one
 * transaction with the new checkpoint (up to {@link MAX_BATCH}; fewer when the log is quiet, so a
 * new event shows at once). A failing apply (disk full) is retried with backoff, the same events
 * in the same order, until it succeeds or an operator steps in: nothing is ever skipped. Unknown
 * types and newer versions are skipped with a warning; invalid and forged events (another host's
 * subject or agent, dated ahead) are reported as `MessageRejected` and never projected.
 */
export async function startProjection(options: ProjectionOptions): Promise<Projection> {
  const { nc, database, durable } = options;
  const log = options.logger;
  const jsm = await jetstreamManager(nc);
  await adoptStream(nc, database, log);
  // Before 0.4 the position was a durable consumer on the server; the checkpoint replaces it.
  await jsm.consumers.delete(STREAMS.events.name, durable).catch(() => undefined);
  const publisher = new MessagePublisher(nc);
  const by = { consumer: durable, stream: STREAMS.events.name, source: options.source };
  let streamCreated = database.streamCreated();
  let stopped = false;
  let messages: ConsumerMessages | undefined;

  /** What one message becomes: an event to apply, or a skipped position (after its report). */
  const decide = async (msg: JsMsg): Promise<ReadEvent> => {
    const skipped = { streamSequence: msg.seq };
    const parsed = parseMessage(msg.data);
    let rejection: Rejection | undefined;
    if (!parsed.ok) {
      if (parsed.error.code === ContractErrorCode.UnknownType) {
        log?.warn(
          { subject: msg.subject, streamSequence: msg.seq, type: parsed.error.messageType },
          'skipping a message of an unknown type or newer version',
        );
        return skipped;
      }
      rejection = parsed.error;
    } else {
      const origin = checkEventOrigin(msg.subject, parsed.message.envelope, msg.time);
      if (!origin.ok) rejection = origin.error;
      else
        return {
          streamSequence: msg.seq,
          name: parsed.message.definition.name,
          data: parsed.message.envelope.data,
          type: parsed.message.envelope.type,
        };
    }
    const messageId = msg.headers?.get('Nats-Msg-Id') || undefined;
    await reportRejection(
      publisher,
      by,
      { seq: msg.seq, subject: msg.subject, data: msg.data, messageId },
      rejection,
    );
    log?.warn(
      { subject: msg.subject, streamSequence: msg.seq, code: rejection.code, reason: rejection.message },
      'rejected an invalid message',
    );
    return skipped;
  };

  /** Applies `batch`, retrying until it is in the database (or the projection stops). */
  const apply = async (batch: JsMsg[]): Promise<void> => {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        const read: ReadEvent[] = [];
        for (const msg of batch) read.push(await decide(msg));
        for (const event of projectEvents(database, read))
          options.onApplied?.(event.type ?? '', event.streamSequence);
        return;
      } catch (error) {
        const delayMs = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
        log?.warn(
          { err: (error as Error).message, from: batch[0]?.seq, to: batch.at(-1)?.seq, delayMs },
          'applying events failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };

  /** Reads from right after the checkpoint and follows the log, until the stream goes away. */
  const follow = async (): Promise<void> => {
    const from = database.checkpoint() + 1;
    const consumer = await jetstream(nc).consumers.get(STREAMS.events.name, {
      filter_subjects: [eventSubjectFilter()],
      ...(from > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }
        : { deliver_policy: DeliverPolicy.All }),
    });
    if (stopped) return;
    const current = await consumer.consume({ max_messages: MAX_BATCH });
    messages = current;
    if (stopped) {
      // Stopped while the read was being set up: `stop` closed the one before. Closing a read
      // that has not received its first answer can wait on it (seen: for minutes).
      await closeWithin(current);
      return;
    }
    // An ordered consumer recreates itself when deleted and goes on at its own cursor: on a
    // stream deleted and created again that would skip every new event. End the read instead.
    void (async () => {
      for await (const status of current.status()) {
        const suspicious = ['ordered_consumer_recreated', 'consumer_deleted', 'heartbeats_missed'];
        if (!suspicious.includes(status.type)) continue;
        const info = await jsm.streams.info(STREAMS.events.name).catch(() => undefined);
        if (info?.created !== streamCreated) {
          await current.close();
          return;
        }
      }
    })().catch(() => undefined);
    // Group commit: the messages of one read from the socket arrive before the next macrotask,
    // so a flush scheduled with setImmediate takes all of them into one transaction; a quiet log
    // still applies each event at once. Flushes run one after another (stream order), and the
    // read waits for them when a full batch is pending (memory stays bounded).
    let batch: JsMsg[] = [];
    let flushing: Promise<void> = Promise.resolve();
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      const taken = batch;
      batch = [];
      if (taken.length > 0) flushing = flushing.then(() => apply(taken));
      return flushing;
    };
    try {
      for await (const msg of current) {
        batch.push(msg);
        if (batch.length >= MAX_BATCH) await flush();
        else if (!scheduled) {
          scheduled = true;
          setImmediate(() => void flush());
        }
        if (stopped) break;
      }
    } finally {
      await flush();
    }
  };

  // The stream deleted under the catalog (by an operator or an attacker) ends the read:
  // recreate the streams, rebuild if the stream is a new one (its sequences restart at 1), and
  // resume right after the checkpoint.
  const loop = (async () => {
    for (let failures = 0; !stopped;) {
      try {
        await follow();
        if (stopped) return;
        log?.warn(
          { checkpoint: database.checkpoint() },
          'the event log read ended: the stream was deleted; resuming',
        );
      } catch (error) {
        if (stopped || nc.isClosed()) return;
        log?.warn({ err: (error as Error).message }, 'reading the event log failed; resuming');
      }
      failures++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures, 5))));
      try {
        // Not at once: the server may still be removing the deleted stream's files.
        await new Promise((resolve) => setTimeout(resolve, STREAM_RECREATE_DELAY_MS));
        await ensureStreams(jsm, options.streams ?? {});
        await adoptStream(nc, database, log);
        streamCreated = database.streamCreated();
        failures = 0;
      } catch (cause) {
        log?.warn({ err: (cause as Error).message }, 'could not recreate the streams; retrying');
      }
    }
  })();

  // A watchdog for what the client does not notice: the NATS node that served the ordered read
  // died (a cluster) and pulls go nowhere. When the log holds events after the checkpoint and the
  // checkpoint has not moved since the last look, end the read: the loop reads again from the
  // checkpoint, on a node that runs.
  let lastLook = -1;
  const watchdog = setInterval(() => {
    void (async () => {
      const checkpoint = database.checkpoint();
      const last = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
      if (last > checkpoint && checkpoint === lastLook && messages) {
        log?.warn({ checkpoint, last }, 'the event log read makes no progress; reading again');
        await closeWithin(messages);
      }
      lastLook = checkpoint;
    })().catch(() => undefined);
  }, STALL_CHECK_MS);
  watchdog.unref();

  return {
    durable,
    async pending() {
      const { state } = await jsm.streams.info(STREAMS.events.name);
      return Math.max(0, state.last_seq - database.checkpoint());
    },
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      if (messages) await closeWithin(messages);
      await loop.catch(() => undefined);
    },
  };
}
