import type { NatsConnection } from '@nats-io/nats-core';
import { DiscardPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  BackupCompleted,
  createCommand,
  createEvent,
  encodeEnvelope,
  eventSubject,
  sampleData,
  DefinePolicy,
  eventSubjectFilter,
  parseMessage,
  RequestBackup,
  STREAMS,
  VolumeDiscovered,
  ContainerObserved,
  type Envelope,
} from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, MessagePublisher } from '@volback/messaging';
import { createLogger, createMetrics } from '@volback/observability';
import { startNatsServer, waitFor, waitUntil, type NatsServer } from '@volback/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publishDecisions } from './adapters/decision-publisher.ts';
import { startEventProjection } from './adapters/event-projection.ts';
import { backupDecision, DEFAULT_SETTINGS, effectivePolicy, type SchedulerSettings } from './domain/index.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';
import { startEchoAgent } from './test-support/echo-agent.ts';

const logger = createLogger({
  service: 'scheduler-test',
  level: process.env['LOG_LEVEL'] === 'debug' ? 'debug' : 'warn',
});
const HOST = 'int-host';

/** Every two seconds, no jitter, first backups at once: a fast schedule for tests. */
const settings: SchedulerSettings = {
  ...DEFAULT_SETTINGS,
  defaultPolicy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron: '*/2 * * * * *', timezone: 'UTC' } },
  jitterWindowMs: 0,
  firstBackupDelayMs: 0,
  prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
  check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
};

let nats: NatsServer;
const connections: NatsConnection[] = [];
const running = new Set<{ stop(): Promise<void> }>();

async function connect(name: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [nats.url], name });
  connections.push(nc);
  return nc;
}

async function start(
  nc: NatsConnection,
  instanceId: string,
  overrides: Partial<SchedulerSettings> = {},
  leaseMs = 3_000,
): Promise<Scheduler> {
  const scheduler = await startScheduler({
    nc,
    settings: { ...settings, ...overrides, source: `volback://scheduler/${instanceId}` },
    instanceId,
    logger,
    metrics: createMetrics({ service: 'scheduler', defaultMetrics: false }),
    tickMs: 200,
    leaseMs,
  });
  running.add(scheduler);
  return scheduler;
}

/** Every event on the backup subjects, from the stream. */
async function storedEvents(nc: NatsConnection, filter = eventSubjectFilter('backup')): Promise<Envelope[]> {
  const jsm = await jetstreamManager(nc);
  const out: Envelope[] = [];
  const info = await jsm.streams.info(STREAMS.events.name);
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(STREAMS.events.name, { seq }).catch(() => null);
    if (!msg || !matches(filter, msg.subject)) continue;
    const parsed = parseMessage(msg.data);
    if (parsed.ok) out.push(parsed.message.envelope);
  }
  return out;
}
const matches = (filter: string, subject: string) => subject.startsWith(filter.replace(/\.>$/, '.'));

async function publishFacts(
  nc: NatsConnection,
  volumes: string[],
  labels: Record<string, string> = {},
): Promise<void> {
  const publisher = new MessagePublisher(nc);
  for (const volumeName of volumes) {
    await publisher.publish(
      createEvent(
        VolumeDiscovered,
        {
          hostId: HOST,
          volumeName,
          driver: 'local',
          labels,
          anonymous: false,
          discoveredAt: new Date().toISOString(),
        },
        { source: 'volback://test' },
      ),
    );
  }
}

beforeAll(async () => {
  nats = await startNatsServer();
  const nc = await connect('setup');
  await ensureStreams(await jetstreamManager(nc));
});

afterEach(async () => {
  await Promise.allSettled([...running].map((r) => r.stop()));
  running.clear();
  // A fresh log per test: the streams and the leader bucket go.
  const nc = await connect('cleanup');
  const jsm = await jetstreamManager(nc);
  for (const name of [STREAMS.events.name, STREAMS.commands.name, 'KV_volback-scheduler'])
    await jsm.streams.delete(name).catch(() => undefined);
  await ensureStreams(jsm);
});

