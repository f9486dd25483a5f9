import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  CheckRepository,
  createCommand,
  eventSubjectFilter,
  ForgetSnapshots,
  ImportSnapshots,
  parseMessage,
  PruneRepository,
  type Envelope,
} from '@volback/contracts';
import { DataPathClient } from '@volback/data-path';
import { connectNats, ensureStreams, MessagePublisher } from '@volback/messaging';
import { openBackend, type Backend } from '@volback/repository';
import { startNatsServer, waitFor, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSnapshot,
  initRepository,
  randomContent,
  restic,
  startTestGateway,
  TEST_AGENT,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

const HOST = 'docker-maint-01';
const VOLUME = 'shop_db.data';

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;
let location: string;
let backend: Backend;
let gw: TestGateway;
let publisher: MessagePublisher;
let events: Subscription;
const received: Envelope[] = [];

/** Backs up a volume with content of its own at a given time; returns the snapshot id. */
async function snapshotAt(hostname: string, volume: string, time: string): Promise<string> {
  const client = new DataPathClient(nc, {
    requester: { kind: 'host', hostId: hostname },
    sessionId: `seed-${hostname}-${volume}-${time}`,
  });
  const snapshot = buildSnapshot(volume, {
    'data.bin': randomContent(50_000),
    'stamp.txt': Buffer.from(time),
  });
  for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
  await client.flush();
  return client.commitSnapshot({ tree: snapshot.tree, paths: snapshot.paths, hostname, time });
}

async function send(message: ReturnType<typeof createCommand>): Promise<void> {
  await publisher.publish(message);
}

/** The next event about this operation. */
async function outcome(operationId: string, timeoutMs = 20_000): Promise<Envelope> {
  return waitFor(
    `an event about ${operationId}`,
    async () => received.find((e) => (e.data as { operationId?: string }).operationId === operationId),
    timeoutMs,
  );
}

/** Bytes of every pack file of the repository. */
async function packBytes(): Promise<number> {
  let total = 0;
  for (const dir of await readdir(join(location, 'data'))) {
    for (const name of await readdir(join(location, 'data', dir)))
      total += (await stat(join(location, 'data', dir, name))).size;
  }
  return total;
}

interface ResticForgetGroup {
  keep: Array<{ id: string }> | null;
  remove: Array<{ id: string }> | null;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'maintenance-test', connectTimeoutMs: 5_000 });
  await ensureStreams(await jetstreamManager(nc));
  publisher = new MessagePublisher(nc);
  events = nc.subscribe(eventSubjectFilter('repository'));
  void (async () => {
    for await (const msg of events) {
      const parsed = parseMessage(msg.data);
      if (parsed.ok) received.push(parsed.message.envelope);
    }
  })();
  scratch = await mkdtemp(join(tmpdir(), 'volback-gateway-maint-'));
  location = join(scratch, 'repo');
  backend = openBackend(location);
  await initRepository(backend);
  gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-maint', maintenance: true });
});

