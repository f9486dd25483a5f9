import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { hostIdTag, volumeSnapshotPath, type DataRequester } from '@volback/contracts';
import { DataPathClient, DataPathError, DataPathErrorCode } from '@volback/data-path';
import { connectNats, RestoreGrants } from '@volback/messaging';
import { decodeTree, openBackend, type Backend } from '@volback/repository';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSnapshot,
  initRepository,
  randomContent,
  startTestGateway,
  type TestGateway,
  type TestSnapshot,
} from './test-support/gateway-fixture.ts';

const A: DataRequester = { kind: 'host', hostId: 'access-host-a' };
const B: DataRequester = { kind: 'host', hostId: 'access-host-b' };
const HOUR = 3_600_000;

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;
let backend: Backend;
let gateway: TestGateway;
let grants: RestoreGrants;

/** Backs up a volume as host `as`'s agent would; returns the snapshot and its id. */
async function backUp(
  as: DataRequester,
  volume: string,
  tags: string[] = [],
): Promise<{ snapshot: TestSnapshot; snapshotId: string }> {
  const client = new DataPathClient(nc, { requester: as, sessionId: `backup-${volume}-${Math.random()}` });
  const snapshot = buildSnapshot(volume, {
    'data.bin': randomContent(300_000),
    'note.txt': randomContent(500),
  });
  for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
  await client.flush();
  const hostId = as.kind === 'host' ? as.hostId : 'catalog';
  const snapshotId = await client.commitSnapshot({
    tree: snapshot.tree,
    paths: snapshot.paths,
    hostname: hostId,
    time: new Date().toISOString(),
    tags: ['volback', `volume:${volume}`, ...tags],
  });
  return { snapshot, snapshotId };
}

/**
 * Restores a snapshot's files as an agent does (find, every tree below the root in one
 * `load-trees`, then the data blobs those trees name).
 */
async function restore(client: DataPathClient, snapshotId: string): Promise<Record<string, Buffer>> {
  const found = await client.findSnapshot(snapshotId);
  const trees = new Map((await client.loadTrees(found.tree!)).map((t) => [t.id, t.data]));
  const files: Record<string, Buffer> = {};
  const walk = async (treeId: string, path: string): Promise<void> => {
    const bytes = trees.get(treeId) ?? (await client.loadBlobs('tree', [treeId]))[0];
    for (const node of decodeTree(bytes!, treeId)) {
      if (node.type === 'dir') await walk(node.subtree!, `${path}/${node.name}`);
      else if (node.type === 'file') {
        const parts = node.content?.length ? await client.loadBlobs('data', node.content) : [];
        files[`${path}/${node.name}`] = Buffer.concat(parts);
      }
    }
  };
  await walk(found.tree!, '');
  return files;
}

async function refusal(work: Promise<unknown>): Promise<DataPathError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataPathError);
  expect((error as DataPathError).code).toBe(DataPathErrorCode.Forbidden);
  return error as DataPathError;
}

const expectFilesOf = (restored: Record<string, Buffer>, snapshot: TestSnapshot, volume: string) => {
  for (const [name, content] of Object.entries(snapshot.files))
    expect(restored[`${volumeSnapshotPath(volume)}/${name}`]?.equals(content), name).toBe(true);
};

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'data-path-access-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-access-'));
  backend = openBackend(join(scratch, 'repo'));
  await initRepository(backend);
  gateway = await startTestGateway(nats.url, { backend, gatewayId: 'gw-access-1' });
  grants = new RestoreGrants(nc);
});