afterAll(async () => {
  await Promise.allSettled(connections.filter((c) => !c.isClosed()).map((c) => drainNats(c, 2_000)));
  await nats?.destroy();
});

describe('scheduler with a real NATS server', () => {
  it('backs volumes up on their schedule; a state rebuilt from the stream equals the live one', async () => {
    const nc = await connect('live');
    const agent = await startEchoAgent(nc, HOST);
    running.add(agent);
    const scheduler = await start(nc, 'live');
    await waitUntil('leadership', async () => scheduler.isLeader(), 10_000);
    await publishFacts(nc, ['alpha', 'beta.data']);
    const publisher = new MessagePublisher(nc);
    await publisher.publish(
      createEvent(
        ContainerObserved,
        {
          hostId: HOST,
          containerId: 'c'.repeat(64),
          name: 'app',
          image: 'busybox',
          labels: { 'volback.retention.keep-last': '2' },
          state: 'running',
          mounts: [{ type: 'volume', volumeName: 'alpha', destination: '/data', readOnly: false }],
          observedAt: new Date().toISOString(),
        },
        { source: 'volback://test' },
      ),
    );
    // when a few slots pass, then each volume is backed up (first, then on schedule) and forgotten after
    await waitUntil(
      'three backups of each volume',
      async () =>
        ['alpha', 'beta.data'].every((v) => agent.received.filter((r) => r.volumeName === v).length >= 3),
      20_000,
    );
    // The first backup is the discovery one, unless a schedule slot came due first on a slow
    // machine (a slot covers it; the order itself is pinned by the unit tests with a fake clock).
    expect(['volume-discovered', 'schedule']).toContain(
      agent.received.find((r) => r.volumeName === 'alpha')?.trigger,
    );
    expect(agent.received.some((r) => r.trigger === 'schedule')).toBe(true);
    const policy = effectivePolicy(
      scheduler.state,
      { hostId: HOST, volumeName: 'alpha', anonymous: false },
      settings,
    );
    expect(policy).toMatchObject({ source: 'labels', policy: { retention: { keepLast: 2 } } });

    // and a projection rebuilt from the stream is the live state
    await scheduler.stop();
    running.delete(scheduler);
    await agent.stop();
    running.delete(agent);
    const rebuilt = await startEventProjection({ nc, logger });
    await rebuilt.replayed;
    await scheduler.projection.catchUp();
    expect(rebuilt.sequence).toBe(scheduler.projection.sequence);
    expect(comparable(rebuilt.state)).toEqual(comparable(scheduler.state));
    await rebuilt.stop();
  }, 60_000);

  it('two schedulers: only the leader decides; the leader dies, the other takes over within seconds; no slot twice', async () => {
    const ncA = await connect('a');
    const ncB = await connect('b');
    const agentConnection = await connect('agent');
    const agent = await startEchoAgent(agentConnection, HOST);
    running.add(agent);
    const a = await start(ncA, 'a');
    await waitUntil('a leads', async () => a.isLeader(), 10_000);
    const b = await start(ncB, 'b');
    await publishFacts(ncA, ['one', 'two', 'three']);
    await waitUntil('backups', async () => agent.received.length >= 6, 20_000);
    expect(b.isLeader()).toBe(false);

    // when the leader dies without giving its lease up
    const killedAt = Date.now();
    await ncA.close();
    await waitUntil('b leads', async () => b.isLeader(), 10_000);
    const takeoverMs = Date.now() - killedAt;
    // then the lease (3 s) runs out and b leads within about that, and goes on backing up
    expect(takeoverMs).toBeLessThan(3_000 + 2_000);
    const before = agent.received.length;
    await waitUntil('backups under b', async () => agent.received.length >= before + 6, 20_000);

    // and no backup id and no slot of a volume was ever requested twice
    const requested = (await storedEvents(ncB)).filter((e) => e.type === 'io.volback.backup.requested.v1');
    const data = requested.map(
      (e) => e.data as { backupId: string; volumeName: string; slot?: string; source?: string },
    );
    expect(new Set(data.map((d) => d.backupId)).size).toBe(data.length);
    const slots = data.filter((d) => d.slot).map((d) => `${d.volumeName} ${d.slot}`);
    expect(new Set(slots).size).toBe(slots.length);
    // both schedulers did request backups
    expect(new Set(requested.map((e) => e.source))).toEqual(
      new Set(['volback://scheduler/a', 'volback://scheduler/b']),
    );
    // and the agent ran each backup once
    expect(new Set(agent.received.map((r) => r.backupId)).size).toBe(agent.received.length);
  }, 60_000);

  it('a command refused by the stream after its request was stored is sent again: the backup runs', async () => {
    const nc = await connect('resend');
    const jsm = await jetstreamManager(nc);
    const agent = await startEchoAgent(nc, HOST);
    running.add(agent);
    const scheduler = await start(nc, 'resend');
    await waitUntil('leadership', async () => scheduler.isLeader(), 10_000);
    // The commands stream full (one message, new ones refused): the server stores BackupRequested
    // in the event stream and refuses the BackupVolume that follows it.
    const { config } = await jsm.streams.info(STREAMS.commands.name);
    await jsm.streams.update(STREAMS.commands.name, { ...config, max_msgs: 1, discard: DiscardPolicy.New });
    await jetstream(nc).publish('volback.cmd.no-such-host.filler', 'filler');
    await publishFacts(nc, ['gamma']);
    const requested = await waitFor(
      'a stored BackupRequested of gamma',
      async () =>
        (await storedEvents(nc)).find(
          (e) =>
            e.type === 'io.volback.backup.requested.v1' &&
            (e.data as { volumeName: string }).volumeName === 'gamma',
        ),
      10_000,
    );
    const backupId = (requested.data as { backupId: string }).backupId;
    // Rounds go on (every 200 ms) while the stream refuses: nothing reaches the agent.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(agent.received).toEqual([]);

    await jsm.streams.update(STREAMS.commands.name, { ...config, max_msgs: -1, discard: DiscardPolicy.Old });
    await jsm.streams.purge(STREAMS.commands.name, { filter: 'volback.cmd.no-such-host.filler' });
    await waitUntil(
      'the refused command sent again and run',
      async () => agent.received.some((r) => r.backupId === backupId),
      10_000,
    );
    // Sent again with its id: the agent got it once, and gamma goes on with its next slots.
    expect(agent.received.filter((r) => r.backupId === backupId)).toHaveLength(1);
    await waitUntil('a later backup of gamma', async () => agent.received.length >= 2, 10_000);
  }, 60_000);

  it('a slot decided by two schedulers at once is stored once: the request opens its subject', async () => {
    const nc1 = await connect('racer-1');
    const nc2 = await connect('racer-2');
    await publishFacts(nc1, ['raced']);
    const decide = (source: string) =>
      backupDecision(
        {
          hostId: HOST,
          volumeName: 'raced',
          backupId: 'bk-int-host-raced-2025-01-01T02:00:00Z',
          trigger: 'schedule',
          attempt: 1,
          slot: Date.parse('2025-01-01T02:00:00Z'),
          dueAt: 0,
          policy: { source: 'configuration', policy: settings.defaultPolicy },
        },
        Date.now(),
        { ...settings, source },
      );
    // different times and sources: different envelopes, the same backup id
    const [r1, r2] = await Promise.all([
      publishDecisions(new MessagePublisher(nc1), [decide('volback://scheduler/x')], logger),
      publishDecisions(new MessagePublisher(nc2), [decide('volback://scheduler/y')], logger),
    ]);
    expect(r1.failed + r2.failed).toBe(0);
    const stored = (await storedEvents(nc1)).filter((e) => e.type === 'io.volback.backup.requested.v1');
    expect(stored).toHaveLength(1);
  }, 30_000);

  it('commands: "back up now" and an API policy, handled once though delivered to two schedulers', async () => {
    const nc = await connect('commands');
    const agent = await startEchoAgent(nc, HOST);
    running.add(agent);
    const slow = {
      defaultPolicy: { ...settings.defaultPolicy, schedule: { cron: '0 3 * * *', timezone: 'UTC' } },
      firstBackupDelayMs: 3600_000,
    };
    const a = await start(nc, 'a', slow);
    const b = await start(await connect('commands-b'), 'b', slow);
    await publishFacts(nc, ['web']);
    const publisher = new MessagePublisher(nc);
    await publisher.publish(
      createCommand(
        RequestBackup,
        { hostId: HOST, volumeName: 'web', requestedBy: 'ci' },
        { source: 'volback://test' },
      ),
    );
    await publisher.publish(
      createCommand(
        DefinePolicy,
        {
          policyId: 'web-hourly',
          scope: { kind: 'volume', hostId: HOST, volumeName: 'web' },
          policy: { ...settings.defaultPolicy, schedule: { cron: '0 * * * *', timezone: 'UTC' } },
          requestedBy: 'ops',
        },
        { source: 'volback://test' },
      ),
    );
    await waitUntil('the manual backup', async () => agent.received.length === 1, 10_000);
    expect(agent.received[0]).toMatchObject({ volumeName: 'web', trigger: 'manual' });
    await waitUntil(
      'the policy',
      async () => a.state.policies.has('web-hourly') && b.state.policies.has('web-hourly'),
      10_000,
    );
    // The API policy's events (the leader's first round also publishes `configuration:default`).
    const policyEvents = (await storedEvents(nc, eventSubjectFilter('policy')))
      .filter((e) => (e.data as { policyId: string }).policyId === 'web-hourly')
      .map((e) => e.type);
    expect(policyEvents).toEqual(['io.volback.policy.defined.v1']);
  }, 30_000);
});