afterAll(async () => {
  await gw?.stop();
  events?.unsubscribe();
  await nc?.close();
  await backend?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('maintenance commands through VOLBACK_COMMANDS', () => {
  const series = [
    '2025-03-05T10:00:00Z',
    '2025-03-10T10:00:00Z',
    '2025-03-11T09:00:00Z',
    '2025-03-11T18:00:00Z',
    '2025-03-12T10:00:00Z',
    '2025-03-13T10:00:00Z',
    '2025-03-14T10:00:00Z',
  ];
  const retention = { keepDaily: 2, keepWeekly: 2 };
  let others: string[];

  beforeAll(async () => {
    for (const time of series) await snapshotAt(HOST, VOLUME, time);
    // Out of the command's scope: another volume of the host, the same volume name on another host.
    others = [
      await snapshotAt(HOST, 'other.volume', series[1]!),
      await snapshotAt('docker-maint-02', VOLUME, series[1]!),
    ];
  });

  it('forget: a dry run changes nothing; the real run keeps and removes what restic forget would', async () => {
    const restics = JSON.parse(
      await restic(location, [
        '--no-lock',
        'forget',
        '--dry-run',
        '--json',
        '--host',
        HOST,
        '--path',
        `/volumes/${VOLUME}`,
        '--keep-daily',
        '2',
        '--keep-weekly',
        '2',
      ]),
    ) as ResticForgetGroup[];
    expect(restics).toHaveLength(1);
    const keep = (restics[0]!.keep ?? []).map((s) => s.id).sort();
    const remove = (restics[0]!.remove ?? []).map((s) => s.id).sort();
    expect(keep).toHaveLength(3);
    expect(remove).toHaveLength(4);

    const base = { repositoryId: 'default', hostId: HOST, volumeName: VOLUME, retention };
    await send(
      createCommand(
        ForgetSnapshots,
        { ...base, operationId: 'forget-dry', dryRun: true },
        { source: 'volback://test' },
      ),
    );
    const dry = await outcome('forget-dry');
    expect(dry.type).toBe('io.volback.repository.snapshots-forgotten.v1');
    expect(dry.data).toMatchObject({ forgotten: [], hostId: HOST, volumeName: VOLUME });
    expect([...(dry.data as { kept: string[] }).kept].sort()).toEqual(keep);
    expect(JSON.parse(await restic(location, ['--no-lock', 'snapshots', '--json']))).toHaveLength(
      series.length + 2,
    );

    const command = createCommand(
      ForgetSnapshots,
      { ...base, operationId: 'forget-1' },
      { source: 'volback://test' },
    );
    await send(command);
    const forgotten = await outcome('forget-1');
    expect(forgotten.causationid).toBe(command.envelope.id);
    const data = forgotten.data as { forgotten: string[]; kept: string[] };
    expect([...data.forgotten].sort()).toEqual(remove);
    expect([...data.kept].sort()).toEqual(keep);
    const left = (
      JSON.parse(await restic(location, ['--no-lock', 'snapshots', '--json'])) as Array<{ id: string }>
    )
      .map((s) => s.id)
      .sort();
    expect(left).toEqual([...keep, ...others].sort());
  });

  it('prune frees what forget left unused, and restic check --read-data passes after it', async () => {
    const before = await packBytes();
    await send(
      createCommand(
        PruneRepository,
        { operationId: 'prune-1', maxUnusedFraction: 0 },
        { source: 'volback://test' },
      ),
    );
    const pruned = await outcome('prune-1');
    expect(pruned.type).toBe('io.volback.repository.pruned.v1');
    const data = pruned.data as {
      bytesFreed: number;
      blobsRemoved: number;
      packsDeleted: number;
      packsRepacked: number;
    };
    expect(data.blobsRemoved).toBeGreaterThan(0);
    expect(data.bytesFreed).toBeGreaterThan(0);
    expect(data.packsDeleted + data.packsRepacked).toBeGreaterThan(0);
    await restic(location, ['--no-lock', 'check', '--read-data']);
    // Repacked packs also lose header entries, so at least what prune reports is gone.
    expect(before - (await packBytes())).toBeGreaterThanOrEqual(data.bytesFreed);
  });

  it('prune while a backup session holds its shared lock fails with REPOSITORY_LOCKED, and works once it is done', async () => {
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-during-prune' });
    const snapshot = buildSnapshot(VOLUME, { 'new.bin': randomContent(20_000) });
    await client.missingBlobs(snapshot.blobs.map(({ type, id }) => ({ type, id }))); // takes the session's lock
    await send(createCommand(PruneRepository, { operationId: 'prune-locked' }, { source: 'volback://test' }));
    const failed = await outcome('prune-locked');
    expect(failed.type).toBe('io.volback.repository.maintenance-failed.v1');
    expect(failed.data).toMatchObject({ operation: 'prune', code: 'REPOSITORY_LOCKED' });
    expect((failed.data as { reason: string }).reason).toContain('shared lock');

    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
    await client.flush();
    await client.commitSnapshot({
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: HOST,
      time: new Date().toISOString(),
    });
    await send(createCommand(PruneRepository, { operationId: 'prune-after' }, { source: 'volback://test' }));
    expect((await outcome('prune-after')).type).toBe('io.volback.repository.pruned.v1');
    await restic(location, ['check']); // no lock is left behind: restic's own exclusive lock works
  });

  it('refuses a command for another repository', async () => {
    await send(
      createCommand(
        CheckRepository,
        { operationId: 'check-elsewhere', repositoryId: 'elsewhere' },
        { source: 'volback://test' },
      ),
    );
    expect((await outcome('check-elsewhere')).data).toMatchObject({
      operation: 'check',
      code: 'UNKNOWN_REPOSITORY',
    });
  });

  it("import: every volback snapshot the log lacks once (a second import: none), restic's own snapshot of a directory skipped", async () => {
    const foreignDir = join(scratch, 'not-a-volume');
    await mkdir(foreignDir, { recursive: true });
    await writeFile(join(foreignDir, 'notes.txt'), 'restic wrote this');
    await restic(location, ['backup', '--host', 'laptop', foreignDir]);
    const all = JSON.parse(await restic(location, ['--no-lock', 'snapshots', '--json'])) as Array<{
      id: string;
      paths: string[];
    }>;
    const volbacks = all.filter((s) => s.paths.every((p) => p.startsWith('/volumes/')));
    expect(volbacks.length).toBeGreaterThan(1);
    const imported = new Set<string>();
    const sub = nc.subscribe(eventSubjectFilter('snapshot'));
    void (async () => {
      for await (const msg of sub) {
        const parsed = parseMessage(msg.data);
        if (parsed.ok) imported.add((parsed.message.envelope.data as { snapshotId: string }).snapshotId);
      }
    })();

    await send(createCommand(ImportSnapshots, { operationId: 'import-1' }, { source: 'volback://test' }));
    expect((await outcome('import-1')).data).toMatchObject({
      snapshots: all.length,
      imported: volbacks.length,
      alreadyKnown: 0,
      skipped: 1,
    });
    await nc.flush();
    expect([...imported].sort()).toEqual(volbacks.map((s) => s.id).sort());

    await send(createCommand(ImportSnapshots, { operationId: 'import-2' }, { source: 'volback://test' }));
    expect((await outcome('import-2')).data).toMatchObject({
      imported: 0,
      alreadyKnown: volbacks.length,
      skipped: 1,
    });
    sub.unsubscribe();
    // Each snapshot's subject holds one event: the log stored every import once.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('VOLBACK_EVENTS', {
      subjects_filter: eventSubjectFilter('snapshot'),
    });
    expect(Object.values(info.state.subjects ?? {})).toEqual(volbacks.map(() => 1));
  });

  it('check reads all data and reports ok; after damage to a pack it names the damaged blobs and snapshots', async () => {
    await send(
      createCommand(
        CheckRepository,
        { operationId: 'check-1', readDataFraction: 1 },
        { source: 'volback://test' },
      ),
    );
    const checked = await outcome('check-1');
    expect(checked.type).toBe('io.volback.repository.checked.v1');
    expect(checked.data).toMatchObject({ ok: true, errors: [], damagedBlobs: [], readDataFraction: 1 });
    expect((checked.data as { packsChecked: number }).packsChecked).toBeGreaterThan(0);

    // Flip bytes inside every data pack (not the header at the end): blobs fail their MAC.
    for (const dir of await readdir(join(location, 'data'))) {
      for (const name of await readdir(join(location, 'data', dir))) {
        const path = join(location, 'data', dir, name);
        const bytes = await readFile(path);
        bytes[20] = bytes[20]! ^ 0xff;
        await writeFile(path, bytes);
      }
    }
    await send(
      createCommand(
        CheckRepository,
        { operationId: 'check-2', readDataFraction: 1 },
        { source: 'volback://test' },
      ),
    );
    const damaged = (await outcome('check-2')).data as {
      ok: boolean;
      errors: string[];
      damagedBlobs: string[];
      damagedSnapshots: string[];
    };
    expect(damaged.ok).toBe(false);
    expect(damaged.errors.length).toBeGreaterThan(0);
    expect(damaged.damagedBlobs.length).toBeGreaterThan(0);
    expect(damaged.damagedSnapshots.length).toBeGreaterThan(0);
  });
});
