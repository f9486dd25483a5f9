import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  BackupCompleted,
  ContractErrorCode,
  CONFIGURED_DEFAULT_POLICY_ID,
  createEvent,
  createHeartbeat,
  encodeEnvelope,
  eventSubject,
  HostRegistered,
  HostSeen,
  MESSAGE_FIXTURES,
  MessageRejected,
  parseMessage,
  sampleData,
  SnapshotImported,
  STREAMS,
  VolumeDiscovered,
  type Envelope,
  PolicyDefined,
  PolicyRemoved,
} from '@volback/contracts';
import { MessagePublisher, publishMany, type NatsConnection } from '@volback/messaging';
import { waitUntil } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogDatabase } from './adapters/catalog-database.ts';
import { CatalogQueries } from './adapters/catalog-queries.ts';
import { startCatalog, type Catalog } from './catalog.ts';
import { applyEventRows, projectEvent } from './projection/project-event.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { HISTORY_IDS, READ_URLS, TEST_NOW, testHistory } from './test-support/history.ts';

const A = 'origin-host-a';
const B = 'origin-host-b';
const VOLUME = 'shop_db.data';
const TERABYTE = 1024 ** 4;

/** A BackupCompleted of `hostId`'s volume, a terabyte big, as an agent would send it. */
function completed(backupId: string, hostId: string, options: { source: string; time?: Date }) {
  const stats = { ...sampleData(BackupCompleted).stats, totalBytes: TERABYTE, bytesAdded: TERABYTE };
  return createEvent(
    BackupCompleted,
    sampleData(BackupCompleted, {
      backupId,
      hostId,
      volumeName: VOLUME,
      stats,
      completedAt: (options.time ?? new Date()).toISOString(),
    }),
    { source: options.source, ...(options.time ? { time: options.time } : {}) },
  );
}

async function answers(catalog: Catalog): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const url of READ_URLS) {
    const res = await catalog.app.inject({ method: 'GET', url });
    expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    out[url] = res.json();
  }
  return out;
}

