import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import {
  checkEventOrigin,
  ContractErrorCode,
  createEvent,
  MessageRejected,
  parseMessage,
  type ContractViolationError,
  type Envelope,
  type MessageDefinition,
} from '@volback/contracts';
import type { MessagingLogger } from './connection.ts';
import type { MessagePublisher } from './publisher.ts';
import { ensureStreams, type StreamOptions } from './streams.ts';

/** A message that passed its schema, handed to a consumer's handler. */
export interface ConsumedMessage {
  readonly envelope: Envelope;
  readonly definition: MessageDefinition;
  readonly subject: string;
  /** Position in the stream: a projection's checkpoint. */
  readonly streamSequence: number;
  /** 1 on first delivery; more after a handler failure or a consumer crash. */
  readonly deliveryCount: number;
  /** Tells the server the handler is still at it, so the message is not redelivered meanwhile (long work). */
  working(): void;
}

/** Options of {@link startDurableConsumer}. */
export interface DurableConsumerOptions {
  nc: NatsConnection;
  stream: string;
  /** Durable name: the consumer's position survives its process. */
  durable: string;
  filterSubjects: readonly string[];
  /**
   * Handles one valid message; the message is acknowledged after it resolves. Throw to retry; throw
   * an error with `handBack: true` (work cut short by a stop, not a failure) to give the message
   * back at once, logged as such.
   */
  handler: (message: ConsumedMessage) => Promise<void>;
  /** Publishes `MessageRejected` reports for invalid messages. */
  publisher: MessagePublisher;
  /** Envelope `source` of the reports, e.g. `volback://catalog/<instance>`. */
  source: string;
  /**
   * What to do with a well-formed envelope of a type this build does not know (a newer version):
   * `skip` (ack with a warning; a projection reading the whole log) or `reject` (report it).
   */
  unknownTypes?: 'skip' | 'reject';
  /** Only these definitions are valid here (e.g. an agent's commands); others are rejected. */
  accepts?: (definition: MessageDefinition) => boolean;
  /**
   * Refuse events that cannot have come from who may say them (`checkEventOrigin`: another host's
   * subject, another agent's source, dated ahead of the stream), rejected and reported like an
   * invalid message, never handed to the handler. For consumers of `VOLBACK_EVENTS`.
   */
  checkOrigin?: boolean;
  logger?: MessagingLogger;
  ackWaitMs?: number;
  /** Deliveries of one message before it is given up (terminated) after handler failures. */
  maxDeliver?: number;
  maxAckPending?: number;
  /**
   * Deliver strictly in stream order, redeliveries included (one unacknowledged message at a
   * time). Needed by a handler that checkpoints by stream sequence, like a projection.
   */
  strictOrder?: boolean;
  /**
   * The handler may run for minutes (a backup, a prune): take one message at a time and hold no
   * pull open while it runs (an open pull whose heartbeats go unread fails). Implies one
   * unacknowledged message at a time; keep the message alive with {@link ConsumedMessage.working}.
   */
  longRunning?: boolean;
  /**
   * Settings the streams are recreated with when the consumer finds its stream gone (deleted by
   * an operator or an attacker); the same options the service passes to `ensureStreams`.
   */
  streams?: StreamOptions;
  /**
   * Recreates the stream and this consumer when they are gone, instead of the default
   * (`ensureStreams` with {@link streams}, then the consumer with its configuration, reading from
   * the start of the new stream). A projection uses it to notice the new stream and rebuild.
   */
  recreate?: () => Promise<void>;
  /**
   * Called once the stream and this consumer were recreated: what the service had published into
   * the lost stream is gone with it, so a service that publishes state (an agent's host and
   * volumes) announces it again.
   */
  onRecreated?: () => void;
}

/** A running consumer. */
export interface RunningConsumer {
  readonly durable: string;
  /** Stops taking messages, lets the one in hand finish, hands buffered ones back; resolves when idle. */
  stop(): Promise<void>;
  /** Resolves when the consumer loop ends (after stop, or when the connection closes). */
  readonly finished: Promise<void>;
}

function filterConfig(
  filters: readonly string[],
): Pick<ConsumerConfig, 'filter_subject' | 'filter_subjects'> {
  // `undefined` replaces the other form when an existing consumer is updated.
  return filters.length === 1
    ? { filter_subject: filters[0]!, filter_subjects: undefined as unknown as string[] }
    : { filter_subjects: [...filters], filter_subject: undefined as unknown as string };
}

/**
 * Starts (or resumes) a durable pull consumer that validates every message against its schema.
 * An invalid message is acknowledged, never retried, and reported as `MessageRejected`; the
 * consumer goes on with the next one.
 */
