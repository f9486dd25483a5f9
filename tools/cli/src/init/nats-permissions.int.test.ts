// Attacks on a real nats-server run with the configuration `volback init` writes: who may not
// connect, and what each identity may not publish, subscribe to or change (SECURITY-PLAN §2).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { createUser } from '@nats-io/nkeys';
import {
  commandSubject,
  commandSubjectFilter,
  createEvent,
  createHeartbeat,
  dataSubject,
  eventSubject,
  GRANTS_BUCKET,
  NOTIFY_CHANNELS_BUCKET,
  HostSeen,
  inboxPrefix,
  heartbeatSubject,
  progressSubject,
  SCHEDULER_LEADER_BUCKET,
  SCHEDULER_SNAPSHOT_BUCKET,
  STREAMS,
  subscriberDurableName,
  type Identity,
} from '@volback/contracts';
import {
  connectNats,
  ensureKvBucket,
  ensureStreams,
  followHeartbeats,
  MessagePublisher,
  NotificationChannels,
  type NatsConnection,
} from '@volback/messaging';
import { runToEnd, startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = new URL('../main.ts', import.meta.url).pathname;

const volback = (args: string[]) => runToEnd(process.execPath, [CLI, ...args]);

let root: string;
let dir: string;
let nats: NatsServer;
let admin: NatsConnection;
let adminJsm: JetStreamManager;
const open: NatsConnection[] = [];

const ids = (name: string) => join(dir, 'identities', name);
const agentSeed = (hostId: string) => ids(`agent-${hostId}.nk`);

async function connectAs(identity: Identity, seedFile: string, name = 'attack'): Promise<NatsConnection> {
  const nc = await connectNats({
    servers: nats.url,
    name,
    nkeyFile: seedFile,
    caFile: join(dir, 'ca/ca.crt'),
    inboxPrefix: inboxPrefix(identity),
    connectTimeoutMs: 3_000,
  });
  open.push(nc);
  return nc;
}

/** True for the client's report of a permission violation (a request's error wraps it). */
function isViolation(error: Error | undefined): boolean {
  if (!error) return false;
  return (
    error.name === 'PermissionViolationError' ||
    (error.cause as Error | undefined)?.name === 'PermissionViolationError'
  );
}

/** A request (a publish that wants an answer) the server refuses as a permission violation. */
async function publishRefused(nc: NatsConnection, subject: string): Promise<void> {
  const error = await nc.request(subject, 'x', { timeout: 3_000 }).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(isViolation(error), `publish to ${subject}: ${String(error)}`).toBe(true);
}

/** A subscription the server refuses. */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  const closed = await sub.closed;
  expect(isViolation(closed as Error | undefined), `subscribe to ${subject}`).toBe(true);
}

/** A connection with this seed is refused (a rotated or revoked key). */
async function expectKeyRefused(nkeyFile: string): Promise<void> {
  const caFile = join(dir, 'ca/ca.crt');
  await expect(
    connectNats({ servers: nats.url, name: 'refused', caFile, nkeyFile, connectTimeoutMs: 500 }),
  ).rejects.toThrow(/Authorization Violation/i);
}

async function jsRefused(call: Promise<unknown>): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: Error) => e,
  );
  expect(isViolation(error), String(error)).toBe(true);
}

const hostSeen = (hostId: string) =>
  createEvent(
    HostSeen,
    {
      hostId,
      seenAt: new Date().toISOString(),
      intervalSeconds: 30,
      containers: 0,
      volumes: 0,
      backupsRunning: 0,
    },
    { source: `volback://agent/${hostId}` },
  );

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volback-nats-perms-'));
  dir = join(root, 'secrets');
  const init = await volback(['init', '--dir', dir, '--nats-store-dir', join(root, 'jetstream')]);
  expect(init.code, init.output).toBe(0);
  for (const [name, hostId] of [
    ['box-a', 'host-a'],
    ['box-b', 'host-b'],
  ]) {
    const added = await volback(['init', 'agent', name!, '--host-id', hostId!, '--dir', dir]);
    expect(added.code, added.output).toBe(0);
  }
  const sub = await volback(['init', 'subscriber', 'ext', '--dir', dir]);
  expect(sub.code, sub.output).toBe(0);
  nats = await startNatsServer({ configFile: join(dir, 'nats/nats-server.conf'), dataDir: root });
  admin = await connectAs({ kind: 'admin' }, ids('admin.nk'), 'admin');
  adminJsm = await jetstreamManager(admin);
  await ensureStreams(adminJsm);
  await new Kvm(admin).create(SCHEDULER_LEADER_BUCKET, { history: 1 });
});

