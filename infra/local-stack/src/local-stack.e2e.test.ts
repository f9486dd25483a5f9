import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { createEvent, HostSeen, STREAMS } from '@volback/contracts';
import { connectNats, MessagePublisher } from '@volback/messaging';
import { freePort, waitUntil } from '@volback/testing';
import { describe, expect, it } from 'vitest';
import { adminIdentity, startStack } from './stack-process.ts';

describe('npm start: the local stack', () => {
  it('runs NATS with the streams, reports ready, keeps events across a restart and stops cleanly', async () => {
    const env = {
      VOLBACK_DATA_DIR: mkdtempSync(join(tmpdir(), 'volback-stack-')),
      VOLBACK_NATS_PORT: String(await freePort()),
      VOLBACK_OPS_PORT: String(await freePort()),
      VOLBACK_CATALOG_PORT: String(await freePort()),
      DOCKER_HOST: 'unix:///nonexistent/volback-test/docker.sock',
      VOLBACK_PASSWORD: '',
    };
    const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
    const natsUrl = `nats://127.0.0.1:${env.VOLBACK_NATS_PORT}`;

    let stack = startStack(env);
    await waitUntil('the stack to be ready', async () => (await fetch(ready)).status === 200);
    // Ready means every service ready: the catalog answers at once
    const status = await fetch(`http://127.0.0.1:${env.VOLBACK_CATALOG_PORT}/v1/status`);
    expect(status.status).toBe(200);
    expect(stack.output()).toContain('volback local stack ready');
    const readyReport = (await (await fetch(ready)).json()) as { checks: { name: string }[] };
    expect(readyReport.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['service-catalog', 'service-scheduler', 'service-storage-gateway']),
    );
    expect(stack.output()).toContain('no Docker Engine answers there');
    // The gateway creates the repository, with a generated password only its owner can read.
    await waitUntil('the repository', async () =>
      existsSync(join(env.VOLBACK_DATA_DIR, 'repository/config')),
    );
    expect(statSync(join(env.VOLBACK_DATA_DIR, 'secrets/repository-password')).mode & 0o777).toBe(0o600);
    // Secure by default: no client without an identity (TLS and an nkey).
    await expect(
      connectNats({ servers: natsUrl, name: 'anonymous', connectTimeoutMs: 500 }),
    ).rejects.toThrow();
    const admin = adminIdentity(env.VOLBACK_DATA_DIR);

    const nc = await connectNats({ servers: natsUrl, name: 'e2e', connectTimeoutMs: 5_000, ...admin });
    const event = createEvent(
      HostSeen,
      {
        hostId: 'h1',
        seenAt: new Date().toISOString(),
        intervalSeconds: 30,
        containers: 1,
        volumes: 2,
        backupsRunning: 0,
      },
      { source: 'volback://e2e' },
    );
    await new MessagePublisher(nc).publish(event);
    await nc.close();

    stack.child.kill('SIGTERM');
    expect(await stack.exit).toBe(0);
    await expect(fetch(ready)).rejects.toThrow();
    await expect(connectNats({ servers: natsUrl, name: 'gone', connectTimeoutMs: 500 })).rejects.toThrow();

    stack = startStack(env);
    await waitUntil('the restarted stack', async () => (await fetch(ready)).status === 200);
    const again = await connectNats({ servers: natsUrl, name: 'e2e-2', connectTimeoutMs: 5_000, ...admin });
    const jsm = await jetstreamManager(again);
    const stored = await jsm.streams.getMessage(STREAMS.events.name, { last_by_subj: event.subject });
    expect(stored?.json<{ id: string }>().id).toBe(event.envelope.id);
    // Liveness has a stream of its own that keeps one heartbeat per host (contracts 0.7.0).
    expect((await jsm.streams.info(STREAMS.heartbeats.name)).config.max_msgs_per_subject).toBe(1);
    await again.close();
    // Ctrl-C at a terminal: SIGINT to every process of the stack's group at once
    process.kill(-stack.child.pid!, 'SIGINT');
    expect(await stack.exit).toBe(0);
    // Services stop before NATS (they run in groups of their own): no failed shutdowns
    expect(stack.output()).not.toMatch(/triggerUncaughtException|JetStreamStatusError|shutdown failed/);
    await expect(connectNats({ servers: natsUrl, name: 'gone', connectTimeoutMs: 500 })).rejects.toThrow();
  });

  it('refuses a bad setting with a message naming it, and a busy port with what to do', async () => {
    const bad = startStack({
      VOLBACK_NATS_PORT: 'lots',
      VOLBACK_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-')),
    });
    expect(await bad.exit).toBe(1);
    expect(bad.output()).toMatch(/VOLBACK_NATS_PORT: \\?"lots\\?" is not a whole number from 0 to 65535/);
    expect(bad.output()).toContain('VOLBACK_INVALID_CONFIG');

    const { createServer } = await import('node:net');
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    const port = (blocker.address() as { port: number }).port;
    const busy = startStack({
      VOLBACK_NATS_PORT: String(port),
      VOLBACK_DATA_DIR: mkdtempSync(join(tmpdir(), 'vb-')),
    });
    expect(await busy.exit).toBe(1);
    expect(busy.output()).toContain(`port ${port} on 127.0.0.1 is in use`);
    blocker.close();
  });
});
