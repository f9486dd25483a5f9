import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { ContractErrorCode, parseMessage, STREAMS } from '@volback/contracts';
import type { Logger } from '@volback/observability';
import { evolve, initialState, type SchedulerState } from '../domain/index.ts';

/** Options of {@link startEventProjection}. */
export interface EventProjectionOptions {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** Called after each applied event (metrics, tests). */
  readonly onEvent?: (type: string, streamSequence: number) => void;
}

/** The scheduler's state, rebuilt from `VOLBACK_EVENTS` and kept up to date. */
export interface EventProjection {
  readonly state: SchedulerState;
  /** Stream sequence of the last event read (every event, applied or not). */
  readonly sequence: number;
  /** Resolves once every event stored before the projection started has been applied. */
  readonly replayed: Promise<void>;
  /** Resolves when the projection has read up to `sequence` (true), or after `timeoutMs` (false). */
  waitFor(sequence: number, timeoutMs?: number): Promise<boolean>;
  /** Waits until everything stored now is applied: before a decision that must see the latest facts. */
  catchUp(timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Replays the event log from its start into a fresh state, then follows it (an ordered consumer:
 * no durable state on the server; a restart replays again, which is what "rebuilt on start" means).
 * Every event is read, so the projection's sequence reaches the stream's last sequence exactly.
 */
export async function startEventProjection(options: EventProjectionOptions): Promise<EventProjection> {
  const log = options.logger.child({ component: 'projection' });
  const jsm = await jetstreamManager(options.nc);
  const state = initialState();
  let sequence = 0;
  const waiters = new Set<{ seq: number; resolve: (ok: boolean) => void }>();
  const startInfo = await jsm.streams.info(STREAMS.events.name);
  const replayTarget = startInfo.state.last_seq;
  let markReplayed!: () => void;
  const replayed = new Promise<void>((resolve) => (markReplayed = resolve));
  if (replayTarget === 0) markReplayed();

  const consumer = await jetstream(options.nc).consumers.get(STREAMS.events.name, {
    filter_subjects: [...STREAMS.events.subjects],
    deliver_policy: DeliverPolicy.All,
  });
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 512 });
  const started = performance.now();
  const loop = (async () => {
    for await (const msg of messages) {
      const parsed = parseMessage(msg.data);
      if (parsed.ok) {
        evolve(state, parsed.message.envelope);
        options.onEvent?.(parsed.message.envelope.type, msg.seq);
      } else if (parsed.error.code !== ContractErrorCode.UnknownType) {
        // The publisher's consumer reports invalid messages; the projection only skips them.
        log.warn({ streamSequence: msg.seq, err: parsed.error.message }, 'skipping an invalid event');
      }
      sequence = msg.seq;
      if (sequence >= replayTarget && replayTarget > 0) {
        markReplayed();
      }
      for (const waiter of waiters) {
        if (sequence >= waiter.seq) {
          waiters.delete(waiter);
          waiter.resolve(true);
        }
      }
    }
  })();
  void replayed.then(() =>
    log.info(
      { events: sequence, applied: state.eventCount, ms: Math.round(performance.now() - started) },
      'state rebuilt from the event log',
    ),
  );

  const waitFor = (seq: number, timeoutMs = 10_000): Promise<boolean> => {
    if (sequence >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  return {
    state,
    get sequence() {
      return sequence;
    },
    replayed,
    waitFor,
    async catchUp(timeoutMs = 10_000) {
      const info = await jsm.streams.info(STREAMS.events.name);
      return waitFor(info.state.last_seq, timeoutMs);
    },
    async stop() {
      await messages.close();
      await loop.catch(() => undefined);
      for (const waiter of waiters) waiter.resolve(false);
      waiters.clear();
    },
  };
}
