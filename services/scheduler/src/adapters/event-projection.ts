import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { checkEventOrigin, ContractErrorCode, parseMessage, STREAMS } from '@volback/contracts';
import { closeWithin, ensureStreams, STREAM_RECREATE_DELAY_MS, type StreamOptions } from '@volback/messaging';
import type { Logger } from '@volback/observability';
import {
  evolve,
  initialState,
  restoreState,
  serializeState,
  STATE_SNAPSHOT_FORMAT,
  type SchedulerState,
} from '../domain/index.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/** How often the read is checked for progress (see the watchdog in {@link startEventProjection}). */
const STALL_CHECK_MS = 10_000;

/** Options of {@link startEventProjection}. */
export interface EventProjectionOptions {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** Called after each applied event (metrics, tests). */
  readonly onEvent?: (type: string, streamSequence: number) => void;
  /** Settings the streams are recreated with if they are deleted under the scheduler. */
  readonly streams?: StreamOptions;
  /**
   * Start from the stored snapshot of the state and read only the events after it; store one
   * every `everyEvents` events read (default 10,000) and every `everyMs` (default 60 s) when
   * something was read since the last.
   */
  readonly snapshots?: {
    readonly store: SnapshotStore;
    readonly everyEvents?: number;
    readonly everyMs?: number;
  };
}

/** Where a projection started. */
export interface ProjectionStart {
  /** The snapshot's stream sequence, or 0 for a replay from the start of the log. */
  readonly fromSequence: number;
  /** Why no snapshot was used (none stored, unreadable, another format, another stream). */
  readonly replayReason?: string;
}