describe('the scheduler refuses forged events (checkEventOrigin)', () => {
  it("decides on no volume or backup forged on another host's subject, by another agent, or dated ahead", async () => {
    const nc = await connect('origin');
    const js = jetstream(nc);
    const victim = 'int-victim';
    const forge = (subject: string, envelope: Envelope) =>
      js.publish(subject, encodeEnvelope(envelope), { msgID: envelope.id });
    const agentOf = (hostId: string) => ({ source: `volback://agent/${hostId}` });
    const discovered = (hostId: string, volumeName: string) =>
      createEvent(VolumeDiscovered, sampleData(VolumeDiscovered, { hostId, volumeName }), agentOf(hostId));
    const completed = (backupId: string, source: string, time?: Date) =>
      createEvent(
        BackupCompleted,
        sampleData(BackupCompleted, { backupId, hostId: HOST, volumeName: 'alpha' }),
        { source, ...(time ? { time } : {}) },
      );
    // given: HOST's own volume, and what HOST's agent could forge on its own subjects
    await forge(discovered(HOST, 'alpha').subject, discovered(HOST, 'alpha').envelope);
    await forge(eventSubject('volume', HOST, 'stolen'), discovered(victim, 'stolen').envelope);
    const fromVictim = completed('forged-from-victim', `volback://agent/${victim}`);
    await forge(fromVictim.subject, fromVictim.envelope);
    const ahead = completed('forged-ahead', agentOf(HOST).source, new Date(Date.now() + 60 * 60_000));
    await forge(ahead.subject, ahead.envelope);
    const marker = discovered(HOST, 'marker');
    await forge(marker.subject, marker.envelope);
    // when: the scheduler's projection reads the log
    const projection = await startEventProjection({ nc, logger });
    running.add(projection);
    await projection.replayed;
    // then: only the honest volumes are known, and alpha has no backup
    expect([...projection.state.volumes.values()].map((v) => `${v.hostId}/${v.volumeName}`).sort()).toEqual([
      `${HOST}/alpha`,
      `${HOST}/marker`,
    ]);
    expect(
      [...projection.state.volumes.values()].find((v) => v.volumeName === 'alpha')?.lastSuccess,
    ).toBeUndefined();
    expect(projection.state.eventCount).toBe(2);
  });
});

/** The state as plain data, for comparison. */
function comparable(state: object): unknown {
  return JSON.parse(
    JSON.stringify(state, (_k, v: unknown) =>
      v instanceof Map
        ? Object.fromEntries([...v].sort(([a], [b]) => String(a).localeCompare(String(b))))
        : v,
    ),
  );
}