afterAll(async () => {
  await gateway?.stop();
  await backend?.close();
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the gateway serves each agent its own host’s snapshots, and others’ only with a grant', () => {
  let ofA: { snapshot: TestSnapshot; snapshotId: string };
  let ofB: { snapshot: TestSnapshot; snapshotId: string };

  beforeAll(async () => {
    ofA = await backUp(A, 'app.data');
    ofB = await backUp(B, 'db.data');
  });

  it("refuses agent A host B's snapshot, B's trees and B's data with FORBIDDEN, and lets A read its own", async () => {
    const asA = new DataPathClient(nc, { requester: A, sessionId: 'a-reads' });
    const error = await refusal(asA.findSnapshot(ofB.snapshotId));
    expect(error.message).toContain(ofB.snapshotId);
    await refusal(asA.findSnapshot(ofB.snapshotId.slice(0, 10)));
    await refusal(asA.loadBlobs('tree', [ofB.snapshot.tree]));
    await refusal(asA.loadBlob('tree', ofB.snapshot.tree));
    await refusal(asA.loadTrees(ofB.snapshot.tree));
    const dataOfB = ofB.snapshot.blobs.filter((b) => b.type === 'data').map((b) => b.id);
    await refusal(asA.loadBlobs('data', dataOfB));
    // `latest` picks among A's snapshots only, whatever the filter asks for.
    const latest = await asA.findSnapshot('latest', { path: volumeSnapshotPath('db.data') });
    expect(latest.snapshotId).toBeNull();
    const mine = await asA.findSnapshot('latest', { tags: [hostIdTag('access-host-a')] });
    expect(mine.snapshotId).toBe(ofA.snapshotId);
    expectFilesOf(await restore(asA, ofA.snapshotId), ofA.snapshot, 'app.data');
  });

  it('tags a snapshot with the host of the subject that committed it, not the one the request names', async () => {
    // given agent A commits a snapshot tagged and named as host B's
    const forged = await backUp(A, 'db.data', [hostIdTag('access-host-b')]);
    // then it is A's: B's `latest` of the volume is still B's own, and A can read the forged one
    const asB = new DataPathClient(nc, { requester: B, sessionId: 'b-latest' });
    const latestOfB = await asB.findSnapshot('latest', {
      tags: [hostIdTag('access-host-b')],
      path: volumeSnapshotPath('db.data'),
    });
    expect(latestOfB.snapshotId).toBe(ofB.snapshotId);
    await refusal(asB.findSnapshot(forged.snapshotId));
    const asA = new DataPathClient(nc, { requester: A, sessionId: 'a-forged' });
    expect((await asA.findSnapshot(forged.snapshotId)).snapshotId).toBe(forged.snapshotId);
  });

  it("restores B's snapshot on A with the catalog's grant, and only the blobs that snapshot reaches", async () => {
    const other = await backUp(B, 'other.data');
    await grants.put('restore-granted', {
      hostId: 'access-host-a',
      snapshotId: ofB.snapshotId,
      expiresAt: new Date(Date.now() + HOUR).toISOString(),
    });
    const granted = new DataPathClient(nc, {
      requester: A,
      grant: 'restore-granted',
      sessionId: 'restore-granted',
    });
    expectFilesOf(await restore(granted, ofB.snapshotId), ofB.snapshot, 'db.data');
    // The grant names one snapshot: another of B's, its trees and its data stay out of reach.
    await refusal(granted.findSnapshot(other.snapshotId));
    await refusal(granted.loadBlobs('tree', [other.snapshot.tree]));
    await refusal(granted.loadTrees(other.snapshot.tree));
    const dataOfOther = other.snapshot.blobs.filter((b) => b.type === 'data').map((b) => b.id);
    await refusal(granted.loadBlobs('data', dataOfOther));
    // A's own snapshots stay readable during the restore.
    expect((await granted.findSnapshot(ofA.snapshotId)).snapshotId).toBe(ofA.snapshotId);
  });

  it('refuses a grant for another host, an expired grant, and a restore id without a grant', async () => {
    const inAnHour = new Date(Date.now() + HOUR).toISOString();
    await grants.put('restore-for-c', {
      hostId: 'access-host-c',
      snapshotId: ofB.snapshotId,
      expiresAt: inAnHour,
    });
    await grants.put('restore-expired', {
      hostId: 'access-host-a',
      snapshotId: ofB.snapshotId,
      expiresAt: new Date(Date.now() - 1_000).toISOString(),
    });
    for (const grant of ['restore-for-c', 'restore-expired', 'restore-never-granted']) {
      const client = new DataPathClient(nc, { requester: A, grant, sessionId: grant });
      await refusal(client.findSnapshot(ofB.snapshotId));
      await refusal(client.loadBlobs('tree', [ofB.snapshot.tree]));
    }
  });

  it('a gateway that served nothing of it checks a read by walking the snapshots, and finds the next backup’s parent', async () => {
    // given a second gateway alone in the queue group, which never found A's snapshot for A
    await gateway.stop();
    const second = await startTestGateway(nats.url, { backend, gatewayId: 'gw-access-2' });
    try {
      const asA = new DataPathClient(nc, { requester: A, sessionId: 'a-second' });
      const dataOfA = ofA.snapshot.blobs.filter((b) => b.type === 'data');
      const read = await asA.loadBlobs(
        'data',
        dataOfA.map((b) => b.id),
      );
      read.forEach((blob, i) => expect(blob.equals(dataOfA[i]!.data)).toBe(true));
      await refusal(asA.loadBlobs('data', [ofB.snapshot.blobs.find((b) => b.type === 'data')!.id]));
      // and A's next backup finds its parent and commits as usual
      const parent = await asA.findSnapshot('latest', {
        tags: [hostIdTag('access-host-a')],
        path: volumeSnapshotPath('app.data'),
      });
      expect(parent.snapshotId).toBe(ofA.snapshotId);
      const next = await backUp(A, 'app.data');
      expect(next.snapshotId).not.toBe(ofA.snapshotId);
    } finally {
      gateway = second;
    }
  });
});