/** The scheduler's state, rebuilt from `VOLBACK_EVENTS` and kept up to date. */
export interface EventProjection {
  readonly state: SchedulerState;
  /** Stream sequence of the last event read (every event, applied or not). */
  readonly sequence: number;
  /** Where it started: a snapshot's sequence, or a full replay and why. */
  readonly start: ProjectionStart;
  /** Events read from the stream since the projection started. */
  readonly eventsRead: number;
  /** Stores a snapshot of the state now (tests, shutdown); resolves to its stream sequence, 0 when none was written. */
  saveSnapshot(): Promise<number>;
  /** Resolves once every event stored before the projection started has been applied. */
  readonly replayed: Promise<void>;
  /** Resolves when the projection has read up to `sequence` (true), or after `timeoutMs` (false). */
  waitFor(sequence: number, timeoutMs?: number): Promise<boolean>;
  /** Waits until everything stored now is applied: before a decision that must see the latest facts. */
  catchUp(timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Rebuilds the state from the event log, then follows it (an ordered consumer: no durable state on
 * the server). With `snapshots` it starts from the stored snapshot when that is of this format and
 * of this very stream (its creation time) and reads only the events after it; otherwise, or when
 * the snapshot is unreadable, it replays the log from its start. Every event is read, so the
 * projection's sequence reaches the stream's last sequence exactly.
 */
export async function startEventProjection(options: EventProjectionOptions): Promise<EventProjection> {
  const log = options.logger.child({ component: 'projection' });
  const started = performance.now();
  const jsm = await jetstreamManager(options.nc);
  const state = initialState();
  let sequence = 0;
  const waiters = new Set<{ seq: number; resolve: (ok: boolean) => void }>();
  const startInfo = await jsm.streams.info(STREAMS.events.name);
  const replayTarget = startInfo.state.last_seq;
  let streamCreated = startInfo.created;
  let start: ProjectionStart = { fromSequence: 0, replayReason: 'snapshots off' };
  const snapshots = options.snapshots;
  if (snapshots) {
    start = await loadSnapshot(snapshots.store, streamCreated, replayTarget, state);
    sequence = start.fromSequence;
    if (start.replayReason) log.info({ reason: start.replayReason }, 'replaying the whole event log');
    else log.info({ sequence }, 'state loaded from its snapshot; reading the events after it');
  }
  let eventsRead = 0;
  let snapshotSequence = sequence;
  let saving: Promise<number> | undefined;
  let again: Promise<number> | undefined;
  const saveSnapshot = (): Promise<number> => {
    if (!snapshots) return Promise.resolve(0);
    // One write at a time; asked during one, one more after it if the state moved on since (never
    // one per asking: every queued write would serialise the whole state).
    if (saving) {
      again ??= saving.then(() => {
        again = undefined;
        return sequence > snapshotSequence ? saveSnapshot() : snapshotSequence;
      });
      return again;
    }
    const at = sequence;
    // Serialised at once (synchronously), so it is the state at `at` exactly.
    const snapshot = {
      format: STATE_SNAPSHOT_FORMAT,
      streamCreated,
      sequence: at,
      state: serializeState(state),
    };
    const write = snapshots.store.save(snapshot).then(
      (bytes) => {
        snapshotSequence = Math.max(snapshotSequence, at);
        log.debug({ sequence: at, bytes }, 'state snapshot stored');
        return at;
      },
      (error: Error) => {
        log.warn({ err: error.message, sequence: at }, 'could not store the state snapshot');
        return 0;
      },
    );
    saving = write.finally(() => (saving = undefined));
    return saving;
  };
  const everyEvents = snapshots?.everyEvents ?? 10_000;
  let markReplayed!: () => void;
  const replayed = new Promise<void>((resolve) => (markReplayed = resolve));
  if (replayTarget === 0 || sequence >= replayTarget) markReplayed();

  let stopped = false;
  let messages: ConsumerMessages | undefined;
  /** Reads from `from` to the end of the stream and follows it, until the stream goes away. */
  const follow = async (from: number): Promise<void> => {
    const consumer = await jetstream(options.nc).consumers.get(STREAMS.events.name, {
      filter_subjects: [...STREAMS.events.subjects],
      ...(from > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }
        : { deliver_policy: DeliverPolicy.All }),
    });
    if (stopped) return;
    // Short pulls: the server's idle heartbeats come every 5 s, so a lost consumer shows in ~10 s.
    const current = await consumer.consume({ max_messages: 512, expires: 10_000 });
    messages = current;
    if (stopped) {
      // `stop` closed the read before this one.
      await closeWithin(current);
      return;
    }
    // An ordered consumer recreates itself when deleted and goes on at its own cursor: on a
    // stream deleted and created again that would skip every new event. End the read instead.
    void (async () => {
      for await (const status of current.status()) {
        if (status.type === 'heartbeats_missed') {
          // Its server died (a NATS cluster node): the client would ask that consumer's info until
          // the node came back. End the read; the loop makes a new consumer at this cursor.
          log.warn({ sequence }, 'the event log read stalled (heartbeats missed)');
          await current.close();
          return;
        }
        const suspicious = ['ordered_consumer_recreated', 'consumer_deleted'];
        if (!suspicious.includes(status.type)) continue;
        const info = await jsm.streams.info(STREAMS.events.name).catch(() => undefined);
        if (info?.created !== streamCreated) {
          await current.close();
          return;
        }
      }
    })().catch(() => undefined);
    for await (const msg of messages) {
      const parsed = parseMessage(msg.data);
      const origin = parsed.ok ? checkEventOrigin(msg.subject, parsed.message.envelope, msg.time) : undefined;
      if (origin && !origin.ok) {
        // Never decided on: a forged event (another host's subject or agent, dated ahead). The
        // catalogs report it as MessageRejected; the projection only skips it, as invalid ones.
        log.warn(
          {
            streamSequence: msg.seq,
            subject: msg.subject,
            code: origin.error.code,
            err: origin.error.message,
          },
          'skipping an event of the wrong origin',
        );
      } else if (parsed.ok) {
        evolve(state, parsed.message.envelope);
        options.onEvent?.(parsed.message.envelope.type, msg.seq);
      } else if (parsed.error.code !== ContractErrorCode.UnknownType) {
        // The publisher's consumer reports invalid messages; the projection only skips them.
        log.warn({ streamSequence: msg.seq, err: parsed.error.message }, 'skipping an invalid event');
      }
      sequence = msg.seq;
      eventsRead++;
      if (snapshots && !saving && sequence - snapshotSequence >= everyEvents) void saveSnapshot();
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
  };
  // The stream deleted under the scheduler (by an operator or an attacker) ends the read with an
  // error: recreate the streams, and if the stream is a new one rebuild the state from it (its
  // sequences restart at 1), instead of crashing.
  const loop = (async () => {
    for (let failures = 0; !stopped;) {
      try {
        await follow(sequence + 1);
        if (stopped) return;
        log.warn({ sequence }, 'the event log read ended (stream deleted or consumer lost); resuming');
      } catch (error) {
        if (stopped || options.nc.isClosed()) return;
        log.warn({ err: (error as Error).message, sequence }, 'reading the event log failed; resuming');
      }
      failures++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures, 5))));
      try {
        // Not at once: the server may still be removing the deleted stream's files.
        await new Promise((resolve) => setTimeout(resolve, STREAM_RECREATE_DELAY_MS));
        await ensureStreams(jsm, options.streams ?? {});
        const created = (await jsm.streams.info(STREAMS.events.name)).created;
        if (created !== streamCreated) {
          log.warn(
            { sequence, streamCreated: created },
            'the event stream is a new one: rebuilding the state from it',
          );
          Object.assign(state, initialState());
          sequence = 0;
          snapshotSequence = 0;
          streamCreated = created;
        }
        failures = 0;
      } catch (cause) {
        log.warn({ err: (cause as Error).message }, 'could not recreate the streams; retrying');
      }
    }
  })();
  // A watchdog for what the client does not notice: the server holding the ordered consumer died
  // (a NATS cluster node) and pulls go nowhere, heartbeats or not. When the stream holds events
  // the read has not reached and it made no progress since the last look, end the read: the loop
  // makes a new consumer at this cursor, on a node that runs.
  let lastLook = -1;
  const watchdog = setInterval(() => {
    void (async () => {
      const last = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
      if (last > sequence && sequence === lastLook) {
        log.warn({ sequence, last }, 'the event log read makes no progress; resuming');
        if (messages) await closeWithin(messages);
      }
      lastLook = sequence;
    })().catch(() => undefined);
  }, STALL_CHECK_MS);
  watchdog.unref();
  const snapshotTimer = setInterval(() => {
    if (sequence > snapshotSequence) void saveSnapshot();
  }, snapshots?.everyMs ?? 60_000);
  snapshotTimer.unref();
  void replayed.then(() => {
    log.info(
      {
        events: sequence,
        read: eventsRead,
        fromSnapshot: start.fromSequence,
        applied: state.eventCount,
        ms: Math.round(performance.now() - started),
      },
      'state rebuilt from the event log',
    );
    // A replay is what the next start should not have to do again.
    if (sequence > snapshotSequence) void saveSnapshot();
  });

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
    start,
    get eventsRead() {
      return eventsRead;
    },
    saveSnapshot,
    replayed,
    waitFor,
    async catchUp(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      const info = await jsm.streams.info(STREAMS.events.name);
      if (info.created !== streamCreated) {
        // A new stream the read has not noticed yet: end the read (it rebuilds) and wait for the
        // rebuild, rather than decide on the old stream's state.
        if (messages) await closeWithin(messages);
        while (streamCreated !== info.created) {
          if (Date.now() > deadline) return false;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      return waitFor(info.state.last_seq, Math.max(0, deadline - Date.now()));
    },
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      clearInterval(snapshotTimer);
      await saving;
      if (messages) await closeWithin(messages);
      await loop.catch(() => undefined);
      // What was read since the last snapshot is not read again at the next start.
      if (sequence > snapshotSequence) await saveSnapshot();
      for (const waiter of waiters) waiter.resolve(false);
      waiters.clear();
    },
  };
}

