import { createHmac } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  BackupCompleted,
  BackupFailed,
  createCommand,
  createEvent,
  eventSubjectFilter,
  parseMessage,
  sampleData,
  SendTestNotification,
  STREAMS,
  VolumeAtRisk,
  type Envelope,
  type EventDefinition,
} from '@volback/contracts';
import {
  connectNats,
  drainNats,
  ensureStreams,
  MessagePublisher,
  NotificationChannels,
} from '@volback/messaging';
import { createLogger, createMetrics, type Metrics } from '@volback/observability';
import {
  startHttpReceiver,
  startNatsServer,
  startSmtpReceiver,
  waitUntil,
  type HttpReceiver,
  type NatsServer,
  type SmtpReceiver,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotifierSettings } from './adapters/notifier.ts';
import { DEFAULT_SETTINGS } from './domain/index.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';

const logger = createLogger({
  service: 'notifier-test',
  level: process.env['LOG_LEVEL'] === 'debug' ? 'debug' : 'warn',
});
const HOST = 'notify-host';
const VOLUME = 'shop_db';
const SECRET = 'webhook-signing-secret-42';

let nats: NatsServer;
let nc: NatsConnection;
let http: HttpReceiver;
let smtp: SmtpReceiver;
let publisher: MessagePublisher;

/** The metrics of the scheduler started last. */
let metrics: Metrics;

async function start(instanceId: string, notifier: NotifierSettings): Promise<Scheduler> {
  metrics = createMetrics({ service: 'scheduler', defaultMetrics: false });
  return startScheduler({
    nc,
    settings: {
      ...DEFAULT_SETTINGS,
      prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
      check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
      source: `volback://scheduler/${instanceId}`,
    },
    instanceId,
    logger,
    metrics,
    tickMs: 200,
    leaseMs: 2_000,
    notifier,
  });
}

/** What an agent of HOST says. */
async function agentSays(def: EventDefinition, overrides: Record<string, unknown>): Promise<Envelope> {
  const message = createEvent(
    def,
    sampleData(def, { hostId: HOST, volumeName: VOLUME, ...overrides }) as never,
    {
      source: `volback://agent/${HOST}`,
    },
  );
  await publisher.publish(message);
  return message.envelope;
}

/** The notification outcomes stored so far. */
async function outcomes(): Promise<{ subject: string; raw: string; envelope: Envelope }[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAMS.events.name);
  const out: { subject: string; raw: string; envelope: Envelope }[] = [];
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(STREAMS.events.name, { seq }).catch(() => null);
    if (!msg || !msg.subject.startsWith(eventSubjectFilter('notification').slice(0, -1))) continue;
    const raw = new TextDecoder().decode(msg.data);
    const parsed = parseMessage(raw);
    if (parsed.ok) out.push({ subject: msg.subject, raw, envelope: parsed.message.envelope });
  }
  return out;
}

const eventsAt = (r: HttpReceiver, path: string) => r.requests.filter((q) => q.path === path);

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: [nats.url], name: 'notifier-test' });
  await ensureStreams(await jetstreamManager(nc));
  publisher = new MessagePublisher(nc);
  http = await startHttpReceiver();
  smtp = await startSmtpReceiver();
});

afterAll(async () => {
  await http?.close();
  await smtp?.close();
  if (nc && !nc.isClosed()) await drainNats(nc, 2_000);
  await nats?.destroy();
});