export async function startDurableConsumer(options: DurableConsumerOptions): Promise<RunningConsumer> {
  const jsm = await jetstreamManager(options.nc);
  const maxDeliver = options.maxDeliver ?? 5;
  const config: Partial<ConsumerConfig> = {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    // One filter goes in the create request's subject, where NATS permissions can pin it (an
    // agent may only create its consumer on its own host's commands); several cannot.
    ...filterConfig(options.filterSubjects),
    ack_wait: nanos(options.ackWaitMs ?? 60_000),
    max_deliver: maxDeliver,
    max_ack_pending: options.strictOrder || options.longRunning ? 1 : (options.maxAckPending ?? 256),
  };
  try {
    await jsm.consumers.info(options.stream, options.durable);
    await jsm.consumers.update(options.stream, options.durable, {
      ...filterConfig(options.filterSubjects),
      ack_wait: config.ack_wait!,
      max_deliver: maxDeliver,
      max_ack_pending: config.max_ack_pending!,
    });
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound))
      throw error;
    await jsm.consumers.add(options.stream, config);
  }
  const js = jetstream(options.nc);
  let consumer = await js.consumers.get(options.stream, options.durable);
  let failures = 0;
  let stopping = false;
  /**
   * After a failed pull: if the stream or the consumer is gone (deleted under a running service),
   * recreate them, so the service goes on working instead of pulling from nothing forever or
   * crashing. Otherwise (server away, leader election) wait with a growing pause.
   */
  const recover = async (error: unknown): Promise<void> => {
    failures++;
    const missing = await consumerMissing(jsm, options.stream, options.durable).catch(() => false);
    if (missing && !stopping) {
      options.logger?.warn(
        { durable: options.durable, stream: options.stream, missing },
        'the consumer or its stream is gone; recreating them',
      );
      try {
        // The server removes a deleted stream's files after it answers: a stream created again at
        // once can lose its new files to that removal (seen as 'message block data missing').
        if (missing === 'stream')
          await new Promise((resolve) => setTimeout(resolve, STREAM_RECREATE_DELAY_MS));
        if (options.recreate) await options.recreate();
        else {
          await ensureStreams(jsm, options.streams ?? {});
          await jsm.consumers.add(options.stream, config);
        }
        consumer = await js.consumers.get(options.stream, options.durable);
        options.logger?.info({ durable: options.durable, stream: options.stream }, 'consumer recreated');
        failures = 0;
        options.onRecreated?.();
        return;
      } catch (cause) {
        // Another service recreating the same stream at the same time: the next round converges.
        options.logger?.warn(
          { durable: options.durable, err: (cause as Error).message },
          'could not recreate the consumer; retrying',
        );
      }
    } else {
      options.logger?.warn(
        { durable: options.durable, err: (error as Error).message },
        'fetch failed; retrying',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures, 5))));
  };
  // Pull in small batches rather than an open-ended buffer: on stop, the message in hand is
  // finished and the next one handed back (nak) at once.
  const finished = (async () => {
    while (!stopping && !options.nc.isClosed()) {
      if (options.longRunning) {
        let msg: JsMsg | null;
        try {
          msg = await consumer.next({ expires: 1_000 });
          failures = 0;
        } catch (error) {
          if (stopping || options.nc.isClosed()) break;
          await recover(error);
          continue;
        }
        if (!msg) continue;
        if (stopping) {
          msg.nak();
          break;
        }
        try {
          await handleOne(msg, options, maxDeliver);
        } catch (error) {
          options.logger?.error(
            { subject: msg.subject, err: (error as Error).message },
            'could not settle a message',
          );
        }
        continue;
      }
      try {
        const batch = await consumer.fetch({ max_messages: 32, expires: 1_000 });
        failures = 0;
        for await (const msg of batch) {
          if (stopping) {
            // Hand this one back and leave the pull: staying in it would get the same message
            // redelivered until max_deliver gives it up.
            msg.nak();
            break;
          }
          try {
            await handleOne(msg, options, maxDeliver);
          } catch (error) {
            // An ack lost with the connection: the message comes back after ack_wait.
            options.logger?.error(
              { subject: msg.subject, err: (error as Error).message },
              'could not settle a message',
            );
          }
        }
      } catch (error) {
        // A pull that could not start, or one ended by the server (consumer deleted).
        if (stopping || options.nc.isClosed()) break;
        await recover(error);
      }
    }
  })();
  return {
    durable: options.durable,
    finished,
    async stop() {
      stopping = true;
      await finished;
    },
  };
}

/**
 * Closes a consumer's read (`consume()`), waiting for the server's answer at most `ms`: closing a
 * read that has not had its first answer yet can wait on it for minutes (seen on an ordered
 * consumer set up while its stream was being recreated).
 */