afterAll(async () => {
  for (const nc of open) await nc.close().catch(() => undefined);
  await nats?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('NATS with the configuration volback init writes', () => {
  it('refuses clients without TLS trust, without an identity, or with an unknown key', async () => {
    await expect(connectNats({ servers: nats.url, name: 'anon', connectTimeoutMs: 500 })).rejects.toThrow(
      /certificate/,
    );
    const caFile = join(dir, 'ca/ca.crt');
    await expect(
      connectNats({ servers: nats.url, name: 'anon', caFile, connectTimeoutMs: 500 }),
    ).rejects.toThrow(/Authorization Violation/i);
    const stranger = join(root, 'stranger.nk');
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(stranger, new TextDecoder().decode(createUser().getSeed()), { mode: 0o600 }),
    );
    const said: string[] = [];
    const logger = { info() {}, warn() {}, error: (_: object, msg?: string) => said.push(msg ?? '') };
    await expect(
      connectNats({
        servers: nats.url,
        name: 'anon',
        caFile,
        nkeyFile: stranger,
        connectTimeoutMs: 1_500,
        logger,
      }),
    ).rejects.toThrow(/Authorization Violation/i);
    // The service's log says why, not "not reachable".
    expect(said[0]).toMatch(/NATS refused this identity/);
  });

  it("an agent publishes its own host's events, never another host's, nor commands", async () => {
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    const publisher = new MessagePublisher(a);
    await publisher.publish(hostSeen('host-a'));
    const forged = hostSeen('host-b');
    await expect(publisher.publish(forged)).rejects.toThrow();
    await publishRefused(a, eventSubject('host', 'host-b'));
    await publishRefused(a, eventSubject('backup', 'host-b', 'b1'));
    await publishRefused(a, eventSubject('policy', 'p1'));
    await publishRefused(a, commandSubject({ kind: 'host', hostId: 'host-b' }, 'backup-volume'));
    await publishRefused(a, commandSubject({ kind: 'host', hostId: 'host-a' }, 'backup-volume'));
    await publishRefused(a, commandSubject({ kind: 'gateway' }, 'prune-repository'));
    await publishRefused(a, progressSubject('host-b', 'w1'));
    const stored = await adminJsm.streams
      .getMessage(STREAMS.events.name, { last_by_subj: forged.subject })
      .catch(() => null);
    expect(stored).toBeNull();
  });

  it("an agent sends its own host's heartbeat only; scheduler and catalog follow them, a subscriber reads them", async () => {
    const heartbeat = (hostId: string) =>
      createHeartbeat(
        {
          hostId,
          seenAt: new Date().toISOString(),
          intervalSeconds: 30,
          containers: 1,
          volumes: 2,
          backupsRunning: 0,
        },
        { source: `volback://agent/${hostId}` },
      );
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    await new MessagePublisher(a).publish(heartbeat('host-a'));
    await expect(new MessagePublisher(a).publish(heartbeat('host-b'))).rejects.toThrow();
    await publishRefused(a, heartbeatSubject('host-b'));
    const gateway = await connectAs({ kind: 'service', service: 'gateway' }, ids('gateway.nk'));
    await publishRefused(gateway, heartbeatSubject('host-a'));
    for (const service of ['scheduler', 'catalog'] as const) {
      const nc = await connectAs({ kind: 'service', service }, ids(`${service}.nk`));
      await publishRefused(nc, heartbeatSubject('host-a'));
      const seen: string[] = [];
      const follower = await followHeartbeats({
        nc,
        logger: { warn: () => undefined },
        onHeartbeat: (h) => seen.push(h.hostId),
      });
      await follower.caughtUp;
      await follower.stop();
      expect(seen).toEqual(['host-a']);
    }
    const ext = await connectAs({ kind: 'subscriber', name: 'ext' }, ids('subscriber-ext.nk'));
    const last = await (
      await jetstreamManager(ext)
    ).streams.getMessage(STREAMS.heartbeats.name, {
      last_by_subj: heartbeatSubject('host-a'),
    });
    expect(last?.subject).toBe(heartbeatSubject('host-a'));
    await publishRefused(ext, heartbeatSubject('host-a'));
  });

  it('only the scheduler writes its state snapshots', async () => {
    const scheduler = await connectAs({ kind: 'service', service: 'scheduler' }, ids('scheduler.nk'));
    const kv = await ensureKvBucket(scheduler, SCHEDULER_SNAPSHOT_BUCKET);
    await kv.put('state', new TextEncoder().encode('{}'));
    const catalog = await connectAs({ kind: 'service', service: 'catalog' }, ids('catalog.nk'));
    await publishRefused(catalog, `$KV.${SCHEDULER_SNAPSHOT_BUCKET}.state`);
    await jsRefused((await jetstreamManager(catalog)).streams.info(`KV_${SCHEDULER_SNAPSHOT_BUCKET}`));
  });

  it("an agent cannot read another host's commands, the data path, or other inboxes", async () => {
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    await subscribeRefused(a, commandSubjectFilter({ kind: 'host', hostId: 'host-b' }));
    await subscribeRefused(a, 'volback.cmd.>');
    await subscribeRefused(a, 'volback.data.>');
    await subscribeRefused(a, 'volback.evt.>');
    await subscribeRefused(a, `${inboxPrefix({ kind: 'agent', hostId: 'host-b' })}.>`);
    await subscribeRefused(a, `${inboxPrefix({ kind: 'service', service: 'gateway' })}.>`);
    await subscribeRefused(a, '_INBOX.>');
    // The data path in another requester's name.
    await publishRefused(a, dataSubject({ kind: 'host', hostId: 'host-b' }, 'load-blob'));
    await publishRefused(a, dataSubject({ kind: 'catalog' }, 'load-blobs'));
    // Its own data requests are allowed (no gateway runs here: nobody answers).
    const own = await a
      .request(dataSubject({ kind: 'host', hostId: 'host-a' }, 'repository-info'), '{}', {
        timeout: 3_000,
      })
      .catch((e: Error) => e);
    expect(isViolation(own as Error)).toBe(false);
  });

  it("an agent's command consumer can only ever hold its own host's commands", async () => {
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    const jsm = await jetstreamManager(a, { timeout: 3_000 });
    const own = commandSubjectFilter({ kind: 'host', hostId: 'host-a' });
    const other = commandSubjectFilter({ kind: 'host', hostId: 'host-b' });
    await jsm.consumers.add(STREAMS.commands.name, {
      durable_name: 'agent-host-a',
      filter_subject: own,
      ack_policy: AckPolicy.Explicit,
    });
    await jsRefused(
      jsm.consumers.add(STREAMS.commands.name, {
        durable_name: 'agent-host-a',
        filter_subject: other,
        ack_policy: AckPolicy.Explicit,
      }),
    );
    await jsRefused(
      jsm.consumers.add(STREAMS.commands.name, {
        durable_name: 'agent-host-b',
        filter_subject: other,
        ack_policy: AckPolicy.Explicit,
      }),
    );
    // The permitted subject (own filter) with another host's filter in the body: the server
    // checks the body against the subject.
    const sneaky = await a.request(
      `$JS.API.CONSUMER.CREATE.${STREAMS.commands.name}.agent-host-a.${own}`,
      JSON.stringify({
        stream_name: STREAMS.commands.name,
        config: { durable_name: 'agent-host-a', filter_subjects: [other], ack_policy: 'explicit' },
        action: 'update',
      }),
      { timeout: 3_000 },
    );
    expect(sneaky.json<{ error?: { description: string } }>().error).toBeDefined();
    const info = await adminJsm.consumers.info(STREAMS.commands.name, 'agent-host-a');
    expect([info.config.filter_subject, ...(info.config.filter_subjects ?? [])]).not.toContain(other);
    await jsRefused(jsm.consumers.info(STREAMS.commands.name, 'agent-host-b'));
  });

  it('no agent, service or subscriber deletes, purges or changes a stream or the scheduler KV', async () => {
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    const identities: [Identity, string][] = [
      [{ kind: 'service', service: 'scheduler' }, ids('scheduler.nk')],
      [{ kind: 'service', service: 'catalog' }, ids('catalog.nk')],
      [{ kind: 'service', service: 'gateway' }, ids('gateway.nk')],
      [{ kind: 'subscriber', name: 'ext' }, ids('subscriber-ext.nk')],
    ];
    const clients = [a, ...(await Promise.all(identities.map(([id, seed]) => connectAs(id, seed))))];
    for (const nc of clients) {
      const jsm = await jetstreamManager(nc, { timeout: 3_000 });
      for (const stream of [STREAMS.events.name, STREAMS.commands.name, `KV_${SCHEDULER_LEADER_BUCKET}`]) {
        await jsRefused(jsm.streams.delete(stream));
        await jsRefused(jsm.streams.purge(stream));
      }
      await jsRefused(jsm.streams.update(STREAMS.events.name, { description: 'mine now' }));
      await jsRefused(jsm.streams.deleteMessage(STREAMS.events.name, 1));
    }
    await publishRefused(a, `$KV.${SCHEDULER_LEADER_BUCKET}.leader`);
    await publishRefused(a, `$KV.${GRANTS_BUCKET}.r1`);
    const infos = await Promise.all(
      [STREAMS.events.name, STREAMS.commands.name].map((s) => adminJsm.streams.info(s)),
    );
    expect(infos.map((i) => i.config.description)).not.toContain('mine now');
    expect(infos[0]!.state.messages).toBeGreaterThan(0);
  });

  it('only the catalog and the scheduler read and write the notification channels (they hold credentials)', async () => {
    const channel = {
      name: 'ops',
      url: 'ntfy://:tk_secret@ntfy.example.com/alerts',
      filter: {},
      origin: 'api' as const,
      definedAt: new Date().toISOString(),
      definedBy: 'test',
    };
    const catalog = await connectAs({ kind: 'service', service: 'catalog' }, ids('catalog.nk'));
    await new NotificationChannels(catalog).put(channel);
    const scheduler = await connectAs({ kind: 'service', service: 'scheduler' }, ids('scheduler.nk'));
    expect(await new NotificationChannels(scheduler).get('ops')).toEqual(channel);
    const others: Array<[Identity, string]> = [
      [{ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a')],
      [{ kind: 'service', service: 'gateway' }, ids('gateway.nk')],
      [{ kind: 'subscriber', name: 'ext' }, ids('subscriber-ext.nk')],
    ];
    for (const [identity, seed] of others) {
      const nc = await connectAs(identity, seed);
      const jsm = await jetstreamManager(nc, { timeout: 3_000 });
      const stream = `KV_${NOTIFY_CHANNELS_BUCKET}`;
      await jsRefused(jsm.streams.getMessage(stream, { last_by_subj: `$KV.${NOTIFY_CHANNELS_BUCKET}.ops` }));
      await jsRefused(jsm.streams.info(stream));
      await publishRefused(nc, `$JS.API.DIRECT.GET.${stream}.$KV.${NOTIFY_CHANNELS_BUCKET}.ops`);
      await publishRefused(nc, `$KV.${NOTIFY_CHANNELS_BUCKET}.ops`);
    }
  });

  it('a service works with the streams as the admin set them up, without changing them', async () => {
    const current = await adminJsm.streams.info(STREAMS.events.name);
    await adminJsm.streams.update(STREAMS.events.name, {
      ...current.config,
      description: 'set by the admin',
    });
    const scheduler = await connectAs({ kind: 'service', service: 'scheduler' }, ids('scheduler.nk'));
    await ensureStreams(await jetstreamManager(scheduler, { timeout: 3_000 }));
    expect((await adminJsm.streams.info(STREAMS.events.name)).config.description).toBe('set by the admin');
    await ensureStreams(adminJsm);
    expect((await adminJsm.streams.info(STREAMS.events.name)).config.description).not.toBe(
      'set by the admin',
    );
  });

  it('a subscriber reads the events, live and through its own durable consumer, and nothing else', async () => {
    const identity: Identity = { kind: 'subscriber', name: 'ext' };
    const s = await connectAs(identity, ids('subscriber-ext.nk'));
    const live = s.subscribe('volback.evt.>', { max: 1 });
    await s.flush();
    const agentA = await connectAs({ kind: 'agent', hostId: 'host-a' }, agentSeed('host-a'));
    const seen = hostSeen('host-a');
    await new MessagePublisher(agentA).publish(seen);
    for await (const m of live) expect(m.subject).toBe(seen.subject);

    const jsm = await jetstreamManager(s, { timeout: 3_000 });
    const durable = subscriberDurableName('ext');
    await jsm.consumers.add(STREAMS.events.name, { durable_name: durable, ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(s).consumers.get(STREAMS.events.name, durable);
    const first = await consumer.next({ expires: 3_000 });
    expect(first?.subject).toMatch(/^volback\.evt\./);
    first!.ack();

    await jsRefused(
      jsm.consumers.add(STREAMS.events.name, {
        durable_name: 'someone-else',
        ack_policy: AckPolicy.Explicit,
      }),
    );
    await jsRefused(
      jsm.consumers.add(STREAMS.commands.name, { durable_name: durable, ack_policy: AckPolicy.Explicit }),
    );
    await jsRefused(jsm.consumers.delete(STREAMS.commands.name, 'agent-host-a'));
    await publishRefused(s, eventSubject('host', 'host-a'));
    await publishRefused(s, commandSubject({ kind: 'gateway' }, 'prune-repository'));
    await publishRefused(s, dataSubject({ kind: 'catalog' }, 'load-blob'));
    await subscribeRefused(s, 'volback.cmd.>');
    await subscribeRefused(s, 'volback.data.>');
    await subscribeRefused(s, 'volback.progress.>');
    await subscribeRefused(s, '_INBOX.>');
  });

  it('a rotated agent key is refused after the reload, the new one works', async () => {
    const old = join(root, 'old-b.nk');
    await import('node:fs/promises').then((fs) => fs.copyFile(agentSeed('host-b'), old));
    const before = await connectAs({ kind: 'agent', hostId: 'host-b' }, old, 'old-key');
    const rotated = await volback(['init', 'rotate', 'agent', 'box-b', '--dir', dir]);
    expect(rotated.code, rotated.output).toBe(0);
    expect(rotated.output).toContain(`reloaded NATS (pid ${nats.pid})`);
    expect(readFileSync(old, 'utf8')).not.toBe(readFileSync(agentSeed('host-b'), 'utf8'));
    // The server closes the connection whose key is gone; it cannot come back with that key.
    await before.closed();
    await expectKeyRefused(old);
    const after = await connectAs({ kind: 'agent', hostId: 'host-b' }, agentSeed('host-b'), 'new-key');
    await new MessagePublisher(after).publish(hostSeen('host-b'));
  });

  it('a revoked agent is disconnected on reload and cannot reconnect', async () => {
    const seed = join(root, 'revoked-a.nk');
    await import('node:fs/promises').then((fs) => fs.copyFile(agentSeed('host-a'), seed));
    const a = await connectAs({ kind: 'agent', hostId: 'host-a' }, seed, 'to-revoke');
    const revoked = await volback(['init', 'revoke', 'agent', 'box-a', '--dir', dir]);
    expect(revoked.code, revoked.output).toBe(0);
    expect(revoked.output).toContain('revoked');
    await a.closed();
    await expectKeyRefused(seed);
    const config = readFileSync(join(dir, 'nats/nats-server.conf'), 'utf8');
    expect(config).not.toContain('# agent-host-a');
  });
});
