import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  encodeSubjectToken,
  eventSubject,
  eventSubjectFilter,
  heartbeatSubject,
  parseHeartbeat,
  parseMessage,
  STREAMS,
  type Envelope,
} from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, type NatsConnection } from '@volback/messaging';
import { createLogger } from '@volback/observability';
import {
  startDockerEngine,
  startNatsServer,
  waitFor,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerEngineClient } from './adapters/docker-engine.ts';
import { readStoredMessages } from './adapters/event-log.ts';
import { HOST_ID_FILE, loadOrCreateHostId } from './adapters/host-id-store.ts';
import { startAgent, type Agent } from './agent.ts';

/** Put in a container's environment; must never reach an event or a log line. */
const SECRET = 'hunter2-never-in-events-3f9a';

interface StoredEvent {
  readonly subject: string;
  readonly seq: number;
  readonly raw: string;
  readonly envelope: Envelope<string, Record<string, unknown>>;
}

/** Every stored event matching `filter`, in stream order. */
async function storedEvents(jsm: JetStreamManager, filter = eventSubjectFilter()): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for await (const m of readStoredMessages(jsm, filter)) {
    const parsed = parseMessage(m.data);
    if (!parsed.ok) throw parsed.error;
    events.push({
      subject: m.subject,
      seq: m.seq,
      raw: m.string(),
      envelope: parsed.message.envelope as StoredEvent['envelope'],
    });
  }
  return events;
}

/** Messages per subject under `filter`. */
async function countsBySubject(jsm: JetStreamManager, filter: string): Promise<Record<string, number>> {
  const info = await jsm.streams.info(STREAMS.events.name, { subjects_filter: filter });
  return { ...(info.state.subjects ?? {}) };
}

let markers = 0;

/**
 * Waits until the agent has published every look it took so far: a volume created now is
 * published by a later look than any before it (looks run one at a time and publish in order), so
 * once it is in the stream nothing earlier can still come. Returns its subject, for counts of
 * "nothing more happened" to leave out.
 */
async function caughtUp(docker: Dockerode, jsm: JetStreamManager, hostId: string): Promise<string> {
  const name = `marker-${++markers}`;
  await docker.createVolume({ Name: name });
  const subject = eventSubject('volume', hostId, name);
  await waitFor(`the agent to publish ${name}`, async () => (await countsBySubject(jsm, subject))[subject]);
  return subject;
}

/** Counts without some subjects (the markers of {@link caughtUp}). */
function without(counts: Record<string, number>, ...subjects: string[]): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([subject]) => !subjects.includes(subject)));
}

