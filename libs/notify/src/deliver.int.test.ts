import { createHmac } from 'node:crypto';
import { createEvent, BackupFailed, sampleData, type NotificationChannel } from '@volback/contracts';
import { startHttpReceiver, startSmtpReceiver, type HttpReceiver, type SmtpReceiver } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverNotification, SIGNATURE_HEADER } from './deliver.ts';
import { describeNotification, type Notification } from './notification.ts';

const failed = createEvent(BackupFailed, sampleData(BackupFailed, { reason: 'gateway unreachable' }), {
  source: 'volback://agent/test',
  id: 'evt-1',
}).envelope;
const notification: Notification = {
  kind: 'failure',
  event: failed,
  hostId: failed.data.hostId,
  volumeName: failed.data.volumeName,
  ...describeNotification('failure', failed),
};
const fast = { initialDelayMs: 20, maxDelayMs: 100, timeoutMs: 5_000 };

function channel(url: string, extra: Partial<NotificationChannel> = {}): NotificationChannel {
  return {
    name: 'test',
    url,
    filter: {},
    origin: 'api',
    definedAt: '2026-01-01T00:00:00.000Z',
    definedBy: 'test',
    ...extra,
  };
}

describe('deliverNotification against real local receivers', () => {
  let http: HttpReceiver;
  let smtp: SmtpReceiver;
  beforeAll(async () => {
    http = await startHttpReceiver();
    smtp = await startSmtpReceiver({ user: 'mailer', password: 'p@ss word' });
  });
  afterAll(async () => {
    await http?.close();
    await smtp?.close();
  });

  it('given a generic webhook with a secret that fails twice with 500; then the third POST carries the signed CloudEvent', async () => {
    http.requests.length = 0;
    http.respondWith(500, 503);
    const secret = 'webhook-secret-0123456789';
    const result = await deliverNotification(
      channel(`generic+${http.url}/hook?team=ops`, { secret }),
      notification,
      fast,
    );
    expect(result).toEqual({ ok: true, attempts: 3, status: 204 });
    expect(http.requests.map((r) => r.status)).toEqual([500, 503, 204]);
    const last = http.requests[2]!;
    expect(last.method).toBe('POST');
    expect(last.path).toBe('/hook?team=ops');
    expect(last.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(last.headers['x-volback-notification']).toBe('failure');
    const expected = `sha256=${createHmac('sha256', secret).update(last.body).digest('hex')}`;
    expect(last.headers[SIGNATURE_HEADER]).toBe(expected);
    const event = JSON.parse(last.body.toString('utf8'));
    expect(event).toMatchObject({
      specversion: '1.0',
      id: 'evt-1',
      type: 'io.volback.backup.failed.v1',
      datacontenttype: 'application/json',
      data: { reason: 'gateway unreachable' },
    });
  });

  it('given a receiver that refuses (404) or never answers well; then a failure naming the status, no retry on 4xx', async () => {
    http.requests.length = 0;
    http.respondWith(404);
    const refused = await deliverNotification(channel(`generic+${http.url}/gone`), notification, fast);
    expect(refused).toMatchObject({ ok: false, attempts: 1, status: 404, code: 'NOTIFY_HTTP_STATUS' });
    http.respondWith(500, 500, 500);
    const down = await deliverNotification(channel(`generic+${http.url}/down`), notification, {
      ...fast,
      attempts: 3,
    });
    expect(down).toMatchObject({ ok: false, attempts: 3, status: 500 });
    const closed = await deliverNotification(channel('generic+http://127.0.0.1:9/x'), notification, {
      ...fast,
      attempts: 2,
    });
    expect(closed).toMatchObject({ ok: false, attempts: 2, code: 'NOTIFY_UNREACHABLE' });
  });

  it('given ntfy, Mattermost and Gotify URLs at the local receiver; then each gets its own request format', async () => {
    http.requests.length = 0;
    const host = `127.0.0.1:${http.port}`;
    for (const url of [
      `ntfy://:tk_secret@${host}/backups?scheme=http`,
      `mattermost://volback@${host}/hooktoken123/ops?disabletls=yes`,
      `gotify://${host}/AppToken99?disabletls=yes`,
    ]) {
      expect(await deliverNotification(channel(url), notification, fast)).toMatchObject({
        ok: true,
        attempts: 1,
      });
    }
    const [ntfy, mattermost, gotify] = http.requests;
    expect(ntfy).toMatchObject({ path: '/backups' });
    expect(ntfy!.headers).toMatchObject({
      authorization: 'Bearer tk_secret',
      priority: 'high',
      title: notification.title,
    });
    expect(ntfy!.body.toString()).toContain('reason: gateway unreachable');
    expect(mattermost!.path).toBe('/hooks/hooktoken123');
    expect(JSON.parse(mattermost!.body.toString())).toEqual({
      text: `*${notification.title}*\n${notification.text}`,
      username: 'volback',
      channel: 'ops',
    });
    expect(gotify!.path).toBe('/message');
    expect(gotify!.headers['x-gotify-key']).toBe('AppToken99');
    expect(JSON.parse(gotify!.body.toString())).toEqual({
      title: notification.title,
      message: notification.text,
      priority: 8,
    });
  });

  it('given an smtp URL with a login; then the local SMTP server gets the mail, and a wrong password fails without naming it', async () => {
    const url = `smtp://mailer:p%40ss%20word@127.0.0.1:${smtp.port}/?from=volback@example.com&to=ops@example.com,dba@example.com&encryption=none`;
    expect(await deliverNotification(channel(url), notification, fast)).toEqual({
      ok: true,
      attempts: 1,
      status: 250,
    });
    const [mail] = await smtp.waitForMails(1);
    expect(mail).toMatchObject({
      from: 'volback@example.com',
      to: ['ops@example.com', 'dba@example.com'],
      user: 'mailer',
    });
    expect(mail!.raw).toMatch(/^Subject: volback: backup of volume shop_db.data/m);
    expect(mail!.raw).toContain('reason: gateway unreachable');
    const wrong = await deliverNotification(
      channel(url.replace('p%40ss%20word', 'hunter22')),
      notification,
      fast,
    );
    expect(wrong).toMatchObject({ ok: false, attempts: 1, code: 'NOTIFY_SMTP_REFUSED', status: 535 });
    expect(wrong.reason).not.toContain('hunter22');
  });
});
