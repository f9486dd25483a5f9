import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Envelope } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  startDockerEngine,
  startHttpReceiver,
  startNatsServer,
  type DockerEngine,
  type HttpReceiver,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  startCatalogService,
  startService,
  stopTestStack,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-notify-password';
const SECRET = 'e2e-webhook-signing-secret';
const TOKEN = 'e2e-notify-write-token';

type Data = Record<string, unknown>;

describe('notifications: a real failed backup reaches a webhook, signed; its recovery too; volback notify test', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  let hook: HttpReceiver;
  let catalog: CatalogProcess;
  let hostId: string;
  const services = new Set<ServiceProcess>();
  const startGateway = async () => {
    const gateway = await startService(
      'gateway',
      'gateway',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
      dir,
    );
    services.add(gateway);
    return gateway;
  };
  const volback = async (args: string[]) => {
    try {
      const { stdout } = await run(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: catalog.url, VOLBACK_TOKEN: TOKEN },
      });
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  };
  const signed = (body: Buffer) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-notify-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-notify' });
    events = new EventLog(nc);
    hook = await startHttpReceiver();
    await engine.docker.createVolume({ Name: 'orders' });
    await runInVolume(engine.docker, engine.image, 'orders', 'echo order-1 > /v/orders.csv');

    await startGateway();
    const agent = await startService(
      'agent',
      'agent',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
        VOLBACK_HELPER_IMAGE: engine.image,
      },
      dir,
    );
    services.add(agent);
    hostId = (await readFile(join(dir, 'agent', 'host-id'), 'utf8')).trim();
    // The URL with its token is a secret: the scheduler reads it from a file.
    const urls = join(dir, 'notify-urls');
    await writeFile(urls, `hook=generic+${hook.url}/volback?token=e2e-url-token\n`, { mode: 0o600 });
    const scheduler = await startService(
      'scheduler',
      'scheduler',
      {
        VOLBACK_NATS_URL: nats.url,
        VOLBACK_SCHEDULER_ID: 'scheduler-1',
        VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled',
        VOLBACK_NOTIFY_URLS_FILE: urls,
        VOLBACK_NOTIFY_WEBHOOK_SECRET: SECRET,
        VOLBACK_NOTIFY_RETRY_DELAY_MS: '100',
      },
      dir,
    );
    services.add(scheduler);
    catalog = await startCatalogService(
      'catalog',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: TOKEN },
      join(dir, 'catalog'),
      dir,
    );
    services.add(catalog);
    await events.waitFor(
      'the volume discovered',
      (e) => e.type === 'io.volback.volume.discovered.v1' && (e.data as Data)['volumeName'] === 'orders',
    );
    // The notifier has started following the log (a new one starts at its end).
    const jsm = await jetstreamManager(nc);
    for (let i = 0; ; i++) {
      if (
        await jsm.consumers.info('VOLBACK_EVENTS', 'notifier').then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 200) throw new Error('the notifier consumer never appeared');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await hook?.close();
    await stopTestStack({ events, services, nc, engine, nats, dir });
  });

  it('posts the BackupFailed CloudEvent of a backup whose gateway is gone, then the recovery once it is back', async () => {
    const gateway = [...services].find((s) => s.name === 'gateway')!;
    await gateway.stop(5_000);
    services.delete(gateway);
    hook.respondWith(500);
    const res = await fetch(`${catalog.url}/v1/hosts/${encodeURIComponent(hostId)}/volumes/orders/backups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(202);
    const { backupId } = (await res.json()) as { backupId: string };
    const failed = await events.waitFor(
      'the backup to fail',
      (e) => e.type === 'io.volback.backup.failed.v1' && (e.data as Data)['backupId'] === backupId,
      120_000,
    );

    // The receiver answered 500 first: the notifier tried again.
    const [first, second] = await hook.waitForRequests(2, (r) => r.path.startsWith('/volback'), 60_000);
    expect([first!.status, second!.status]).toEqual([500, 204]);
    expect(second!.path).toBe('/volback?token=e2e-url-token');
    expect(second!.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(second!.headers['x-volback-notification']).toBe('failure');
    expect(second!.headers['x-volback-signature']).toBe(signed(second!.body));
    const posted = JSON.parse(second!.body.toString()) as Envelope;
    expect(posted).toEqual(failed);
    const delivered = await events.waitFor(
      'the delivery record',
      (e) => e.type === 'io.volback.notification.delivered.v1' && (e.data as Data)['eventId'] === failed.id,
    );
    expect(delivered.data).toMatchObject({
      channel: 'hook',
      service: 'generic',
      kind: 'failure',
      attempts: 2,
      status: 204,
      hostId,
      volumeName: 'orders',
    });
    expect(JSON.stringify(delivered)).not.toContain('e2e-url-token');

    // The gateway returns; the next backup succeeds: a recovery.
    await startGateway();
    const again = await fetch(
      `${catalog.url}/v1/hosts/${encodeURIComponent(hostId)}/volumes/orders/backups`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      },
    );
    const next = ((await again.json()) as { backupId: string }).backupId;
    const completed = await events.waitFor(
      'the next backup to complete',
      (e) => e.type === 'io.volback.backup.completed.v1' && (e.data as Data)['backupId'] === next,
      120_000,
    );
    const recovery = (
      await hook.waitForRequests(1, (r) => r.headers['x-volback-notification'] === 'recovery', 60_000)
    )[0]!;
    expect(JSON.parse(recovery.body.toString())).toMatchObject({
      id: completed.id,
      type: 'io.volback.backup.completed.v1',
    });
    expect(recovery.headers['x-volback-signature']).toBe(signed(recovery.body));
  }, 300_000);

  it('lists the channel redacted and sends a test with `volback notify test`', async () => {
    const list = await volback(['notify', 'list', '--json']);
    expect(list.code, list.stdout).toBe(0);
    const channels = JSON.parse(list.stdout) as Array<Data>;
    expect(channels).toEqual([
      expect.objectContaining({
        name: 'hook',
        service: 'generic',
        url: `generic+${hook.url}/volback?token=***`,
        signed: true,
        origin: 'configuration',
      }),
    ]);
    const test = await volback(['notify', 'test', 'hook']);
    expect(test.code, test.stdout).toBe(0);
    expect(test.stdout).toMatch(/hook\s+delivered\s+1\s+status 204/);
    const posted = (await hook.waitForRequests(1, (r) => r.headers['x-volback-notification'] === 'test'))[0]!;
    expect(JSON.parse(posted.body.toString())).toMatchObject({
      type: 'io.volback.notification.test.v1',
      data: { channel: 'hook', requestedBy: 'cli' },
    });
    const unknown = await volback(['notify', 'test', 'nope']);
    expect(unknown.code).toBe(5);
    expect(unknown.stdout).toMatch(/no notification channel is named "nope"/);
  }, 120_000);

  it('defines a Mattermost channel from a file with `volback notify set`, tests and removes it', async () => {
    const urlFile = join(dir, 'chat-url');
    await writeFile(
      urlFile,
      `mattermost://volback@${new URL(hook.url).host}/chattoken42/ops?disabletls=yes\n`,
      {
        mode: 0o600,
      },
    );
    const set = await volback([
      'notify',
      'set',
      'chat',
      '--url-file',
      urlFile,
      '--kind',
      'failure',
      '--volume',
      'orders',
    ]);
    expect(set.code, set.stdout).toBe(0);
    expect(set.stdout).toContain(
      `channel chat: mattermost mattermost://***@${new URL(hook.url).host}/***/ops?disabletls=yes`,
    );
    expect(set.stdout).not.toContain('chattoken42');
    const test = await volback(['notify', 'test', 'chat']);
    expect(test.code, test.stdout).toBe(0);
    const posted = (await hook.waitForRequests(1, (r) => r.path === '/hooks/chattoken42'))[0]!;
    expect(JSON.parse(posted.body.toString())).toMatchObject({
      username: 'volback',
      channel: 'ops',
      text: expect.stringMatching(/^\*volback: test notification\*/),
    });
    expect((await volback(['notify', 'remove', 'chat'])).code).toBe(0);
    const after = JSON.parse((await volback(['notify', '--json'])).stdout) as Array<Data>;
    expect(after.map((c) => c['name'])).toEqual(['hook']);
  }, 120_000);
});
