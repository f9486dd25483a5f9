import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import {
  createEvent,
  DEFAULT_NOTIFICATION_KINDS,
  eventSubject,
  eventSubjectFilter,
  NotificationDelivered,
  NotificationFailed,
  parseMessage,
  SERVICE_CONSUMERS,
  STREAMS,
  type Envelope,
  type NotificationChannel,
  type NotificationFilter,
  type NotificationKind,
} from '@volback/contracts';
import {
  ConcurrencyConflictError,
  NotificationChannels,
  startDurableConsumer,
  type MessagePublisher,
  type RunningConsumer,
} from '@volback/messaging';
import {
  channelService,
  deliverNotification,
  describeNotification,
  TEST_EVENT_TYPE,
  type DeliveryOptions,
  type Notification,
} from '@volback/notify';
import type { Logger } from '@volback/observability';
import {
  decideNotification,
  filterAccepts,
  initialNotifierState,
  notificationScope,
  type NotifierState,
} from '../domain/index.ts';

/** A channel of the scheduler's configuration (`VOLBACK_NOTIFY_URLS`, `VOLBACK_NOTIFY_FILE`). */
export interface ConfiguredChannel {
  readonly name: string;
  readonly url: string;
  readonly secret?: string;
  readonly filter: NotificationFilter;
}

/** The notifier's settings (README, "Notifications"). */
export interface NotifierSettings {
  readonly channels: readonly ConfiguredChannel[];
  readonly delivery: Required<
    Pick<DeliveryOptions, 'attempts' | 'initialDelayMs' | 'maxDelayMs' | 'timeoutMs'>
  >;
  /** Events older than this are not notified (a consumer recreated on an old log must not flood the channels). */
  readonly maxAgeMs: number;
}

/** Defaults: no configured channel, 5 attempts from 2 s up to 60 s apart, events up to a day old. */
export const DEFAULT_NOTIFIER_SETTINGS: NotifierSettings = {
  channels: [],
  delivery: { attempts: 5, initialDelayMs: 2_000, maxDelayMs: 60_000, timeoutMs: 10_000 },
  maxAgeMs: 86_400_000,
};

/** Durable name of the notifier's consumer on the event log. */
export const NOTIFIER_CONSUMER = SERVICE_CONSUMERS.notifier;

/** The events a notification can be about. */
const NOTIFIED_SUBJECTS = [
  eventSubjectFilter('backup'),
  eventSubjectFilter('restore'),
  eventSubjectFilter('volume'),
  eventSubjectFilter('drill'),
];

/** Options of {@link startNotifier}. */
export interface NotifierOptions {
  readonly nc: NatsConnection;
  readonly publisher: MessagePublisher;
  readonly settings: NotifierSettings;
  /** Envelope `source` of the delivery events. */
  readonly source: string;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly replicas?: number;
  /** Called after each delivery (metrics). */
  readonly onDelivery?: (kind: NotificationKind, ok: boolean) => void;
}

/** The outcome of one test: per channel, delivered or not. */
export interface TestOutcome {
  readonly channel: string;
  readonly ok: boolean;
}

/** The running notifier: follows the log while its scheduler leads; any replica sends tests. */
export interface Notifier {
  /** Leader: write the configured channels, then follow the log; standby: stop following. */
  setLeader(leader: boolean): void;
  /** Sends `SendTestNotification`: to `channel`, or to every channel. */
  sendTest(
    test: { testId: string; channel?: string | undefined; requestedBy: string },
    keepAlive?: () => void,
  ): Promise<TestOutcome[]>;
  stop(): Promise<void>;
}

/**
 * The notifier inside the scheduler: the leader follows `VOLBACK_EVENTS` with the durable consumer
 * `notifier` (one event at a time, in order), decides what each event calls for
 * (`decideNotification`), and delivers it to every channel whose filter accepts it. Each
 * (channel, event) pair has its own subject, `volback.evt.notification.<channel>.<eventId>`: before
 * sending, the notifier looks there, and its outcome is stored there with an expected last subject
 * sequence of 0, so a redelivered event (a crash, a new leader) is not sent again once recorded.
 */
