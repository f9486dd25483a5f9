import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  createCommand,
  encodeSubjectToken,
  parseMessage,
  SendTestNotification,
  SUBJECT_ROOTS,
  type NotificationChannel,
  type NotificationFilter,
  type RedactedNotificationChannel,
} from '@volback/contracts';
import type { MessagePublisher, NotificationChannels } from '@volback/messaging';
import { parseChannelUrl, redactChannel } from '@volback/notify';
import {
  BadRequestError,
  CatalogErrorCode,
  ConflictError,
  NotFoundError,
  UnavailableError,
} from '../errors.ts';

/** One channel's answer to a test. */
export interface TestResult {
  readonly channel: string;
  readonly ok: boolean;
  readonly service?: string;
  readonly attempts: number;
  readonly status?: number;
  readonly code?: string;
  readonly reason?: string;
}

/**
 * The notification channels through the API: listed without secrets, defined and removed in the
 * channels bucket (only API channels: the configured ones belong to the scheduler's settings), and
 * tested through `SendTestNotification`, whose outcome events it waits for.
 */
export class NotificationAdmin {
  readonly #nc: NatsConnection;
  readonly #channels: NotificationChannels;
  readonly #publisher: MessagePublisher;
  readonly #source: string;
  readonly #clock: () => Date;

  constructor(
    nc: NatsConnection,
    channels: NotificationChannels,
    publisher: MessagePublisher,
    source: string,
    clock: () => Date = () => new Date(),
  ) {
    this.#nc = nc;
    this.#channels = channels;
    this.#publisher = publisher;
    this.#source = source;
    this.#clock = clock;
  }

  async #all(): Promise<NotificationChannel[]> {
    try {
      return await this.#channels.list();
    } catch (cause) {
      throw new UnavailableError(
        CatalogErrorCode.MessagingUnavailable,
        'the notification channels could not be read',
        {
          cause,
        },
      );
    }
  }

  /** Every channel, redacted. */
  async list(): Promise<RedactedNotificationChannel[]> {
    return (await this.#all()).map(redactChannel);
  }

  /** Defines or replaces an API channel; the URL must parse (400 names the problem, never the URL). */
  async define(
    name: string,
    spec: { url: string; secret?: string | undefined; filter: NotificationFilter },
    definedBy: string,
  ): Promise<RedactedNotificationChannel> {
    try {
      parseChannelUrl(spec.url);
    } catch (error) {
      throw new BadRequestError(CatalogErrorCode.BadRequest, 'body.url', (error as Error).message);
    }
    const existing = (await this.#all()).find((c) => c.name === name);
    if (existing?.origin === 'configuration') {
      throw new ConflictError(
        CatalogErrorCode.ChannelNotChangeable,
        `channel ${JSON.stringify(name)} comes from the scheduler's configuration; change it there`,
      );
    }
    const channel: NotificationChannel = {
      name,
      url: spec.url,
      ...(spec.secret !== undefined ? { secret: spec.secret } : {}),
      filter: spec.filter,
      origin: 'api',
      definedAt: this.#clock().toISOString(),
      definedBy,
    };
    await this.#channels.put(channel);
    return redactChannel(channel);
  }

  /** Removes an API channel. */
  async remove(name: string): Promise<void> {
    const existing = (await this.#all()).find((c) => c.name === name);
    if (!existing)
      throw new NotFoundError(
        CatalogErrorCode.ChannelNotFound,
        `no notification channel is named ${JSON.stringify(name)}`,
      );
    if (existing.origin === 'configuration') {
      throw new ConflictError(
        CatalogErrorCode.ChannelNotChangeable,
        `channel ${JSON.stringify(name)} comes from the scheduler's configuration; remove it there`,
      );
    }
    await this.#channels.remove(name);
  }

  /**
   * Sends `SendTestNotification` and waits up to `timeoutMs` for one outcome per channel it goes to
   * (`complete: false` when some did not answer in time: the scheduler may still be retrying).
   */
  async test(
    channel: string | undefined,
    requestedBy: string,
    timeoutMs: number,
  ): Promise<{ testId: string; complete: boolean; results: TestResult[] }> {
    const all = await this.#all();
    const targets = channel === undefined ? all : all.filter((c) => c.name === channel);
    if (targets.length === 0) {
      throw new NotFoundError(
        CatalogErrorCode.ChannelNotFound,
        channel === undefined
          ? 'no notification channel is defined'
          : `no notification channel is named ${JSON.stringify(channel)}`,
      );
    }
    const testId = `nt-${randomUUID()}`;
    const results = new Map<string, TestResult>();
    const sub = this.#nc.subscribe(`${SUBJECT_ROOTS.events}.notification.*.${encodeSubjectToken(testId)}`);
    const done = (async () => {
      for await (const msg of sub) {
        const parsed = parseMessage(msg.data);
        if (!parsed.ok) continue;
        const d = parsed.message.envelope.data as TestResult & { channel: string };
        results.set(d.channel, {
          channel: d.channel,
          ok: parsed.message.envelope.type.endsWith('.delivered.v1'),
          ...(d.service ? { service: d.service } : {}),
          attempts: d.attempts,
          ...(d.status !== undefined ? { status: d.status } : {}),
          ...(d.code ? { code: d.code } : {}),
          ...(d.reason ? { reason: d.reason } : {}),
        });
        if (results.size >= targets.length) break;
      }
    })();
    const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
    try {
      await this.#publisher.publish(
        createCommand(
          SendTestNotification,
          { testId, ...(channel !== undefined ? { channel } : {}), requestedBy },
          { source: this.#source, correlationid: testId },
        ),
      );
    } catch (cause) {
      sub.unsubscribe();
      clearTimeout(timer);
      throw new UnavailableError(CatalogErrorCode.MessagingUnavailable, 'NATS did not take the message', {
        cause,
      });
    }
    await done;
    clearTimeout(timer);
    sub.unsubscribe();
    const ordered = targets.map((t) => results.get(t.name)).filter((r): r is TestResult => r !== undefined);
    return { testId, complete: ordered.length === targets.length, results: ordered };
  }
}
