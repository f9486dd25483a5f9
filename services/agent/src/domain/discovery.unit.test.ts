import {
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
  createEvent,
  encodeEnvelope,
  parseMessage,
  VolumeChanged,
  VolumeDiscovered,
  VolumeRemoved,
  type EventDefinition,
} from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import { decideDiscoveryEvents } from './discovery.ts';
import { DISCOVERY_EVENTS, type DiscoveryEvent } from './discovery-events.ts';
import { inventoryOf, type HostInventory, type ObservedContainer, type ObservedVolume } from './inventory.ts';
import { emptyView, evolveAll, type PublishedView } from './published-view.ts';

const HOST = 'host-a.example.com';
const T0 = new Date('2025-03-14T03:00:00.000Z');
const T1 = new Date('2025-03-14T03:05:00.000Z');
const DB_ID = 'a'.repeat(64);
const WEB_ID = 'b'.repeat(64);

function volume(name: string, overrides: Partial<ObservedVolume> = {}): ObservedVolume {
  return {
    name,
    driver: 'local',
    driverOptions: {},
    labels: {},
    scope: 'local',
    anonymous: false,
    mountpoint: `/var/lib/docker/volumes/${name}/_data`,
    createdAt: '2025-03-01T10:00:00Z',
    ...overrides,
  };
}

function container(id: string, overrides: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id,
    name: 'shop-db-1',
    image: 'postgres:16',
    imageId: `sha256:${'c'.repeat(64)}`,
    labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'db' },
    state: 'running',
    running: true,
    startedAt: '2025-03-14T02:00:00.123456789Z',
    mounts: [
      {
        type: 'volume',
        volumeName: 'shop_db.data',
        destination: '/var/lib/postgresql/data',
        readOnly: false,
      },
    ],
    createdAt: '2025-03-14T01:59:59.5Z',
    ...overrides,
  };
}

function engine(volumes: ObservedVolume[], containers: ObservedContainer[] = []): HostInventory {
  return inventoryOf(volumes, containers);
}

/** The view after the agent published what `inventory` holds. */
function publishedAfter(inventory: HostInventory, view: PublishedView = emptyView(HOST)): PublishedView {
  return evolveAll(view, decideDiscoveryEvents(view, inventory, T0));
}

const summary = (events: DiscoveryEvent[]) =>
  events.map((e) => {
    const d = e.data as Record<string, unknown>;
    return [e.type.replace(/^io\.volback\.|\.v1$/g, ''), d['volumeName'] ?? d['name'], d['change']]
      .filter(Boolean)
      .join(' ');
  });

