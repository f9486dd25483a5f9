import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { DataPathClient, DataPathError, DataPathErrorCode } from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { openBackend, type Backend } from '@volback/repository';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  buildSnapshot,
  initRepository,
  randomContent,
  restic,
  startTestGateway,
  TEST_AGENT,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;
const running: TestGateway[] = [];
const backends: Backend[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'gateway-pair-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-gateway-pair-'));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((g) => g.stop()));
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Two gateways on one repository, in one queue group; each on its own backend and NATS connection. */
async function startPair(location: string, env: Record<string, string>): Promise<[TestGateway, TestGateway]> {
  const backend = openBackend(location, env);
  backends.push(backend);
  await initRepository(backend);
  const pair: TestGateway[] = [];
  for (const gatewayId of ['gw-a', 'gw-b']) {
    const own = openBackend(location, env);
    backends.push(own);
    // No idle flush during the test: blobs stay pending until a flush or commit asks.
    const gw = await startTestGateway(nats.url, { backend: own, gatewayId, idleFlushMs: 600_000 });
    running.push(gw);
    pair.push(gw);
  }
  return pair as [TestGateway, TestGateway];
}

/** A volume of `files` files of 40 KB: that many data blobs, spread over the queue group. */
function manyFiles(count: number): Record<string, Buffer> {
  return Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`file-${i}.bin`, randomContent(40_000)]),
  );
}

describe('two gateways in one queue group', () => {
  it('share the blobs of one backup, both flush, and the commit passes restic check (MinIO)', async () => {
    const h = inject('harness');
    const location = `s3:${h.minioUrl}/gw-pair-${process.pid}-${Date.now().toString(36)}`;
    const env = { AWS_ACCESS_KEY_ID: h.minioAccessKey, AWS_SECRET_ACCESS_KEY: h.minioSecretKey };
    await startPair(location, env);
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'pair-backup' });
    const snapshot = buildSnapshot('app.data', manyFiles(40));
    const missing = await client.missingBlobs(snapshot.blobs.map(({ type, id }) => ({ type, id })));
    expect(missing).toHaveLength(snapshot.blobs.length);
    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);

    const flushed = await client.flush();
    expect(flushed.map((f) => f.gatewayId)).toEqual(['gw-a', 'gw-b']);
    // 43 blobs spread at random over two gateways: each wrote packs of its own.
    for (const { packsWritten } of flushed) expect(packsWritten).toBeGreaterThan(0);
    // Nothing left to write: a second flush is answered by both with nothing written.
    expect(await client.flush()).toEqual([
      // The session's stored bytes are counted since its first blob, on each gateway.
      { gatewayId: 'gw-a', packsWritten: 0, bytesStored: flushed[0]!.bytesStored },
      { gatewayId: 'gw-b', packsWritten: 0, bytesStored: flushed[1]!.bytesStored },
    ]);

    const snapshotId = await client.commitSnapshot({
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: 'docker-test-02',
      time: new Date().toISOString(),
    });
    await restic(location, ['--no-lock', 'check', '--read-data'], env);
    const files = (await restic(location, ['--no-lock', 'ls', snapshotId], env))
      .split('\n')
      .filter((line) => line.startsWith('/volumes/app.data/'));
    expect(files).toHaveLength(40);
  });

  it('lose the unflushed blobs of a gateway that dies; the commit names them, they are sent again to the survivor, and it passes', async () => {
    const location = join(scratch, 'crash-repo');
    const [gwA] = await startPair(location, {});
    const client = new DataPathClient(nc, {
      requester: TEST_AGENT,
      sessionId: 'pair-crash',
      timeoutMs: 5_000,
    });
    const snapshot = buildSnapshot('db.data', manyFiles(30));
    await client.missingBlobs(snapshot.blobs.map(({ type, id }) => ({ type, id })));
    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);

    await gwA.kill(); // its open packs were never written
    running.splice(running.indexOf(gwA), 1);

    const flushed = await client.flush();
    expect(flushed).toHaveLength(1);
    expect(flushed[0]!.gatewayId).toBe('gw-b');

    const commit = {
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: 'docker-test-03',
      time: new Date().toISOString(),
    };
    const error = (await client.commitSnapshot(commit).catch((e: unknown) => e)) as DataPathError;
    expect(error).toBeInstanceOf(DataPathError);
    expect(error.code).toBe(DataPathErrorCode.MissingBlobs);
    const lost = error.missing ?? [];
    expect(lost.length).toBeGreaterThan(0);
    const sent = new Map(snapshot.blobs.map((b) => [`${b.type}:${b.id}`, b]));
    for (const ref of lost) expect(sent.has(`${ref.type}:${ref.id}`)).toBe(true);

    // The agent's answer: send what is missing again (only the survivor is left), flush, commit.
    // A lost tree may hide lost blobs below it, so repeat until the commit passes.
    let snapshotId: string | undefined;
    let missing = lost;
    for (let round = 0; round < 5 && !snapshotId; round++) {
      for (const ref of missing) {
        const blob = sent.get(`${ref.type}:${ref.id}`)!;
        expect((await client.storeBlob(blob.type, blob.id, blob.data)).added).toBe(true);
      }
      await client.flush();
      try {
        snapshotId = await client.commitSnapshot(commit);
      } catch (retry) {
        if ((retry as DataPathError).code !== DataPathErrorCode.MissingBlobs) throw retry;
        missing = (retry as DataPathError).missing ?? [];
      }
    }
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);
    await restic(location, ['--no-lock', 'check', '--read-data']);
    const listed = JSON.parse(await restic(location, ['--no-lock', 'snapshots', '--json'])) as Array<{
      id: string;
    }>;
    expect(listed.map((s) => s.id)).toEqual([snapshotId]);
  });
  it('a gateway stopped gracefully writes its open packs first: the commit on the other needs nothing again', async () => {
    const location = join(scratch, 'graceful-repo');
    const [gwA] = await startPair(location, {});
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'pair-graceful' });
    const snapshot = buildSnapshot('web.data', manyFiles(20));
    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
    await gwA.stop(); // no flush asked for: stopping writes what it holds
    running.splice(running.indexOf(gwA), 1);
    const snapshotId = await client.commitSnapshot({
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: 'docker-test-04',
      time: new Date().toISOString(),
    });
    await restic(location, ['check', '--read-data']); // and no lock of gw-a is left behind
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);
  });
});