export async function closeWithin(messages: { close(): Promise<void | Error> }, ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    messages.close().catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/** Pause before recreating a stream found deleted (see `recover`). */
export const STREAM_RECREATE_DELAY_MS = 2_000;

/** Whether the consumer's stream or the consumer itself no longer exists (`stream`, `consumer`), else false. */
async function consumerMissing(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  stream: string,
  durable: string,
): Promise<'stream' | 'consumer' | false> {
  try {
    await jsm.consumers.info(stream, durable);
    return false;
  } catch (error) {
    if (!(error instanceof JetStreamApiError)) throw error;
    if (error.code === JetStreamApiCodes.StreamNotFound) return 'stream';
    if (error.code === JetStreamApiCodes.ConsumerNotFound) return 'consumer';
    throw error;
  }
}

async function handleOne(msg: JsMsg, options: DurableConsumerOptions, maxDeliver: number): Promise<void> {
  const log = options.logger;
  const meta = { subject: msg.subject, streamSequence: msg.seq, deliveryCount: msg.info.deliveryCount };
  const parsed = parseMessage(msg.data);
  if (!parsed.ok) {
    if (parsed.error.code === ContractErrorCode.UnknownType && options.unknownTypes === 'skip') {
      log?.warn(
        { ...meta, type: parsed.error.messageType },
        'skipping a message of an unknown type or newer version',
      );
      await msg.ackAck();
      return;
    }
    await reject(msg, options, parsed.error);
    return;
  }
  const { definition, envelope } = parsed.message;
  if (options.accepts && !options.accepts(definition)) {
    await reject(msg, options, {
      code: 'VOLBACK_MESSAGE_NOT_ACCEPTED',
      message: `${definition.type} is not handled by ${options.durable}`,
      issues: [{ path: 'type', message: `not accepted on ${msg.subject}` }],
      messageType: definition.type,
    });
    return;
  }
  if (options.checkOrigin && definition.kind === 'event') {
    const origin = checkEventOrigin(msg.subject, envelope, msg.time);
    if (!origin.ok) {
      await reject(msg, options, origin.error);
      return;
    }
  }
  try {
    await options.handler({ envelope, definition, ...meta, working: () => msg.working() });
    await msg.ackAck();
  } catch (error) {
    const err = error as Error & { handBack?: boolean };
    if (err.handBack === true && meta.deliveryCount < maxDeliver) {
      log?.info({ ...meta, type: envelope.type, id: envelope.id, reason: err.message }, 'handed back');
      msg.nak();
      return;
    }
    if (meta.deliveryCount >= maxDeliver) {
      log?.error(
        { ...meta, type: envelope.type, id: envelope.id, err: err.message },
        'handler failed; giving up',
      );
      msg.term(`handler failed ${meta.deliveryCount} times: ${err.message}`.slice(0, 200));
    } else {
      const delayMs = Math.min(30_000, 500 * 2 ** (meta.deliveryCount - 1));
      log?.warn(
        { ...meta, type: envelope.type, id: envelope.id, err: err.message, delayMs },
        'handler failed; retrying',
      );
      msg.nak(delayMs);
    }
  }
}

/** Why a message was refused: a contract violation, or a consumer's own reason. */
export type Rejection = Pick<ContractViolationError, 'message' | 'issues' | 'messageType'> & { code: string };

/** A stored message that was refused, as {@link reportRejection} needs it. */
export interface RejectedMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly messageId?: string | undefined;
}

/**
 * Publishes the `MessageRejected` report of a refused message: one per stored message and
 * consumer, however often it is delivered (its id is derived from both). Throws when NATS did not
 * take it: the caller must not settle the message then, so the report is not lost.
 */
export async function reportRejection(
  publisher: MessagePublisher,
  by: { consumer: string; stream: string; source: string },
  msg: RejectedMessage,
  error: Rejection,
): Promise<void> {
  const report = createEvent(
    MessageRejected,
    {
      consumer: by.consumer,
      stream: by.stream,
      streamSequence: msg.seq,
      subject: msg.subject,
      ...(msg.messageId ? { messageId: msg.messageId.slice(0, 200) } : {}),
      ...(error.messageType ? { messageType: error.messageType.slice(0, 200) } : {}),
      code: error.code,
      reason: error.message.slice(0, 4000) || 'invalid message',
      issues: error.issues
        .slice(0, 100)
        .map((i) => ({ path: i.path.slice(0, 1000), message: i.message.slice(0, 1000) })),
      payloadBytes: msg.data.length,
      rejectedAt: new Date().toISOString(),
    },
    { source: by.source, id: `rejected.${by.stream}.${msg.seq}.${by.consumer}`.slice(0, 200) },
  );
  await publisher.publish(report);
}

async function reject(msg: JsMsg, options: DurableConsumerOptions, error: Rejection): Promise<void> {
  try {
    await reportRejection(
      options.publisher,
      { consumer: options.durable, stream: options.stream, source: options.source },
      {
        seq: msg.seq,
        subject: msg.subject,
        data: msg.data,
        messageId: msg.headers?.get('Nats-Msg-Id') || undefined,
      },
      error,
    );
  } catch (cause) {
    options.logger?.error(
      { subject: msg.subject, err: (cause as Error).message },
      'could not report a rejected message',
    );
    msg.nak(1_000); // the report must not be lost: try again shortly
    return;
  }
  options.logger?.warn(
    { subject: msg.subject, streamSequence: msg.seq, code: error.code, reason: error.message },
    'rejected an invalid message',
  );
  await msg.ackAck();
}