describe('discovery: the events that bring the log in line with the engine', () => {
  it('announces a new volume with what the engine says about it', () => {
    // given nothing published, when the engine holds a labelled volume
    const events = decideDiscoveryEvents(
      emptyView(HOST),
      engine([volume('shop_db.data', { labels: { 'volback.policy': 'daily' } })]),
      T0,
    );
    // then it is discovered, with driver, options, labels and mountpoint
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: VolumeDiscovered.type,
      data: {
        hostId: HOST,
        volumeName: 'shop_db.data',
        driver: 'local',
        driverOptions: {},
        labels: { 'volback.policy': 'daily' },
        scope: 'local',
        anonymous: false,
        mountpoint: '/var/lib/docker/volumes/shop_db.data/_data',
        createdAt: '2025-03-01T10:00:00Z',
        discoveredAt: T0.toISOString(),
      },
    });
  });

  it('reports a removed volume', () => {
    // given a published volume
    const view = publishedAfter(engine([volume('shop_db.data'), volume('cache')]));
    // when the engine no longer holds it
    const events = decideDiscoveryEvents(view, engine([volume('cache')]), T1);
    // then it is removed, and only it
    expect(summary(events)).toEqual(['volume.removed shop_db.data']);
    expect(events[0]!.data).toEqual({
      hostId: HOST,
      volumeName: 'shop_db.data',
      removedAt: T1.toISOString(),
    });
  });

  it('reports changed labels as a label change', () => {
    const view = publishedAfter(engine([volume('shop_db.data', { labels: { tier: 'gold' } })]));
    const events = decideDiscoveryEvents(
      view,
      engine([volume('shop_db.data', { labels: { tier: 'silver' } })]),
      T1,
    );
    expect(summary(events)).toEqual(['volume.changed shop_db.data labels']);
    expect(events[0]!.data).toMatchObject({ change: 'labels', labels: { tier: 'silver' } });
  });

  it('reports a volume the engine destroyed and created again under the same name as both', () => {
    // given a published volume
    const view = publishedAfter(engine([volume('shop_db.data')]));
    // when the engine reported it destroyed since the last look, and it is there again
    const recreated = inventoryOf(
      [volume('shop_db.data', { createdAt: '2025-03-14T03:04:00Z' })],
      [],
      ['shop_db.data'],
    );
    const events = decideDiscoveryEvents(view, recreated, T1);
    // then it is removed, then discovered
    expect(summary(events)).toEqual(['volume.removed shop_db.data', 'volume.discovered shop_db.data']);
  });

  it('keeps a volume whose CreatedAt moved (first use by a container, a restore into it) as it is', () => {
    // given a published volume, mounted by a running container
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    // when the engine reports a later CreatedAt for it (the local driver's ctime of its directory)
    const moved = engine(
      [volume('shop_db.data', { createdAt: '2025-03-14T03:04:00.123456789Z' })],
      [container(DB_ID)],
    );
    // then nothing is published: no removal, no second discovery
    expect(decideDiscoveryEvents(view, moved, T1)).toEqual([]);
  });

  it('announces a running container with its mounts and compose service, and the volume it mounts', () => {
    // given a published volume, when a compose service that mounts it is running
    const view = publishedAfter(engine([volume('shop_db.data')]));
    const events = decideDiscoveryEvents(view, engine([volume('shop_db.data')], [container(DB_ID)]), T1);
    // then the container is observed and started, and the volume mounted by it
    expect(summary(events)).toEqual([
      'container.observed shop-db-1',
      'container.started shop-db-1',
      'volume.changed shop_db.data mounted',
    ]);
    expect(events[0]!.data).toMatchObject({
      containerId: DB_ID,
      image: 'postgres:16',
      state: 'running',
      compose: { project: 'shop', service: 'db' },
      mounts: [
        {
          type: 'volume',
          volumeName: 'shop_db.data',
          destination: '/var/lib/postgresql/data',
          readOnly: false,
        },
      ],
    });
    expect(events[1]!.data).toMatchObject({ startedAt: '2025-03-14T02:00:00.123456789Z' });
    expect(events[2]!.data).toMatchObject({ containerId: DB_ID });
  });

  it('announces a created container without starting it', () => {
    const events = decideDiscoveryEvents(
      emptyView(HOST),
      engine(
        [],
        [
          container(WEB_ID, {
            name: 'web',
            state: 'created',
            running: false,
            startedAt: undefined,
            mounts: [],
          }),
        ],
      ),
      T0,
    );
    expect(summary(events)).toEqual(['container.observed web']);
  });

  it('reports a rename as a new observation with the new name', () => {
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const events = decideDiscoveryEvents(
      view,
      engine([volume('shop_db.data')], [container(DB_ID, { name: 'shop-db-old' })]),
      T1,
    );
    expect(summary(events)).toEqual(['container.observed shop-db-old']);
  });

  it('reports a stop with its exit code, and the volume unmounted', () => {
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const stopped = container(DB_ID, {
      state: 'exited',
      running: false,
      exitCode: 137,
      finishedAt: '2025-03-14T03:04:59.5Z',
    });
    const events = decideDiscoveryEvents(view, engine([volume('shop_db.data')], [stopped]), T1);
    expect(summary(events)).toEqual(['container.stopped shop-db-1', 'volume.changed shop_db.data unmounted']);
    expect(events[0]!.data).toMatchObject({
      exitCode: 137,
      byVolback: false,
      stoppedAt: '2025-03-14T03:04:59.5Z',
    });
  });

  it('says a stop is volback’s when volback ended that run, and only then', () => {
    // given a running container published, and volback's record of a run it stopped
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const stopped = container(DB_ID, { state: 'exited', running: false, exitCode: 0 });
    const now = (runs: string[]) => ({
      ...engine([volume('shop_db.data')], [stopped]),
      stoppedByVolback: new Map([[DB_ID, new Set(runs)]]),
    });
    // when the engine shows the run it ended stopped, then the stop is published as volback's
    expect(decideDiscoveryEvents(view, now(['2025-03-14T02:00:00.123456789Z']), T1)[0]!.data).toMatchObject({
      byVolback: true,
    });
    // when volback ended another run of it, then this stop is someone else's
    expect(decideDiscoveryEvents(view, now(['2025-03-14T01:00:00Z']), T1)[0]!.data).toMatchObject({
      byVolback: false,
    });
  });

  it('says a stop missed between two looks is volback’s when volback ended the run before', () => {
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const again = {
      ...engine([volume('shop_db.data')], [container(DB_ID, { startedAt: '2025-03-14T03:01:00Z' })]),
      stoppedByVolback: new Map([[DB_ID, new Set(['2025-03-14T02:00:00.123456789Z'])]]),
    };
    const events = decideDiscoveryEvents(view, again, T1);
    expect(summary(events)).toEqual(['container.stopped shop-db-1', 'container.started shop-db-1']);
    expect(events[0]!.data).toMatchObject({ byVolback: true });
  });

  it('reports a start of a stopped container', () => {
    const exited = container(DB_ID, {
      state: 'exited',
      running: false,
      exitCode: 0,
      finishedAt: '2025-03-14T02:30:00Z',
    });
    const view = publishedAfter(engine([volume('shop_db.data')], [exited]));
    const events = decideDiscoveryEvents(
      view,
      engine([volume('shop_db.data')], [container(DB_ID, { startedAt: '2025-03-14T03:01:00Z' })]),
      T1,
    );
    expect(summary(events)).toEqual(['container.started shop-db-1', 'volume.changed shop_db.data mounted']);
  });

  it('reports a restart between two looks as a stop and a start', () => {
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const restarted = container(DB_ID, {
      startedAt: '2025-03-14T03:02:00Z',
      finishedAt: '2025-03-14T03:01:59Z',
    });
    const events = decideDiscoveryEvents(view, engine([volume('shop_db.data')], [restarted]), T1);
    expect(summary(events)).toEqual(['container.stopped shop-db-1', 'container.started shop-db-1']);
    expect(events[0]!.data).toMatchObject({ stoppedAt: '2025-03-14T03:01:59Z' });
  });

  it('reports a running container that disappeared as stopped, unmounted and removed', () => {
    const view = publishedAfter(engine([volume('shop_db.data')], [container(DB_ID)]));
    const events = decideDiscoveryEvents(view, engine([volume('shop_db.data')]), T1);
    expect(summary(events)).toEqual([
      'volume.changed shop_db.data unmounted',
      'container.stopped shop-db-1',
      'container.removed shop-db-1',
    ]);
  });

  it('publishes nothing when nothing changed', () => {
    // given everything published
    const inventory = engine(
      [volume('shop_db.data'), volume('d'.repeat(64), { anonymous: true })],
      [container(DB_ID), container(WEB_ID, { name: 'web', state: 'exited', running: false, exitCode: 1 })],
    );
    const view = publishedAfter(inventory);
    // when the engine is looked at again, later
    // then there is nothing to say
    expect(decideDiscoveryEvents(view, inventory, T1)).toEqual([]);
  });

  it('gives the same events the same ids, whenever they are noticed', () => {
    const inventory = engine([volume('shop_db.data')], [container(DB_ID)]);
    const first = decideDiscoveryEvents(emptyView(HOST), inventory, T0);
    const again = decideDiscoveryEvents(emptyView(HOST), inventory, T1);
    expect(again.map((e) => e.id)).toEqual(first.map((e) => e.id));
    expect(new Set(first.map((e) => e.id)).size).toBe(first.length);
    for (const id of first.map((e) => e.id))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('gives a recurring fact a new id: renamed and renamed back, removed and created again', () => {
    let view = publishedAfter(engine([volume('v1')], [container(DB_ID)]));
    const ids: string[] = [];
    for (const name of ['other', 'shop-db-1']) {
      const events = decideDiscoveryEvents(view, engine([volume('v1')], [container(DB_ID, { name })]), T1);
      ids.push(...events.map((e) => e.id));
      view = evolveAll(view, events);
    }
    const removed = decideDiscoveryEvents(view, engine([], [container(DB_ID)]), T1);
    view = evolveAll(view, removed);
    const recreated = decideDiscoveryEvents(view, engine([volume('v1')], [container(DB_ID)]), T1);
    const firstDiscovery = decideDiscoveryEvents(emptyView(HOST), engine([volume('v1')]), T0)[0]!;
    expect(summary(recreated)).toEqual(['volume.discovered v1']);
    expect(recreated[0]!.id).not.toBe(firstDiscovery.id);
    expect(new Set(ids).size).toBe(2);
  });

  it('keeps two hosts apart: the same volume name has its own id and subject per host', () => {
    const a = decideDiscoveryEvents(emptyView('host-a'), engine([volume('data')]), T0)[0]!;
    const b = decideDiscoveryEvents(emptyView('host-b'), engine([volume('data')]), T0)[0]!;
    expect(a.id).not.toBe(b.id);
    const subject = (e: DiscoveryEvent) =>
      createEvent(DISCOVERY_EVENTS[e.type] as EventDefinition, e.data, { source: 'test', id: e.id }).subject;
    expect(subject(a)).toBe('volback.evt.volume.host-a.data');
    expect(subject(b)).toBe('volback.evt.volume.host-b.data');
  });

  it('rebuilds the same view from the stored events, so a restarted agent has nothing to add', () => {
    // given the events of a few looks, stored as JSON and read back as a restarted agent would
    const looks = [
      engine([volume('shop_db.data'), volume('cache')], [container(DB_ID)]),
      engine(
        [volume('shop_db.data')],
        [container(DB_ID, { name: 'renamed', state: 'exited', running: false, exitCode: 0 })],
      ),
      inventoryOf(
        [volume('shop_db.data', { createdAt: '2025-03-14T04:00:00Z' })],
        [container(WEB_ID, { name: 'web' })],
        ['shop_db.data'],
      ),
    ];
    let live = emptyView(HOST);
    const stored: DiscoveryEvent[] = [];
    for (const look of looks) {
      const events = decideDiscoveryEvents(live, look, T0);
      live = evolveAll(live, events);
      for (const e of events) {
        const { envelope } = createEvent(DISCOVERY_EVENTS[e.type] as EventDefinition, e.data, {
          source: 'test',
          id: e.id,
        });
        const parsed = parseMessage(encodeEnvelope(envelope));
        if (!parsed.ok) throw parsed.error;
        stored.push({
          type: e.type,
          id: parsed.message.envelope.id,
          data: parsed.message.envelope.data,
        } as DiscoveryEvent);
      }
    }
    // when the view is rebuilt from them
    const rebuilt = evolveAll(emptyView(HOST), stored);
    // then it equals the live one, and the last look has nothing new
    expect(rebuilt).toEqual(live);
    const last = looks.at(-1)!;
    expect(
      decideDiscoveryEvents(rebuilt, inventoryOf(last.volumes.values(), last.containers.values()), T1),
    ).toEqual([]);
    expect(new Set(stored.map((e) => e.type))).toEqual(
      new Set([
        VolumeDiscovered.type,
        VolumeChanged.type,
        VolumeRemoved.type,
        ContainerObserved.type,
        ContainerStarted.type,
        ContainerStopped.type,
        ContainerRemoved.type,
      ]),
    );
  });
});