export function startNotifier(options: NotifierOptions): Notifier {
  const log = options.logger.child({ component: 'notifier' });
  const channels = new NotificationChannels(options.nc, { replicas: options.replicas ?? 1 });
  let consumer: RunningConsumer | undefined;
  let following: Promise<void> = Promise.resolve();
  let leader = false;
  let stopped = false;
  const shutdown = new AbortController();

  /** Whether an outcome for this channel and event is stored already. */
  const recorded = async (channel: string, eventId: string): Promise<boolean> => {
    const jsm = await jetstreamManager(options.nc);
    try {
      const found = await jsm.streams.getMessage(STREAMS.events.name, {
        last_by_subj: eventSubject('notification', channel, eventId),
      });
      return found !== null;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return false;
      throw error;
    }
  };

  /** Delivers to one channel and records the outcome; false when it failed. */
  const deliver = async (
    channel: NotificationChannel,
    notification: Notification,
    keepAlive?: () => void,
  ): Promise<boolean> => {
    const eventId =
      notification.kind === 'test'
        ? String((notification.event.data as { testId: string }).testId)
        : notification.event.id;
    if (await recorded(channel.name, eventId)) {
      log.debug({ channel: channel.name, eventId }, 'notification sent before: not sent again');
      return true;
    }
    const result = await deliverNotification(channel, notification, {
      ...options.settings.delivery,
      signal: shutdown.signal,
      onAttempt: () => keepAlive?.(),
    });
    const common = {
      channel: channel.name,
      service: channelService(channel.url),
      kind: notification.kind,
      eventId,
      ...(notification.kind === 'test' ? {} : { eventType: notification.event.type }),
      ...(notification.hostId !== undefined ? { hostId: notification.hostId } : {}),
      ...(notification.volumeName !== undefined ? { volumeName: notification.volumeName } : {}),
      attempts: Math.max(1, result.attempts),
      ...(result.status !== undefined ? { status: result.status } : {}),
    };
    const at = new Date(options.clock()).toISOString();
    const outcome = result.ok
      ? createEvent(
          NotificationDelivered,
          { ...common, deliveredAt: at },
          { source: options.source, causationid: notification.event.id },
        )
      : createEvent(
          NotificationFailed,
          {
            ...common,
            code: result.code ?? 'NOTIFY_UNREACHABLE',
            reason: result.reason ?? 'not delivered',
            failedAt: at,
          },
          { source: options.source, causationid: notification.event.id },
        );
    try {
      await options.publisher.publish(outcome, { expectedLastSubjectSequence: 0 });
    } catch (error) {
      if (!(error instanceof ConcurrencyConflictError)) throw error;
    }
    options.onDelivery?.(notification.kind, result.ok);
    (result.ok ? log.info : log.warn).call(
      log,
      {
        channel: channel.name,
        kind: notification.kind,
        eventId,
        attempts: result.attempts,
        code: result.code,
        reason: result.reason,
      },
      result.ok ? 'notification delivered' : 'notification failed',
    );
    return result.ok;
  };

  const notificationFor = (kind: NotificationKind, event: Envelope): Notification => {
    const scope = notificationScope(event);
    return { kind, event, ...scope, ...describeNotification(kind, event) };
  };

  /** Rebuilds the fold from the backup events the consumer has acknowledged already. */
  const replayFold = async (upTo: number): Promise<NotifierState> => {
    const state = initialNotifierState();
    if (upTo === 0) return state;
    const consumer = await jetstream(options.nc).consumers.get(STREAMS.events.name, {
      filter_subjects: [eventSubjectFilter('backup')],
      deliver_policy: DeliverPolicy.All,
    });
    for (let done = false; !done;) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2_000 });
      let seen = 0;
      for await (const msg of batch) {
        seen++;
        if (msg.seq > upTo) {
          done = true;
          break;
        }
        const parsed = parseMessage(msg.data);
        if (parsed.ok) decideNotification(state, parsed.message.envelope, msg.seq);
        if (msg.seq === upTo || msg.info.pending === 0) done = true;
      }
      if (seen === 0) done = true;
    }
    await consumer.delete().catch(() => undefined);
    return state;
  };

  /** Writes the configured channels into the bucket and removes configured ones no longer there. */
  const publishConfigured = async () => {
    const now = new Date(options.clock()).toISOString();
    const wanted = new Map(options.settings.channels.map((c) => [c.name, c]));
    for (const existing of await channels.list()) {
      if (existing.origin === 'configuration' && !wanted.has(existing.name))
        await channels.remove(existing.name);
    }
    for (const c of wanted.values()) {
      const current = await channels.get(c.name);
      if (current?.origin === 'api') {
        log.warn(
          { channel: c.name },
          'a configured channel has the name of an API channel: the API one is kept',
        );
        continue;
      }
      if (
        current &&
        current.url === c.url &&
        current.secret === c.secret &&
        JSON.stringify(current.filter) === JSON.stringify(c.filter)
      )
        continue;
      await channels.put({
        name: c.name,
        url: c.url,
        ...(c.secret ? { secret: c.secret } : {}),
        filter: c.filter,
        origin: 'configuration',
        definedAt: now,
        definedBy: 'configuration',
      });
    }
  };

  const follow = async () => {
    await publishConfigured();
    const jsm = await jetstreamManager(options.nc);
    let ackFloor: number;
    try {
      ackFloor = (await jsm.consumers.info(STREAMS.events.name, NOTIFIER_CONSUMER)).ack_floor.stream_seq;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound))
        throw error;
      // The first notifier starts at the end of the log: history is not news.
      ackFloor = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
      await jsm.consumers.add(STREAMS.events.name, {
        durable_name: NOTIFIER_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        filter_subjects: NOTIFIED_SUBJECTS,
        ack_wait: nanos(30_000),
        max_ack_pending: 1,
      });
    }
    const state = await replayFold(ackFloor);
    if (!leader || stopped) return;
    const { delivery } = options.settings;
    consumer = await startDurableConsumer({
      nc: options.nc,
      stream: STREAMS.events.name,
      durable: NOTIFIER_CONSUMER,
      filterSubjects: NOTIFIED_SUBJECTS,
      publisher: options.publisher,
      source: options.source,
      unknownTypes: 'skip',
      checkOrigin: true,
      logger: log,
      longRunning: true,
      // Between two attempts the message is kept alive by the next one; the longest wait is maxDelay.
      ackWaitMs: delivery.maxDelayMs + delivery.timeoutMs + 30_000,
      maxDeliver: 10,
      async handler(message) {
        const event = message.envelope;
        const kind = decideNotification(state, event, message.streamSequence);
        if (!kind) return;
        if (options.clock() - Date.parse(event.time) > options.settings.maxAgeMs) {
          log.info({ eventId: event.id, type: event.type }, 'event too old to notify');
          return;
        }
        const notification = notificationFor(kind, event);
        const scope = notificationScope(event);
        for (const channel of await channels.list()) {
          if (!filterAccepts(channel.filter, DEFAULT_NOTIFICATION_KINDS, kind, scope)) continue;
          await deliver(channel, notification, () => message.working());
          if (stopped) throw Object.assign(new Error('stopping'), { handBack: true });
        }
      },
    });
    if (!leader || stopped) await consumer.stop();
  };

  return {
    setLeader(next) {
      if (next === leader || stopped) return;
      leader = next;
      following = following.then(async () => {
        if (leader) {
          await follow().catch((error: unknown) => {
            log.error({ err: (error as Error).message }, 'the notifier could not start following the log');
          });
        } else {
          await consumer?.stop();
          consumer = undefined;
        }
      });
    },
    async sendTest(test, keepAlive) {
      const all = await channels.list();
      const targets = test.channel === undefined ? all : all.filter((c) => c.name === test.channel);
      const at = new Date(options.clock());
      const event: Envelope = {
        specversion: '1.0',
        id: test.testId,
        source: options.source,
        type: TEST_EVENT_TYPE,
        time: at.toISOString(),
        subject: 'notification/test',
        datacontenttype: 'application/json',
        data: { testId: test.testId, channel: test.channel ?? null, requestedBy: test.requestedBy },
      };
      if (test.channel !== undefined && targets.length === 0) {
        const unknown = createEvent(
          NotificationFailed,
          {
            channel: test.channel,
            kind: 'test',
            eventId: test.testId,
            attempts: 1,
            code: 'NOTIFY_CHANNEL_UNKNOWN',
            reason: `no notification channel is named ${JSON.stringify(test.channel)}`,
            failedAt: at.toISOString(),
          },
          { source: options.source, causationid: test.testId },
        );
        await options.publisher
          .publish(unknown, { expectedLastSubjectSequence: 0 })
          .catch((error: unknown) => {
            if (!(error instanceof ConcurrencyConflictError)) throw error;
          });
        return [{ channel: test.channel, ok: false }];
      }
      const outcomes: TestOutcome[] = [];
      for (const channel of targets) {
        const notification: Notification = {
          kind: 'test',
          event,
          ...describeNotification('test', {
            ...event,
            data: { ...(event.data as object), channel: channel.name },
          }),
        };
        outcomes.push({ channel: channel.name, ok: await deliver(channel, notification, keepAlive) });
      }
      return outcomes;
    },
    async stop() {
      stopped = true;
      shutdown.abort();
      leader = false;
      await following;
      await consumer?.stop();
    },
  };
}
