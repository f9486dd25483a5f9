import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, nuid, type NatsConnection } from '@nats-io/nats-core';
import { encodeEnvelope, type OutgoingMessage } from '@volback/contracts';
import {
  ConcurrencyConflictError,
  JetStreamErrCode,
  MessagingError,
  MessagingErrorCode,
  PublishRejectedError,
} from './errors.ts';
import { ensureStreams, type StreamOptions } from './streams.ts';

/** Largest atomic batch JetStream accepts (server limit). */
export const MAX_ATOMIC_BATCH = 1000;

/** Options of one publish. */
export interface PublishOptions {
  /**
   * Optimistic concurrency: store only if the last message on this subject has this stream
   * sequence (0: the subject must be empty). A mismatch is a {@link ConcurrencyConflictError}.
   */
  expectedLastSubjectSequence?: number;
  timeoutMs?: number;
}

/** Where JetStream stored a message. */
export interface PublishResult {
  readonly stream: string;
  /** Stream sequence; for an atomic batch, the sequence of its last message. */
  readonly seq: number;
  /** True when the message (or batch) had already been stored: nothing new was appended. */
  readonly duplicate: boolean;
}

/** A message of an atomic batch, with its own optional expectation. */
export interface BatchEntry {
  readonly message: OutgoingMessage;
  readonly expectedLastSubjectSequence?: number;
}

interface JsAck {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  count?: number;
  error?: { code: number; err_code?: number; description: string };
}

/** Options of a {@link MessagePublisher}. */
export interface PublisherOptions {
  /**
   * When set, a publish that finds no stream for its subject (the stream was deleted under a
   * running service and nobody has recreated it yet) creates the streams with these settings and
   * publishes again, and one that timed out is sent again, instead of failing the caller's request.
   */
  recreateStreams?: StreamOptions;
}

/** How many times a publish that found no stream recreates the streams and tries again. */
const MISSING_STREAM_RETRIES = 3;

/**
 * Appends events and commands to JetStream. `Nats-Msg-Id` is always the envelope id, so a
 * retried publish is stored once (within the stream's duplicate window).
 */
export class MessagePublisher {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #recreateStreams: StreamOptions | undefined;

  constructor(nc: NatsConnection, options: PublisherOptions = {}) {
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.#recreateStreams = options.recreateStreams;
  }

  /** Publishes one message; resolves once JetStream has stored it. */
  async publish(message: OutgoingMessage, options: PublishOptions = {}): Promise<PublishResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#publishOnce(message, options);
      } catch (error) {
        // JetStream answers a subject no stream holds with "no responders" (the client calls it
        // JetStreamNotEnabled); a busy server may not answer in time. Same envelope id on the
        // retry, so the message is stored at most once (the stream's duplicate window).
        const name = (error as Error).name;
        const noStream = name === 'JetStreamNotEnabled';
        if (!(noStream || name === 'TimeoutError') || !this.#recreateStreams) throw error;
        if (attempt > MISSING_STREAM_RETRIES) throw error;
        if (noStream)
          await ensureStreams(await jetstreamManager(this.#nc), this.#recreateStreams).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
  }

  async #publishOnce(message: OutgoingMessage, options: PublishOptions): Promise<PublishResult> {
    const expected = options.expectedLastSubjectSequence;
    try {
      const ack = await this.#js.publish(message.subject, encodeEnvelope(message.envelope), {
        msgID: message.envelope.id,
        ...(expected !== undefined ? { expect: { lastSubjectSequence: expected } } : {}),
        ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      if (error instanceof JetStreamApiError) {
        if (error.code === JetStreamErrCode.WrongLastSequence && expected !== undefined) {
          throw new ConcurrencyConflictError(message.subject, expected, error.message, { cause: error });
        }
        throw new PublishRejectedError(`${message.subject}: ${error.message}`, error.code, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Appends the events of one decision atomically (JetStream atomic batch publish, NATS ≥ 2.12):
   * either every message is stored, in order, or none is. A retry of a batch that was already
   * stored (same envelope ids) is reported as `duplicate` and stores nothing: JetStream refuses a
   * batch holding a known `Nats-Msg-Id`, and one decision's events share their fate, so such a
   * refusal means the decision was already appended.
   */
  async publishAtomic(entries: readonly BatchEntry[], timeoutMs = 10_000): Promise<PublishResult> {
    if (entries.length === 0 || entries.length > MAX_ATOMIC_BATCH) {
      throw new MessagingError(
        MessagingErrorCode.InvalidBatch,
        `an atomic batch holds 1 to ${MAX_ATOMIC_BATCH} messages, got ${entries.length}`,
      );
    }
    const batchId = nuid.next();
    let reply: JsAck | undefined;
    for (const [index, entry] of entries.entries()) {
      const h = natsHeaders();
      h.set('Nats-Batch-Id', batchId);
      h.set('Nats-Batch-Sequence', String(index + 1));
      h.set('Nats-Msg-Id', entry.message.envelope.id);
      if (entry.expectedLastSubjectSequence !== undefined) {
        h.set('Nats-Expected-Last-Subject-Sequence', String(entry.expectedLastSubjectSequence));
      }
      const payload = encodeEnvelope(entry.message.envelope);
      if (index < entries.length - 1) {
        this.#nc.publish(entry.message.subject, payload, { headers: h });
      } else {
        h.set('Nats-Batch-Commit', '1');
        const msg = await this.#nc.request(entry.message.subject, payload, {
          headers: h,
          timeout: timeoutMs,
        });
        reply = msg.json<JsAck>();
      }
    }
    const stream = reply?.stream ?? '';
    if (reply?.error) {
      const { err_code: code, description } = reply.error;
      if (code === JetStreamErrCode.AtomicPublishDuplicateMessageId)
        return { stream, seq: 0, duplicate: true };
      if (code === JetStreamErrCode.WrongLastSequence) {
        const expecting = entries.find((e) => e.expectedLastSubjectSequence !== undefined);
        throw new ConcurrencyConflictError(
          expecting?.message.subject ?? entries[0]!.message.subject,
          expecting?.expectedLastSubjectSequence ?? 0,
          `${description} (atomic batch of ${entries.length}: nothing stored)`,
        );
      }
      throw new PublishRejectedError(`atomic batch of ${entries.length} refused: ${description}`, code);
    }
    if (reply?.count !== entries.length || typeof reply.seq !== 'number') {
      throw new PublishRejectedError(
        `atomic batch of ${entries.length}: unexpected acknowledgement ${JSON.stringify(reply)}`,
      );
    }
    return { stream, seq: reply.seq, duplicate: false };
  }
}

/**
 * Publishes many messages with up to `window` acknowledgements outstanding (bulk loads: imports,
 * benchmarks), each stored once (`Nats-Msg-Id` is the envelope id). Resolves to how many were
 * published, once JetStream has stored them all; rejects on the first refusal.
 */
export async function publishMany(
  nc: NatsConnection,
  messages: Iterable<OutgoingMessage>,
  window = 2_000,
): Promise<number> {
  const js = jetstream(nc);
  const inFlight = new Set<Promise<unknown>>();
  let count = 0;
  for (const message of messages) {
    const ack: Promise<unknown> = js
      .publish(message.subject, encodeEnvelope(message.envelope), {
        msgID: message.envelope.id,
        timeout: 60_000,
      })
      .then(() => inFlight.delete(ack));
    inFlight.add(ack);
    count++;
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return count;
}
