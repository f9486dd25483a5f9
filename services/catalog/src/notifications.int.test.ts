import { jetstreamManager } from '@nats-io/jetstream';
import { commandSubject, createEvent, NotificationDelivered, STREAMS } from '@volback/contracts';
import { MessagePublisher, NotificationChannels, type NatsConnection } from '@volback/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { accessToken } from './http/tokens.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';

const READ = 'read-token-0123456789';
const WRITE = 'write-token-0123456789';
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const SECRET_URL = 'ntfy://alice:hunter2-pass@ntfy.example.com/ops-topic-8731?scheme=https';
const SIGNING = 'signing-secret-0123456789';

describe('notification channels through the catalog API (real NATS)', () => {
  let stack: CatalogTestStack;
  let nc: NatsConnection;
  let catalog: Catalog;
  const send = (method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, token = WRITE) =>
    catalog.app.inject({
      method,
      url,
      headers: auth(token),
      ...(body !== undefined ? { payload: body as object } : {}),
    });
  const list = async () =>
    (
      await catalog.app.inject({ method: 'GET', url: '/v1/notifications/channels', headers: auth(READ) })
    ).json() as { items: Array<Record<string, unknown>> };

  beforeAll(async () => {
    stack = await CatalogTestStack.start('notify');
    nc = stack.nc;
    catalog = await stack.catalog('notify-test', {
      access: { tokens: [accessToken('read', 'read', READ), accessToken('write', 'write', WRITE)] },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('given no channel; when a test is asked for; then 404 and no command is sent', async () => {
    const res = await send('POST', '/v1/notifications/test', {});
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'VOLBACK_CATALOG_CHANNEL_NOT_FOUND' });
  });

  it('defines, lists and removes channels without ever showing their secrets', async () => {
    const defined = await send('PUT', '/v1/notifications/channels/ops', {
      url: `generic+https://hooks.example.com/in/9f8e7d6c5b4a3210`,
      secret: SIGNING,
      filter: { kinds: ['failure', 'success'], volumes: ['shop_*'] },
      requestedBy: 'alice',
    });
    expect(defined.statusCode).toBe(200);
    expect(defined.json()).toEqual({
      name: 'ops',
      service: 'generic',
      url: 'generic+https://hooks.example.com/in/***',
      signed: true,
      filter: { kinds: ['failure', 'success'], volumes: ['shop_*'] },
      origin: 'api',
      definedAt: expect.any(String),
      definedBy: 'alice',
    });
    expect((await send('PUT', '/v1/notifications/channels/push', { url: SECRET_URL })).statusCode).toBe(200);
    const { items } = await list();
    expect(items.map((c) => [c['name'], c['url']])).toEqual([
      ['ops', 'generic+https://hooks.example.com/in/***'],
      ['push', 'ntfy://***@ntfy.example.com/***?scheme=https'],
    ]);
    const text = JSON.stringify(items);
    for (const secret of ['hunter2-pass', 'ops-topic-8731', SIGNING, '9f8e7d6c5b4a3210'])
      expect(text).not.toContain(secret);
    // The bucket holds the real URL for the notifier.
    expect((await new NotificationChannels(nc).get('push'))?.url).toBe(SECRET_URL);

    // A read token cannot change them.
    expect((await send('DELETE', '/v1/notifications/channels/push', undefined, READ)).statusCode).toBe(403);
    const removed = await send('DELETE', '/v1/notifications/channels/push');
    expect([removed.statusCode, removed.json()]).toEqual([200, { name: 'push', removed: true }]);
    expect((await send('DELETE', '/v1/notifications/channels/push')).statusCode).toBe(404);
    expect((await list()).items.map((c) => c['name'])).toEqual(['ops']);
  });

  it('given a bad URL or name; then 400 naming the problem, not the URL, and nothing stored', async () => {
    const bad = await send('PUT', '/v1/notifications/channels/bad', {
      url: 'https://user:s3cr3t-pw@example.com/x',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/unknown scheme/);
    expect(bad.body).not.toContain('s3cr3t-pw');
    const slack = await send('PUT', '/v1/notifications/channels/bad', { url: 'slack://hook:tok-en@webhook' });
    expect(slack.statusCode).toBe(400);
    expect(slack.body).not.toContain('tok-en');
    expect((await send('PUT', '/v1/notifications/channels/Bad.Name', { url: SECRET_URL })).statusCode).toBe(
      400,
    );
    expect((await list()).items.map((c) => c['name'])).toEqual(['ops']);
  });

  it("given a channel of the scheduler's configuration; then the API cannot change or remove it", async () => {
    await new NotificationChannels(nc).put({
      name: 'env-1',
      url: 'gotify://push.example.com/AppTok123',
      filter: {},
      origin: 'configuration',
      definedAt: new Date().toISOString(),
      definedBy: 'configuration',
    });
    const put = await send('PUT', '/v1/notifications/channels/env-1', { url: SECRET_URL });
    expect(put.statusCode).toBe(409);
    expect(put.json()).toMatchObject({ code: 'VOLBACK_CATALOG_CHANNEL_NOT_CHANGEABLE' });
    expect((await send('DELETE', '/v1/notifications/channels/env-1')).statusCode).toBe(409);
    expect((await list()).items.find((c) => c['name'] === 'env-1')).toMatchObject({
      url: 'gotify://push.example.com/***',
      origin: 'configuration',
    });
  });

  it('sends SendTestNotification and answers with the outcome the scheduler records', async () => {
    const subject = commandSubject({ kind: 'scheduler' }, 'send-test-notification');
    const jsm = await jetstreamManager(nc);
    // The scheduler's part, on the real stream: read the command, record the outcome.
    const answered = (async () => {
      for (;;) {
        const msg = await jsm.streams
          .getMessage(STREAMS.commands.name, { last_by_subj: subject })
          .catch(() => null);
        if (msg) {
          const data = (msg.json() as { data: { testId: string; channel: string } }).data;
          await new MessagePublisher(nc).publish(
            createEvent(
              NotificationDelivered,
              {
                channel: data.channel,
                service: 'generic',
                kind: 'test',
                eventId: data.testId,
                attempts: 1,
                status: 204,
                deliveredAt: new Date().toISOString(),
              },
              { source: 'volback://scheduler/test' },
            ),
          );
          return data;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const res = await send('POST', '/v1/notifications/test', {
      channel: 'ops',
      waitSeconds: 10,
      requestedBy: 'alice',
    });
    const command = await answered;
    expect(command).toMatchObject({ channel: 'ops', requestedBy: 'alice' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      testId: command.testId,
      complete: true,
      results: [{ channel: 'ops', ok: true, service: 'generic', attempts: 1, status: 204 }],
    });
  });
});