/**
 * Loads the stored snapshot into `state` when it fits this stream: of this format, of the stream
 * created at `streamCreated` (a stream deleted and created again restarts its sequences), and not
 * ahead of its last sequence. Anything else leaves `state` empty and says why.
 */
async function loadSnapshot(
  store: SnapshotStore,
  streamCreated: string,
  lastSequence: number,
  state: SchedulerState,
): Promise<ProjectionStart> {
  let stored: unknown;
  try {
    stored = await store.load();
  } catch (error) {
    return { fromSequence: 0, replayReason: `the snapshot cannot be read: ${(error as Error).message}` };
  }
  if (stored === undefined) return { fromSequence: 0, replayReason: 'no snapshot stored' };
  let restored: ReturnType<typeof restoreState>;
  try {
    restored = restoreState(stored);
  } catch (error) {
    return { fromSequence: 0, replayReason: `the snapshot is unusable: ${(error as Error).message}` };
  }
  if (restored.streamCreated !== streamCreated) {
    return {
      fromSequence: 0,
      replayReason: `the snapshot is of a stream created ${restored.streamCreated}, this one was created ${streamCreated}`,
    };
  }
  if (restored.sequence > lastSequence) {
    return {
      fromSequence: 0,
      replayReason: `the snapshot is at sequence ${restored.sequence}, beyond the stream's last ${lastSequence}`,
    };
  }
  Object.assign(state, restored.state);
  return { fromSequence: restored.sequence };
}