describe('projection of VOLBACK_EVENTS into SQLite', () => {
  let stack: CatalogTestStack;
  let nc: NatsConnection;
  let dir: string;
  let catalogs: Catalog[];
  const start = (name: string, rebuild = false) => stack.catalog(name, { rebuild });

  beforeAll(async () => {
    stack = await CatalogTestStack.start('projection');
    ({ nc, dir, catalogs } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('projects every event type, and a replica started later answers every query the same', async () => {
    const live = await start('live');
    const status = (await live.app.inject({ url: '/v1/status' })).json<{
      checkpoint: number;
      backups: object;
    }>();
    expect(status.checkpoint).toBe(testHistory().length);
    const first = await answers(live);
    expect(first[`/v1/backups?host=${HISTORY_IDS.secondHost}&limit=2`]).toMatchObject({
      items: [{ backupId: 'catalog-test-backup-6' }, { backupId: 'catalog-test-backup-5' }],
    });
    expect(first[`/v1/hosts/${encodeURIComponent(HISTORY_IDS.hostId)}`]).toMatchObject({ status: 'online' });

    const replica = await start('replica');
    expect(replica.durable).not.toBe(live.durable);
    expect(await answers(replica)).toEqual(first);
  });

  it('applying the same events twice changes nothing', async () => {
    const live = catalogs[0]!;
    const before = await answers(live);
    for (const message of testHistory()) {
      const name = message.envelope.type;
      const def = (await import('@volback/contracts')).findDefinition(name)!;
      applyEventRows(live.database, def.name, def.schema.parse(message.envelope.data));
    }
    expect(await answers(live)).toEqual(before);
    // An event at or below the checkpoint (a redelivery after a crash) is not applied at all.
    const checkpoint = live.database.checkpoint();
    expect(projectEvent(live.database, { name: 'HostSeen', data: {}, streamSequence: checkpoint })).toBe(
      false,
    );
    expect(live.database.checkpoint()).toBe(checkpoint);
  });

  it('rebuilds from scratch (a new database, --rebuild, and the admin route) to the same answers', async () => {
    const live = catalogs[0]!;
    const expected = await answers(live);
    // The flag: the replica's database is emptied at start and the log replayed.
    await catalogs[1]!.stop();
    const rebuilt = await start('replica', true);
    expect(await answers(rebuilt)).toEqual(expected);
    // The admin route, while serving.
    const res = await live.app.inject({ method: 'POST', url: '/v1/admin/rebuild' });
    expect(res.statusCode).toBe(202);
    await live.caughtUp();
    expect(await answers(live)).toEqual(expected);
  });

  it('resumes from its checkpoint after a restart, without applying anything twice', async () => {
    const file = join(dir, 'restart.sqlite');
    const first = await startCatalog({ nc, databaseFile: file, instanceId: 'restart', now: () => TEST_NOW });
    await first.caughtUp();
    const before = first.database.checkpoint();
    await first.stop();
    const seen = createEvent(
      HostSeen,
      {
        hostId: HISTORY_IDS.secondHost,
        seenAt: '2025-03-14T03:00:50.000Z',
        intervalSeconds: 30,
        containers: 1,
        volumes: 3,
        backupsRunning: 0,
      },
      { source: 'volback://catalog-test' },
    );
    await new MessagePublisher(nc).publish(seen);
    const second = await startCatalog({ nc, databaseFile: file, instanceId: 'restart', now: () => TEST_NOW });
    catalogs.push(second);
    await second.caughtUp();
    expect(second.database.checkpoint()).toBeGreaterThan(before);
    const host = (await second.app.inject({ url: `/v1/hosts/${HISTORY_IDS.secondHost}` })).json<{
      status: string;
    }>();
    expect(host.status).toBe('online');
  });

  it('skips events of an unknown type or newer version with a warning, and goes on', async () => {
    const live = catalogs[0]!;
    const newer = {
      specversion: '1.0',
      id: 'catalog-test-newer-version',
      source: 'volback://future-agent',
      type: 'io.volback.host.seen.v9',
      time: TEST_NOW.toISOString(),
      subject: HISTORY_IDS.secondHost,
      datacontenttype: 'application/json',
      data: { anything: 'new' },
    };
    await nc.request('volback.evt.host.catalog-test-host-2', encodeEnvelope(newer as never));
    const after = createEvent(
      HostSeen,
      {
        hostId: HISTORY_IDS.secondHost,
        seenAt: '2025-03-14T03:00:55.000Z',
        intervalSeconds: 30,
        containers: 2,
        volumes: 3,
        backupsRunning: 0,
      },
      { source: 'volback://catalog-test' },
    );
    await new MessagePublisher(nc).publish(after);
    await live.caughtUp();
    const host = (await live.app.inject({ url: `/v1/hosts/${HISTORY_IDS.secondHost}` })).json<{
      containers: number;
    }>();
    expect(host.containers).toBe(2);
  });

  it('a database of another schema version is emptied and rebuilt at open', () => {
    const file = join(dir, 'old-schema.sqlite');
    const { database } = CatalogDatabase.open(file);
    database.db.exec('PRAGMA user_version = 999');
    database.close();
    const reopened = CatalogDatabase.open(file);
    expect(reopened.emptied).toBe(true);
    expect(reopened.database.checkpoint()).toBe(0);
    reopened.database.close();
  });

  it('shows the policy that protects a volume by the scheduler’s rule, with its published configured default', () => {
    const { database } = CatalogDatabase.open(join(dir, 'effective-policy.sqlite'));
    const queries = new CatalogQueries(database, () => TEST_NOW);
    const at = '2025-03-14T01:00:00.000Z';
    const policy = { schedule: { cron: '0 3 * * *' }, retention: { keepLast: 1 } };
    const define = (policyId: string, origin: 'api' | 'labels' | 'configuration', extra: object = {}) =>
      applyEventRows(
        database,
        'PolicyDefined',
        PolicyDefined.schema.parse({
          policyId,
          scope: { kind: 'default' },
          origin,
          policy,
          definedAt: at,
          ...extra,
        }),
      );
    for (const [volumeName, anonymous] of [
      ['data', false],
      ['f00d', true],
    ] as const) {
      applyEventRows(
        database,
        'VolumeDiscovered',
        VolumeDiscovered.schema.parse({
          hostId: 'h',
          volumeName,
          driver: 'local',
          scope: 'local',
          anonymous,
          discoveredAt: at,
        }),
      );
    }
    const policyOf = (volumeName: string) => queries.getVolume('h', volumeName).protection.policyId;
    // given an API default, but no word yet from the scheduler on what the defaults cover: none
    define('everything', 'api');
    expect(policyOf('data')).toBeNull();
    // when the scheduler publishes its configured default (every volume but anonymous ones)
    define(CONFIGURED_DEFAULT_POLICY_ID, 'configuration', {
      coverage: { mode: 'all', includeAnonymous: false },
    });
    // then the API default wins over it, and the anonymous volume has none
    expect(policyOf('data')).toBe('everything');
    expect(policyOf('f00d')).toBeNull();
    // when the API default is removed, the configured default protects the volume
    applyEventRows(
      database,
      'PolicyRemoved',
      PolicyRemoved.schema.parse({ policyId: 'everything', removedAt: at }),
    );
    expect(policyOf('data')).toBe(CONFIGURED_DEFAULT_POLICY_ID);
    // when the scheduler protects only labelled volumes, a volume with labels of its own is
    define(CONFIGURED_DEFAULT_POLICY_ID, 'configuration', {
      coverage: { mode: 'labelled', includeAnonymous: false },
    });
    expect(policyOf('data')).toBeNull();
    define('labels:h:data', 'labels', { scope: { kind: 'volume', hostId: 'h', volumeName: 'data' } });
    expect(policyOf('data')).toBe('labels:h:data');
    // and of two API policies for the volume, the later one, whatever its id
    define('zzz', 'api', { scope: { kind: 'volume', hostId: 'h', volumeName: 'data' } });
    define('aaa', 'api', { scope: { kind: 'volume', hostId: 'h', volumeName: 'data' } });
    expect(policyOf('data')).toBe('aaa');
    database.close();
  });

  it('a re-imported snapshot: a known one is left as it is; a new one brings its host and volume, marked as from the repository', () => {
    const { database } = CatalogDatabase.open(join(dir, 'imported.sqlite'));
    const queries = new CatalogQueries(database, () => TEST_NOW);
    const completed = BackupCompleted.schema.parse(MESSAGE_FIXTURES['io.volback.backup.completed.v1']);
    applyEventRows(database, 'BackupCompleted', completed);
    const imported = SnapshotImported.schema.parse(MESSAGE_FIXTURES['io.volback.snapshot.imported.v1']);
    // Given the fixture's snapshot is the backup's: the import changes nothing.
    applyEventRows(database, 'SnapshotImported', imported);
    expect(queries.getSnapshot(completed.snapshotId)).toMatchObject({
      origin: 'backup',
      backupId: completed.backupId,
      stats: { filesNew: completed.stats.filesNew },
    });

    const fresh = { ...imported, snapshotId: 'e'.repeat(64), hostId: 'lost-host-id', hostName: 'lost-host' };
    applyEventRows(database, 'SnapshotImported', fresh);
    applyEventRows(database, 'SnapshotImported', fresh);
    expect(queries.getSnapshot(fresh.snapshotId)).toMatchObject({
      origin: 'import',
      backupId: null,
      stats: null,
      hostId: 'lost-host-id',
      volumeName: fresh.volumeName,
      time: fresh.time,
    });
    expect(queries.getHost('lost-host-id')).toMatchObject({
      name: 'lost-host',
      status: 'unknown',
      registeredAt: null,
    });
    expect(queries.getVolume('lost-host-id', fresh.volumeName)).toMatchObject({
      discoveredAt: null,
      protection: { status: 'protected', lastSnapshotId: fresh.snapshotId, lastSuccessAt: fresh.time },
    });
    expect(queries.status().snapshots).toBe(2);
    database.close();
  });

  it("shows no backup forged on another host's subject, by another agent, or dated ahead; reports each", async () => {
    const publisher = new MessagePublisher(nc);
    for (const hostId of [A, B]) {
      const source = `volback://agent/${hostId}`;
      await publisher.publish(
        createEvent(HostRegistered, sampleData(HostRegistered, { hostId }), { source }),
      );
      await publisher.publish(
        createEvent(VolumeDiscovered, sampleData(VolumeDiscovered, { hostId, volumeName: VOLUME }), {
          source,
        }),
      );
    }
    const catalog = await start('origin');
    const js = jetstream(nc);
    /** Publishes as an attacker would: raw bytes on a subject of its choice. */
    const forge = (subject: string, envelope: Envelope) =>
      js.publish(subject, encodeEnvelope(envelope), { msgID: envelope.id });

    // given: host A's agent says host B's volume has a fresh terabyte backup, on A's own subject
    const namesB = completed('forged-names-b', B, { source: `volback://agent/${A}` });
    await forge(eventSubject('backup', A, 'forged-names-b'), namesB.envelope);
    // and: a backup of A's volume on A's subject, claiming to come from B's agent
    const fromB = completed('forged-from-b', A, { source: `volback://agent/${B}` });
    await forge(fromB.subject, fromB.envelope);
    // and: a backup of A's volume, on A's subject from A's agent, dated an hour ahead
    const ahead = completed('forged-ahead', A, {
      source: `volback://agent/${A}`,
      time: new Date(Date.now() + 60 * 60_000),
    });
    await forge(ahead.subject, ahead.envelope);
    // when: an honest backup of A follows, and the catalog has read it
    const honest = completed('honest-a', A, { source: `volback://agent/${A}` });
    await forge(honest.subject, honest.envelope);
    await waitUntil(
      'the honest backup',
      async () => (await catalog.app.inject({ url: '/v1/backups/honest-a' })).statusCode === 200,
      10_000,
    );

    // then: no forged backup is known, and the volumes' last success is only the honest one
    for (const backupId of ['forged-names-b', 'forged-from-b', 'forged-ahead']) {
      const res = await catalog.app.inject({ url: `/v1/backups/${backupId}` });
      expect(res.statusCode, backupId).toBe(404);
    }
    const volumeOf = async (hostId: string) =>
      (
        await catalog.app.inject({
          url: `/v1/hosts/${encodeURIComponent(hostId)}/volumes/${encodeURIComponent(VOLUME)}`,
        })
      ).json<{
        sizeBytes: number | null;
        protection: { lastSuccessAt: string | null; lastBackup: { backupId: string } | null };
      }>();
    expect((await volumeOf(B)).protection).toMatchObject({ lastSuccessAt: null, lastBackup: null });
    expect((await volumeOf(B)).sizeBytes).not.toBe(TERABYTE);
    expect((await volumeOf(A)).protection.lastBackup).toMatchObject({ backupId: 'honest-a' });
    for (const hostId of [A, B]) {
      const listed = (await catalog.app.inject({ url: `/v1/backups?host=${hostId}&limit=50` })).json<{
        items: { backupId: string }[];
      }>();
      expect(listed.items.map((i) => i.backupId)).toEqual(hostId === A ? ['honest-a'] : []);
    }
    // nor does the event history show them
    const since = new Date(Date.now() - 60 * 60_000).toISOString();
    const history = (
      await catalog.app.inject({ url: `/v1/events?since=${since}&type=io.volback.backup.&limit=500` })
    ).json<{ items: { event: Envelope }[] }>();
    const shown = history.items.map((i) => (i.event.data as { backupId: string }).backupId);
    expect(shown).toContain('honest-a');
    expect(shown.filter((id) => id.startsWith('forged-'))).toEqual([]);

    // and: each forgery is reported as MessageRejected, naming what gave it away
    const reports = eventSubject('message', catalog.durable);
    const jsm = await jetstreamManager(nc);
    await waitUntil(
      'three rejection reports',
      async () =>
        ((await jsm.streams.info(STREAMS.events.name, { subjects_filter: reports })).state.subjects?.[
          reports
        ] ?? 0) === 3,
      10_000,
    );
    const rejected: { subject: string; path: string; code: string }[] = [];
    const consumer = await js.consumers.get(STREAMS.events.name, { filter_subjects: [reports] });
    for (let i = 0; i < 3; i++) {
      const msg = await consumer.next({ expires: 5_000 });
      const parsed = parseMessage(msg!.data);
      if (!parsed.ok || parsed.message.definition !== MessageRejected) throw new Error('not a report');
      const data = parsed.message.envelope.data as {
        subject: string;
        code: string;
        issues: { path: string }[];
      };
      rejected.push({ subject: data.subject, path: data.issues[0]!.path, code: data.code });
    }
    expect(rejected).toEqual([
      {
        subject: eventSubject('backup', A, 'forged-names-b'),
        path: 'data.hostId',
        code: ContractErrorCode.WrongOrigin,
      },
      { subject: fromB.subject, path: 'source', code: ContractErrorCode.WrongOrigin },
      { subject: ahead.subject, path: 'time', code: ContractErrorCode.WrongOrigin },
    ]);
  });
  it('shows a host online from its heartbeat in VOLBACK_HEARTBEATS, outside the log, and again after a rebuild', async () => {
    const jsm = await jetstreamManager(nc);
    const hostId = 'heartbeat-host';
    const beat = (at: Date) =>
      createHeartbeat(
        {
          hostId,
          seenAt: at.toISOString(),
          intervalSeconds: 30,
          containers: 3,
          volumes: 4,
          backupsRunning: 0,
        },
        { source: `volback://agent/${hostId}`, time: at },
      );
    await publishMany(nc, [beat(new Date(TEST_NOW.getTime() - 60_000)), beat(TEST_NOW)]);
    const catalog = await start('heartbeats');
    const host = async () =>
      (await catalog.app.inject({ url: `/v1/hosts/${hostId}` })).json<Record<string, unknown>>();
    await waitUntil(
      'the heartbeat projected',
      async () => (await host())['lastSeenAt'] === TEST_NOW.toISOString(),
      10_000,
    );
    expect(await host()).toMatchObject({ status: 'online', heartbeatSeconds: 30, containers: 3, volumes: 4 });
    // Heartbeats are not events: nothing about the host in the log.
    const inLog = await jsm.streams.info(STREAMS.events.name, {
      subjects_filter: eventSubject('host', hostId),
    });
    expect(inLog.state.subjects ?? {}).toEqual({});
    await catalog.rebuild();
    await waitUntil(
      'the heartbeat projected after the rebuild',
      async () => (await host())['status'] === 'online',
      10_000,
    );
  });
});