describe('the notifier in the scheduler, with real NATS, an HTTP receiver and an SMTP server', () => {
  it('delivers failures, recoveries and at-risk once per channel, signed, retried, recorded without secrets', async () => {
    const settings: NotifierSettings = {
      channels: [
        {
          name: 'hook',
          url: `generic+${http.url}/hook?token=q-secret-99`,
          secret: SECRET,
          filter: { kinds: ['failure', 'recovery', 'at-risk'] },
        },
      ],
      delivery: { attempts: 4, initialDelayMs: 50, maxDelayMs: 200, timeoutMs: 5_000 },
      maxAgeMs: 3_600_000,
    };
    // Channels of the API: in the bucket the catalog writes.
    const channels = new NotificationChannels(nc);
    const defined = { origin: 'api' as const, definedAt: new Date().toISOString(), definedBy: 'test' };
    await channels.put({
      name: 'mail',
      url: `smtp://127.0.0.1:${smtp.port}/?from=volback@example.com&to=ops@example.com&encryption=none`,
      filter: { kinds: ['at-risk'] },
      ...defined,
    });
    await channels.put({
      name: 'chat-other',
      url: `mattermost://${new URL(http.url).host}/tokenabc123?disabletls=yes`,
      filter: { volumes: ['other_*'] },
      ...defined,
    });

    let scheduler = await start('one', settings);
    await waitUntil('leadership', async () => scheduler.isLeader(), 10_000);
    // The configured channel is in the bucket for the catalog to list.
    await waitUntil(
      'the configured channel in the bucket',
      async () => (await channels.get('hook'))?.origin === 'configuration',
      10_000,
    );
    // The first notifier starts at the end of the log: wait for its consumer before saying anything.
    const jsm = await jetstreamManager(nc);
    await waitUntil('the notifier consumer', async () =>
      jsm.consumers.info(STREAMS.events.name, 'notifier').then(
        () => true,
        () => false,
      ),
    );

    // A failure; the receiver answers 500 first: the notifier retries.
    http.respondWith(500);
    const failed = await agentSays(BackupFailed, {
      backupId: 'bk-1',
      reason: 'disk on fire',
      failedAt: new Date().toISOString(),
    });
    const [first, second] = await http.waitForRequests(2, (r) => r.path.startsWith('/hook'));
    expect([first!.status, second!.status]).toEqual([500, 204]);
    expect(second!.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(second!.headers['x-volback-signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(second!.body).digest('hex')}`,
    );
    expect(JSON.parse(second!.body.toString())).toEqual(failed);
    await waitUntil('the delivery counted', async () =>
      (await metrics.registry.metrics()).includes(
        'volback_scheduler_notifications_total{kind="failure",outcome="delivered",service="scheduler"} 1',
      ),
    );

    // The scheduler is replaced: the new one rebuilds what it must remember (the volume failed).
    await scheduler.stop();
    scheduler = await start('two', settings);
    await waitUntil('leadership of the second', async () => scheduler.isLeader(), 10_000);
    const completed = await agentSays(BackupCompleted, {
      backupId: 'bk-2',
      completedAt: new Date().toISOString(),
    });
    const recovery = (await http.waitForRequests(3, (r) => r.path.startsWith('/hook')))[2]!;
    expect(recovery.headers['x-volback-notification']).toBe('recovery');
    expect(JSON.parse(recovery.body.toString()).id).toBe(completed.id);

    // At risk: to the webhook and by mail (its filter); the Mattermost channel filters other volumes.
    await agentSays(VolumeAtRisk, { detectedAt: new Date().toISOString() });
    await http.waitForRequests(4, (r) => r.path.startsWith('/hook'));
    const [mail] = await smtp.waitForMails(1);
    expect(mail!.raw).toMatch(/^Subject: volback: volume shop_db on notify-host is at risk/m);
    expect(eventsAt(http, '/hooks/tokenabc123')).toEqual([]);

    // Every outcome is recorded once, and none holds a URL, token or secret.
    await waitUntil('4 outcomes', async () => (await outcomes()).length === 4, 10_000);
    const stored = await outcomes();
    expect(
      stored.map((o) => [o.envelope.type, (o.envelope.data as { channel: string }).channel]).sort(),
    ).toEqual([
      ['io.volback.notification.delivered.v1', 'hook'],
      ['io.volback.notification.delivered.v1', 'hook'],
      ['io.volback.notification.delivered.v1', 'hook'],
      ['io.volback.notification.delivered.v1', 'mail'],
    ]);
    expect(
      stored.find((o) => (o.envelope.data as { eventId: string }).eventId === failed.id)!.envelope.data,
    ).toMatchObject({
      kind: 'failure',
      attempts: 2,
      status: 204,
      hostId: HOST,
      volumeName: VOLUME,
    });
    for (const o of stored) {
      for (const secret of [SECRET, 'q-secret-99', 'tokenabc123', http.url])
        expect(o.raw).not.toContain(secret);
    }

    // A third scheduler reads on from the consumer's position: nothing is sent twice.
    await scheduler.stop();
    scheduler = await start('three', settings);
    await waitUntil('leadership of the third', async () => scheduler.isLeader(), 10_000);
    const marker = await agentSays(BackupFailed, { backupId: 'bk-3', failedAt: new Date().toISOString() });
    await http.waitForRequests(5, (r) => r.path.startsWith('/hook'));
    const ids = http.requests
      .filter((r) => r.path.startsWith('/hook') && r.status === 204)
      .map((r) => JSON.parse(r.body.toString()).id);
    expect(ids).toEqual([failed.id, completed.id, expect.any(String), marker.id]);

    // A test through the command the catalog sends; an unknown channel fails by name.
    for (const channel of ['hook', 'nope']) {
      await publisher.publish(
        createCommand(
          SendTestNotification,
          { testId: `nt-${channel}`, channel, requestedBy: 'test' },
          { source: 'volback://catalog/test' },
        ),
      );
    }
    const test = (await http.waitForRequests(1, (r) => r.headers['x-volback-notification'] === 'test'))[0]!;
    expect(JSON.parse(test.body.toString())).toMatchObject({
      type: 'io.volback.notification.test.v1',
      id: 'nt-hook',
    });
    await waitUntil('the test outcomes', async () => (await outcomes()).length === 7, 10_000);
    const tests = (await outcomes()).filter((o) => (o.envelope.data as { kind: string }).kind === 'test');
    expect(tests.map((o) => [o.envelope.type, o.envelope.data]).sort()).toEqual([
      [
        'io.volback.notification.delivered.v1',
        expect.objectContaining({ channel: 'hook', eventId: 'nt-hook', service: 'generic' }),
      ],
      [
        'io.volback.notification.failed.v1',
        expect.objectContaining({ channel: 'nope', code: 'NOTIFY_CHANNEL_UNKNOWN' }),
      ],
    ]);
    await scheduler.stop();
  });
});