/** What the stored events say about a host: volumes present, containers present and running. */
function publishedState(events: readonly StoredEvent[], hostId: string) {
  const volumes = new Set<string>();
  const containers = new Map<string, { name: string; running: boolean }>();
  for (const { envelope } of events) {
    const d = envelope.data;
    if (d['hostId'] !== hostId) continue;
    const id = d['containerId'] as string;
    switch (envelope.type) {
      case 'io.volback.volume.discovered.v1':
        volumes.add(d['volumeName'] as string);
        break;
      case 'io.volback.volume.removed.v1':
        volumes.delete(d['volumeName'] as string);
        break;
      case 'io.volback.container.observed.v1':
        containers.set(id, {
          name: d['name'] as string,
          running: containers.get(id)?.running ?? d['state'] === 'running',
        });
        break;
      case 'io.volback.container.started.v1':
        containers.set(id, { ...containers.get(id)!, running: true });
        break;
      case 'io.volback.container.stopped.v1':
        containers.set(id, { ...containers.get(id)!, running: false });
        break;
      case 'io.volback.container.removed.v1':
        containers.delete(id);
        break;
    }
  }
  return {
    volumes: [...volumes].sort(),
    containers: Object.fromEntries([...containers].sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** The same picture, from the engine itself. */
async function engineState(docker: Dockerode) {
  const volumes = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name).sort();
  const containers = (await docker.listContainers({ all: true }))
    .sort((a, b) => a.Id.localeCompare(b.Id))
    .map((c) => [c.Id, { name: c.Names[0]!.replace(/^\//, ''), running: c.State === 'running' }] as const);
  return { volumes, containers: Object.fromEntries(containers) };
}

/**
 * A unix socket relayed to an engine's socket: closing it takes the engine away from the agent
 * (connections cut, nothing listening) while the engine goes on; opening it brings it back.
 */
async function socketRelay(target: string, path: string) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const relay = {
    path,
    async open() {
      await rm(path, { force: true });
      server = createServer((client) => {
        const upstream = connect(target);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        for (const socket of [client, upstream]) socket.on('error', drop).on('close', drop);
      });
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(path, resolve));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    },
  };
  await relay.open();
  return relay;
}

interface TestAgent {
  readonly agent: Agent;
  readonly hostId: string;
  /** The agent's own NATS connection: what it reports is what the agent knows. */
  readonly nc: NatsConnection;
  readonly logs: string[];
  stop(): Promise<void>;
}

async function startTestAgent(
  engine: DockerEngine,
  stateDir: string,
  natsUrl: string,
  socketPath = engine.socketPath,
): Promise<TestAgent> {
  const { hostId } = await loadOrCreateHostId(stateDir);
  const logs: string[] = [];
  const logger = createLogger({
    service: 'agent',
    level: 'debug',
    pretty: false,
    destination: { write: (line: string) => void logs.push(line) },
  });
  const nc = await connectNats({ servers: natsUrl, name: `test-agent-${hostId}` });
  const agent = startAgent({
    hostId,
    agentVersion: '0.0.0-test',
    engine: await DockerEngineClient.connect({ kind: 'unix', socketPath }),
    nc,
    logger,
    heartbeatSeconds: 1,
    maxBackoffMs: 1_000,
  });
  return {
    agent,
    hostId,
    nc,
    logs,
    async stop() {
      await agent.stop();
      await drainNats(nc);
    },
  };
}

/** Resolves once `nc` reports a status of `type` (`disconnect`, `reconnect`). */
async function statusOf(nc: NatsConnection, type: string): Promise<void> {
  for await (const status of nc.status()) if (status.type === type) return;
}

/** A container whose shell ends at once on SIGTERM, without networking. */
function sleeper(image: string, name: string, extra: Partial<Dockerode.ContainerCreateOptions> = {}) {
  return {
    Image: image,
    name,
    Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    ...extra,
    HostConfig: { NetworkMode: 'none', ...extra.HostConfig },
  } satisfies Dockerode.ContainerCreateOptions;
}

const typesOn = (events: readonly StoredEvent[], subject: string) =>
  events
    .filter((e) => e.subject === subject)
    .map((e) => e.envelope.type.replace(/^io\.volback\.|\.v1$/g, ''));

describe('agent discovery against real engines and NATS', () => {
  let nats: NatsServer;
  let engineA: DockerEngine;
  let engineB: DockerEngine;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let scratch: string;
  let stateA: string;
  let a: TestAgent | undefined;
  let b: TestAgent | undefined;
  let relayB: Awaited<ReturnType<typeof socketRelay>>;
  let dbId = '';
  let anonymousVolume = '';

  beforeAll(async () => {
    [nats, engineA, engineB] = await Promise.all([
      startNatsServer(),
      startDockerEngine(),
      startDockerEngine(),
    ]);
    nc = await connectNats({ servers: nats.url, name: 'agent-test-reader' });
    jsm = await jetstreamManager(nc);
    await ensureStreams(jsm);
    scratch = await mkdtemp(join(tmpdir(), 'volback-agent-test-'));
    stateA = join(scratch, 'state-a');
    relayB = await socketRelay(engineB.socketPath, join(scratch, 'b.sock'));
  });

  afterAll(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    if (nc) await drainNats(nc);
    await relayB?.close();
    await Promise.allSettled([nats?.stop(), engineA?.stop(), engineB?.stop()]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
    if (nats) await rm(nats.dataDir, { recursive: true, force: true });
  });

  it('publishes at start every volume, named and anonymous, and every container with its mounts and labels', async () => {
    const { docker, image } = engineA;
    await docker.createVolume({ Name: 'shop_db.data', Labels: { 'volback.policy': 'daily' } });
    const db = await docker.createContainer(
      sleeper(image, 'shop-db-1', {
        Env: [`DB_PASSWORD=${SECRET}`],
        Labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'db', tier: 'gold' },
        Volumes: { '/anonymous': {} },
        HostConfig: { Binds: ['shop_db.data:/var/lib/db', `${scratch}:/host:ro`], Tmpfs: { '/run/db': '' } },
      }),
    );
    await db.start();
    dbId = db.id;
    await docker.createContainer(sleeper(image, 'never-started', { Env: [`TOKEN=${SECRET}`] }));
    anonymousVolume = ((await docker.listVolumes()).Volumes ?? [])
      .map((v) => v.Name)
      .find((n) => /^[0-9a-f]{64}$/.test(n))!;
    expect(anonymousVolume).toBeDefined();

    const started = Date.now();
    a = await startTestAgent(engineA, stateA, nats.url);
    await a.agent.discovered;
    const discoveryMs = Date.now() - started;
    const hostId = a.hostId;
    const events = await storedEvents(jsm);

    const registered = events.find((e) => e.envelope.type === 'io.volback.host.registered.v1')!;
    const info = await docker.info();
    expect(registered.subject).toBe(eventSubject('host', hostId));
    expect(registered.envelope.data).toMatchObject({
      hostId,
      name: info.Name,
      engine: {
        id: info.ID,
        version: info.ServerVersion,
        storageDriver: engineA.storageDriver,
        volumesRoot: join(engineA.dataRoot, 'volumes'),
      },
    });

    const named = eventSubject('volume', hostId, 'shop_db.data');
    expect(named).toBe(`volback.evt.volume.${encodeSubjectToken(hostId)}.shop_db~2Edata`);
    expect(typesOn(events, named)).toEqual(['volume.discovered', 'volume.changed']);
    expect(events.find((e) => e.subject === named)!.envelope.data).toMatchObject({
      volumeName: 'shop_db.data',
      driver: 'local',
      labels: { 'volback.policy': 'daily' },
      anonymous: false,
      mountpoint: join(engineA.dataRoot, 'volumes', 'shop_db.data', '_data'),
    });
    const anonymous = eventSubject('volume', hostId, anonymousVolume);
    expect(typesOn(events, anonymous)).toEqual(['volume.discovered', 'volume.changed']);
    expect(events.find((e) => e.subject === anonymous)!.envelope.data).toMatchObject({ anonymous: true });
    expect(events.filter((e) => e.subject === named)[1]!.envelope.data).toMatchObject({
      change: 'mounted',
      containerId: dbId,
    });

    const dbSubject = eventSubject('container', hostId, dbId);
    expect(typesOn(events, dbSubject)).toEqual(['container.observed', 'container.started']);
    const observed = events.find((e) => e.subject === dbSubject)!.envelope.data;
    expect(observed).toMatchObject({
      name: 'shop-db-1',
      image,
      state: 'running',
      labels: { tier: 'gold' },
      compose: { project: 'shop', service: 'db' },
    });
    expect(observed['imageId']).toMatch(/^sha256:/);
    expect(observed['mounts']).toEqual([
      { type: 'volume', volumeName: anonymousVolume, destination: '/anonymous', readOnly: false },
      { type: 'bind', source: scratch, destination: '/host', readOnly: true },
      { type: 'tmpfs', destination: '/run/db' },
      { type: 'volume', volumeName: 'shop_db.data', destination: '/var/lib/db', readOnly: false },
    ]);
    const neverStarted = events.filter((e) => e.envelope.data['name'] === 'never-started');
    expect(neverStarted.map((e) => e.envelope.type)).toEqual(['io.volback.container.observed.v1']);
    expect(neverStarted[0]!.envelope.data).toMatchObject({ state: 'created' });

    expect(publishedState(events, hostId)).toEqual(await engineState(docker));
    expect(discoveryMs).toBeLessThan(10_000);
  });

  it('publishes what happens on the engine while it runs, within seconds', async () => {
    const { docker, image } = engineA;
    const hostId = a!.hostId;
    const volumeSubject = eventSubject('volume', hostId, 'cache.v2');

    await docker.createVolume({ Name: 'cache.v2' });
    await waitFor(
      'volume discovered',
      async () => typesOn(await storedEvents(jsm, volumeSubject), volumeSubject).length === 1,
      5_000,
    );

    const worker = await docker.createContainer(
      sleeper(image, 'worker', { HostConfig: { Binds: ['cache.v2:/cache'] } }),
    );
    const containerSubject = eventSubject('container', hostId, worker.id);
    await waitFor(
      'container observed',
      async () => typesOn(await storedEvents(jsm, containerSubject), containerSubject).length === 1,
      5_000,
    );
    await worker.start();
    await waitFor(
      'container started and volume mounted',
      async () => {
        const events = await storedEvents(jsm);
        return typesOn(events, containerSubject).length === 2 && typesOn(events, volumeSubject).length === 2;
      },
      5_000,
    );
    await worker.stop({ t: 5 });
    await waitFor(
      'container stopped and volume unmounted',
      async () => {
        const events = await storedEvents(jsm);
        return typesOn(events, containerSubject).length === 3 && typesOn(events, volumeSubject).length === 3;
      },
      5_000,
    );
    await worker.rename({ name: 'worker-renamed' });
    await waitFor(
      'container renamed',
      async () => typesOn(await storedEvents(jsm, containerSubject), containerSubject).length === 4,
      5_000,
    );
    await worker.remove();
    await docker.getVolume('cache.v2').remove();
    const events = await waitFor(
      'container and volume removed',
      async () => {
        const all = await storedEvents(jsm);
        return typesOn(all, containerSubject).length === 5 && typesOn(all, volumeSubject).length === 4 && all;
      },
      5_000,
    );

    expect(typesOn(events, containerSubject)).toEqual([
      'container.observed',
      'container.started',
      'container.stopped',
      'container.observed',
      'container.removed',
    ]);
    expect(typesOn(events, volumeSubject)).toEqual([
      'volume.discovered',
      'volume.changed',
      'volume.changed',
      'volume.removed',
    ]);
    const stopped = events.find(
      (e) => e.subject === containerSubject && e.envelope.type.endsWith('stopped.v1'),
    )!;
    expect(stopped.envelope.data).toMatchObject({ name: 'worker', exitCode: 0, byVolback: false });
    const renamed = events.filter((e) => e.subject === containerSubject)[3]!;
    expect(renamed.envelope.data).toMatchObject({ name: 'worker-renamed', state: 'exited' });
    expect(events.filter((e) => e.subject === volumeSubject).map((e) => e.envelope.data['change'])).toEqual([
      undefined,
      'mounted',
      'unmounted',
      undefined,
    ]);
  });

  it('takes a volume destroyed and created again at once for a new one, and a volume written into for the same', async () => {
    const { docker, image } = engineA;
    const hostId = a!.hostId;
    const subject = eventSubject('volume', hostId, 'again');
    // (a look may catch the writer running: mounts are not the point here)
    const typesOfAgain = async () =>
      typesOn(await storedEvents(jsm, subject), subject).filter((type) => type !== 'volume.changed');
    await docker.createVolume({ Name: 'again' });
    await waitFor('volume discovered', async () => (await typesOfAgain()).length === 1, 5_000);
    // when a container writes at the volume's root (its CreatedAt moves) and is removed
    const writer = await docker.createContainer({
      ...sleeper(image, 'again-writer', { HostConfig: { Binds: ['again:/v'] } }),
      Cmd: ['sh', '-c', 'echo x > /v/file'],
    });
    await writer.start();
    await writer.wait();
    await writer.remove();
    // and then the volume is destroyed and created again within one look's settle time
    await docker.getVolume('again').remove();
    await docker.createVolume({ Name: 'again' });
    await waitFor('the re-created volume', async () => (await typesOfAgain()).length >= 3, 5_000);
    // then only the destruction makes it a new volume: removed, then discovered
    expect(await typesOfAgain()).toEqual(['volume.discovered', 'volume.removed', 'volume.discovered']);
  });

  it('publishes nothing new after a restart when nothing changed, and only the difference when something did', async () => {
    const hostId = a!.hostId;
    const filter = `volback.evt.*.${encodeSubjectToken(hostId)}.>`;
    await caughtUp(engineA.docker, jsm, hostId);
    const before = await countsBySubject(jsm, filter);
    await a!.stop();

    a = await startTestAgent(engineA, stateA, nats.url);
    expect(a.hostId).toBe(hostId);
    await a.agent.discovered;
    const marker = await caughtUp(engineA.docker, jsm, hostId);
    expect(without(await countsBySubject(jsm, filter), marker)).toEqual(before);
    const file = await stat(join(stateA, HOST_ID_FILE));
    expect(file.mode & 0o777).toBe(0o600);

    // The agent is away while the engine changes.
    await a.stop();
    const { docker } = engineA;
    await docker.createVolume({ Name: 'made-while-away' });
    await docker.getContainer(dbId).stop({ t: 5 });
    await docker.getContainer('never-started').remove();
    a = await startTestAgent(engineA, stateA, nats.url);
    await a.agent.discovered;
    const after = without(await countsBySubject(jsm, filter), marker);
    const grown = Object.fromEntries(
      Object.entries(after)
        .filter(([subject, n]) => n !== before[subject])
        .map(([subject, n]) => [subject, n - (before[subject] ?? 0)]),
    );
    const neverStartedId = Object.keys(before).find(
      (s) => !s.includes(dbId) && s.startsWith('volback.evt.container') && before[s] === 1,
    )!;
    expect(grown).toEqual({
      [eventSubject('volume', hostId, 'made-while-away')]: 1,
      [eventSubject('container', hostId, dbId)]: 1,
      [eventSubject('volume', hostId, 'shop_db.data')]: 1,
      [eventSubject('volume', hostId, anonymousVolume)]: 1,
      [neverStartedId]: 1,
    });
    expect(publishedState(await storedEvents(jsm), hostId)).toEqual(await engineState(docker));
  });

  it('catches up after NATS was away: the published state matches the engine, nothing twice', async () => {
    const hostId = a!.hostId;
    const { docker, image } = engineA;
    // The test's own reader reconnects too, but a request of its in flight would wait out its timeout.
    await nc.close();
    const away = statusOf(a!.nc, 'disconnect');
    await nats.stop();
    // Every change below happens while the agent knows NATS is away: it can publish none of them.
    await away;
    await docker.createVolume({ Name: 'gap-kept' });
    await docker.createVolume({ Name: 'gap-gone' });
    const briefly = await docker.createContainer(
      sleeper(image, 'gap-container', { HostConfig: { Binds: ['gap-kept:/data'] } }),
    );
    await briefly.start();
    await docker.getVolume('gap-gone').remove();
    await docker.getContainer(dbId).start();
    await docker.getVolume('made-while-away').remove();
    nats = await startNatsServer({ dataDir: nats.dataDir, port: nats.port });
    nc = await connectNats({ servers: nats.url, name: 'agent-test-reader' });
    jsm = await jetstreamManager(nc);

    const events = await waitFor(
      'published state to match the engine',
      async () => {
        const all = await storedEvents(jsm);
        const wanted = await engineState(docker);
        return JSON.stringify(publishedState(all, hostId)) === JSON.stringify(wanted) && all;
      },
      25_000,
    );
    const ids = events.map((e) => e.envelope.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(typesOn(events, eventSubject('volume', hostId, 'gap-kept'))).toEqual([
      'volume.discovered',
      'volume.changed',
    ]);
    expect(typesOn(events, eventSubject('container', hostId, briefly.id))).toEqual([
      'container.observed',
      'container.started',
    ]);
    // The state settles and stays: the looks after it publish nothing more.
    const filter = `volback.evt.*.${encodeSubjectToken(hostId)}.>`;
    const settled = await countsBySubject(jsm, filter);
    const marker = await caughtUp(docker, jsm, hostId);
    expect(without(await countsBySubject(jsm, filter), marker)).toEqual(settled);
  });

  it('keeps two hosts apart: the same volume name on two engines has a subject per host', async () => {
    await engineB.docker.createVolume({ Name: 'shop_db.data', Labels: { host: 'b' } });
    b = await startTestAgent(engineB, join(scratch, 'state-b'), nats.url, relayB.path);
    await b.agent.discovered;
    expect(b.hostId).not.toBe(a!.hostId);
    const onA = eventSubject('volume', a!.hostId, 'shop_db.data');
    const onB = eventSubject('volume', b.hostId, 'shop_db.data');
    expect(onA).not.toBe(onB);
    const events = await storedEvents(jsm);
    expect(typesOn(events, onB)).toEqual(['volume.discovered']);
    expect(events.find((e) => e.subject === onB)!.envelope.data).toMatchObject({
      hostId: b.hostId,
      labels: { host: 'b' },
    });
    expect(publishedState(events, b.hostId)).toEqual(await engineState(engineB.docker));

    const countOnA = (await countsBySubject(jsm, onA))[onA];
    await engineB.docker.getVolume('shop_db.data').remove();
    await waitFor(
      'removal on host B',
      async () => typesOn(await storedEvents(jsm, onB), onB).length === 2,
      5_000,
    );
    expect((await countsBySubject(jsm, onA))[onA]).toBe(countOnA);
  });

  it('catches up after the engine was away: only what changed meanwhile is published', async () => {
    const { docker, image } = engineB;
    const hostId = b!.hostId;
    await docker.createVolume({ Name: 'kept-through' });
    const kept = eventSubject('volume', hostId, 'kept-through');
    await waitFor(
      'volume discovered',
      async () => typesOn(await storedEvents(jsm, kept), kept).length === 1,
      5_000,
    );
    const filter = `volback.evt.*.${encodeSubjectToken(hostId)}.>`;
    const before = await countsBySubject(jsm, filter);

    await relayB.close();
    await waitFor('engine reported gone', async () => !b!.agent.engineConnected(), 5_000);
    const check = b!.agent.healthChecks().find((c) => c.name === 'docker-connected')!;
    expect((await check.check()).ok).toBe(false);
    await docker.createVolume({ Name: 'made-while-engine-away' });
    await docker.getVolume('kept-through').remove();
    const runner = await docker.createContainer(sleeper(image, 'runner'));
    await runner.start();
    await relayB.open();

    await waitFor('published state to match engine B', async () => {
      const events = await storedEvents(jsm);
      return JSON.stringify(publishedState(events, hostId)) === JSON.stringify(await engineState(docker));
    });
    expect(b!.agent.engineConnected()).toBe(true);
    const marker = await caughtUp(docker, jsm, hostId);
    const after = without(await countsBySubject(jsm, filter), marker);
    // Host B holds nothing after this test (the heartbeat test counts its volumes).
    await docker.getVolume(`marker-${markers}`).remove();
    const grown = Object.fromEntries(
      Object.entries(after)
        .filter(([subject, n]) => n !== before[subject])
        .map(([subject, n]) => [subject, n - (before[subject] ?? 0)]),
    );
    expect(grown).toEqual({
      [eventSubject('volume', hostId, 'made-while-engine-away')]: 1,
      [kept]: 1,
      [eventSubject('container', hostId, runner.id)]: 2,
    });
    await runner.remove({ force: true });
    await docker.getVolume('made-while-engine-away').remove();
  });

  it('does not take a destruction replayed after an engine reconnect for a new one', async () => {
    const { docker } = engineB;
    const hostId = b!.hostId;
    const subject = eventSubject('volume', hostId, 'replayed');
    const types = async () =>
      typesOn(await storedEvents(jsm, subject), subject).filter((type) => type !== 'volume.changed');
    await docker.createVolume({ Name: 'replayed' });
    await waitFor('volume discovered', async () => (await types()).length === 1, 5_000);
    await docker.getVolume('replayed').remove();
    await docker.createVolume({ Name: 'replayed' });
    await waitFor('volume re-created', async () => (await types()).length === 3, 5_000);
    // when the engine connection drops and comes back: the agent asks for the events since the
    // last one's second, which brings the destruction again
    await relayB.close();
    await waitFor('engine reported gone', async () => !b!.agent.engineConnected(), 5_000);
    await relayB.open();
    await waitFor('engine back', async () => b!.agent.engineConnected(), 10_000);
    // then, up to a later marker, the volume is not removed and discovered once more
    await docker.createVolume({ Name: 'replay-marker' });
    const marker = eventSubject('volume', hostId, 'replay-marker');
    await waitFor(
      'the marker volume',
      async () => typesOn(await storedEvents(jsm, marker), marker).length === 1,
      10_000,
    );
    expect(await types()).toEqual(['volume.discovered', 'volume.removed', 'volume.discovered']);
    await docker.getVolume('replay-marker').remove();
    await docker.getVolume('replayed').remove();
  });

  it('sends heartbeats to its heartbeat subject, one kept per host, none in the event log', async () => {
    const hbSubject = heartbeatSubject(b!.hostId);
    // Host B's one volume was removed above; heartbeats count what the engine holds.
    const seen = await waitFor(
      'a heartbeat',
      async () => {
        const stored = await jsm.streams
          .getMessage(STREAMS.heartbeats.name, { last_by_subj: hbSubject })
          .catch(() => null);
        const parsed = stored && parseHeartbeat(stored.subject, stored.data);
        return parsed?.ok && parsed.heartbeat.volumes === 0 ? parsed.heartbeat : undefined;
      },
      5_000,
    );
    expect(seen).toMatchObject({ hostId: b!.hostId, intervalSeconds: 1, containers: 0, backupsRunning: 0 });
    // A second heartbeat (every second here) replaces the first: the stream holds one per host.
    await waitFor(
      'a later heartbeat',
      async () => {
        const stored = await jsm.streams.getMessage(STREAMS.heartbeats.name, { last_by_subj: hbSubject });
        const parsed = stored && parseHeartbeat(stored.subject, stored.data);
        return parsed?.ok && parsed.heartbeat.seenAt > seen.seenAt;
      },
      5_000,
    );
    const info = await jsm.streams.info(STREAMS.heartbeats.name, { subjects_filter: hbSubject });
    expect(info.state.subjects).toEqual({ [hbSubject]: 1 });
    const hostEvents = await storedEvents(jsm, eventSubject('host', b!.hostId));
    expect(hostEvents.map((e) => e.envelope.type)).not.toContain('io.volback.host.seen.v1');

    const docker = b!.agent.healthChecks().find((c) => c.name === 'docker-connected')!;
    expect(await docker.check()).toEqual({ ok: true });
    await engineB.stop();
    await waitFor('engine reported gone', async () => !b!.agent.engineConnected(), 5_000);
    expect((await docker.check()).ok).toBe(false);
  });

  it('never puts a container environment value into an event or a log line', async () => {
    const events = await storedEvents(jsm);
    expect(events.length).toBeGreaterThan(20);
    for (const event of events) expect(event.raw).not.toContain(SECRET);
    const logs = [...a!.logs, ...b!.logs];
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(line).not.toContain(SECRET);
  });
});
