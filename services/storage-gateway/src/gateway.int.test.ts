import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { DATA_HEADERS, DATA_OPERATIONS, dataSubject } from '@volback/contracts';
import {
  DataPathClient,
  DataPathError,
  DataPathErrorCode,
  encodeBlobHeaders,
  FLUSH_PHASE_HEADER,
  FLUSH_STARTED,
  GATEWAY_ID_HEADER,
  MAX_DATA_BLOB_BYTES,
  readError,
} from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { openBackend, type Backend } from '@volback/repository';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  buildSnapshot,
  initRepository,
  randomContent,
  restic,
  startTestGateway,
  TEST_AGENT,
  TEST_READER,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function expectDataPathError(promise: Promise<unknown>, code: string): Promise<DataPathError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(DataPathError);
  expect((error as DataPathError).code).toBe(code);
  return error as DataPathError;
}

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;

beforeAll(async () => {
  // A server of our own: the data-path subjects and queue group are fixed, other files run gateways too.
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'gateway-int-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-gateway-int-'));
});

afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface Target {
  name: string;
  /** The location restic is given, and its environment. */
  location: () => string;
  env: () => Record<string, string>;
}

const targets: Target[] = [
  { name: 'a local repository', location: () => join(scratch, 'local-repo'), env: () => ({}) },
  {
    name: 'MinIO',
    location: () =>
      `s3:${inject('harness').minioUrl}/gw-int-${process.pid}-${Date.now().toString(36)}`.slice(0, 200),
    env: () => ({
      AWS_ACCESS_KEY_ID: inject('harness').minioAccessKey,
      AWS_SECRET_ACCESS_KEY: inject('harness').minioSecretKey,
    }),
  },
];

describe.each(targets)('client and gateway on $name', (target) => {
  let location: string;
  let env: Record<string, string>;
  let backend: Backend;
  let gw: TestGateway;

  beforeAll(async () => {
    location = target.location();
    env = target.env();
    backend = openBackend(location, env);
    await initRepository(backend);
    gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-single', idleFlushMs: 60_000 });
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
  });

  it('tells the repository format and chunker polynomial, as restic reads them', async () => {
    const info = await new DataPathClient(nc, { requester: TEST_AGENT }).repositoryInfo();
    const config = JSON.parse(await restic(location, ['cat', 'config'], env)) as {
      version: number;
      chunker_polynomial: string;
    };
    expect(info).toEqual({
      repositoryId: 'default',
      version: config.version,
      chunkerPolynomial: config.chunker_polynomial,
    });
  });

  it('stores what is missing, flushes, commits a snapshot restic checks, lists and dumps', async () => {
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-round-trip' });
    const snapshot = buildSnapshot('shop_db.data', {
      'a.bin': randomContent(700_000),
      'b.txt': Buffer.from('hello from volback\n'),
      empty: Buffer.alloc(0),
    });
    const refs = snapshot.blobs.map(({ type, id }) => ({ type, id }));
    expect(await client.missingBlobs(refs)).toEqual(refs);

    for (const blob of snapshot.blobs) {
      expect((await client.storeBlob(blob.type, blob.id, blob.data)).added).toBe(true);
    }
    // Sent twice (a retry): stored once.
    const again = snapshot.blobs[0]!;
    expect(await client.storeBlob(again.type, again.id, again.data)).toEqual({
      added: false,
      storedLength: 0,
    });
    // Pending blobs count as present: a session does not send them twice.
    expect(await client.missingBlobs(refs)).toEqual([]);

    const flushed = await client.flush();
    // One data pack, one tree pack; what the session's blobs take in them.
    expect(flushed).toEqual([{ gatewayId: 'gw-single', packsWritten: 2, bytesStored: expect.any(Number) }]);
    expect(flushed[0]!.bytesStored).toBeGreaterThan(0);

    const time = '2025-03-14T03:00:00.123456789+01:00';
    const commit = {
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: 'docker-test-01',
      time,
      tags: ['volback'],
    };
    const snapshotId = await client.commitSnapshot(commit);
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);
    // The same commit again (a retry after a lost answer) finds the snapshot instead of writing another.
    expect(await client.commitSnapshot(commit)).toBe(snapshotId);

    await restic(location, ['--no-lock', 'check', '--read-data'], env);
    const listed = JSON.parse(await restic(location, ['--no-lock', 'snapshots', '--json'], env)) as Array<{
      id: string;
      hostname: string;
      paths: string[];
      tags: string[];
      tree: string;
      time: string;
    }>;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      id: snapshotId,
      hostname: 'docker-test-01',
      paths: ['/volumes/shop_db.data'],
      // The gateway tags the snapshot with the committing agent's host (from the subject).
      tags: ['volback', `host-id:${TEST_AGENT.hostId}`],
      tree: snapshot.tree,
    });
    const ls = (await restic(location, ['--no-lock', 'ls', snapshotId], env)).split('\n');
    expect(ls).toEqual(
      expect.arrayContaining([
        '/volumes',
        '/volumes/shop_db.data',
        '/volumes/shop_db.data/a.bin',
        '/volumes/shop_db.data/b.txt',
        '/volumes/shop_db.data/empty',
      ]),
    );
    const dumped = await restic(
      location,
      ['--no-lock', 'dump', snapshotId, '/volumes/shop_db.data/b.txt'],
      env,
    );
    expect(dumped).toBe('hello from volback\n');

    // Reads for restore: the snapshot by id, prefix and `latest`; blobs verified.
    const byLatest = await client.findSnapshot('latest', {
      hostname: 'docker-test-01',
      path: '/volumes/shop_db.data',
    });
    expect(byLatest).toEqual({
      snapshotId,
      tree: snapshot.tree,
      paths: ['/volumes/shop_db.data'],
      time,
      tags: ['volback', 'host-id:docker-test-01'], // the host from the request's subject, not its body
    });
    expect((await client.findSnapshot(snapshotId.slice(0, 8))).snapshotId).toBe(snapshotId);
    expect(await client.findSnapshot('latest', { hostname: 'another-host' })).toEqual({
      snapshotId: null,
      tree: null,
      paths: [],
      time: null,
    });
    for (const blob of snapshot.blobs)
      expect((await client.loadBlob(blob.type, blob.id)).equals(blob.data)).toBe(true);
  });

  it('refuses a blob whose body does not hash to its id, and stores nothing', async () => {
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-wrong-id' });
    const data = randomContent(10_000);
    const claimed = sha256(Buffer.from('something else'));
    const error = await expectDataPathError(
      client.storeBlob('data', claimed, data),
      DataPathErrorCode.BlobIdMismatch,
    );
    expect(error.message).toContain(sha256(data));
    expect(
      await client.missingBlobs([
        { type: 'data', id: claimed },
        { type: 'data', id: sha256(data) },
      ]),
    ).toHaveLength(2);
  });

  it('refuses to commit a snapshot whose blobs are not all stored, naming them; sending them makes it pass', async () => {
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-missing' });
    const snapshot = buildSnapshot('partial', {
      'x.bin': randomContent(300_000),
      'y.bin': randomContent(5_000),
    });
    const data = snapshot.blobs.filter((b) => b.type === 'data');
    for (const blob of snapshot.blobs.filter((b) => b.type === 'tree'))
      await client.storeBlob(blob.type, blob.id, blob.data);
    await client.flush();
    const commit = {
      tree: snapshot.tree,
      paths: snapshot.paths,
      hostname: 'docker-test-01',
      time: new Date().toISOString(),
    };
    const error = await expectDataPathError(client.commitSnapshot(commit), DataPathErrorCode.MissingBlobs);
    expect(error.missing?.map((b) => b.id).sort()).toEqual(data.map((b) => b.id).sort());
    expect(error.missing?.every((b) => b.type === 'data')).toBe(true);

    // A tree that is missing hides what is below it; the next commit names that too.
    const onlyRoot = buildSnapshot('another', { 'z.bin': randomContent(1_000) });
    const root = onlyRoot.blobs.at(-1)!;
    await client.storeBlob(root.type, root.id, root.data);
    const missingTree = await expectDataPathError(
      client.commitSnapshot({ ...commit, tree: onlyRoot.tree, paths: onlyRoot.paths }),
      DataPathErrorCode.MissingBlobs,
    );
    expect(missingTree.missing).toEqual([{ type: 'tree', id: onlyRoot.blobs.at(-2)!.id }]);

    for (const blob of data) await client.storeBlob(blob.type, blob.id, blob.data);
    const snapshotId = await client.commitSnapshot(commit);
    expect(
      JSON.parse(await restic(location, ['--no-lock', 'cat', 'snapshot', snapshotId], env)),
    ).toMatchObject({
      tree: snapshot.tree,
      hostname: 'docker-test-01',
      username: expect.any(String), // the gateway process's user, as the restic CLI records its own
    });
    await restic(location, ['--no-lock', 'check'], env);
  });
});

describe('bad input on the data path', () => {
  let backend: Backend;
  let gw: TestGateway;

  beforeAll(async () => {
    backend = openBackend(join(scratch, 'bad-input-repo'));
    await initRepository(backend);
    gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-bad-input' });
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
  });

  const request = async (subject: string, body: Uint8Array | string, headers?: MsgHdrs) => {
    const reply = await nc.request(
      subject,
      typeof body === 'string' ? new TextEncoder().encode(body) : body,
      {
        timeout: 5_000,
        ...(headers ? { headers } : {}),
      },
    );
    return readError(reply);
  };

  it('answers malformed requests with BAD_REQUEST naming the field, and changes nothing', async () => {
    expect((await request(dataSubject(TEST_AGENT, DATA_OPERATIONS.missingBlobs), 'not json'))?.code).toBe(
      DataPathErrorCode.BadRequest,
    );
    const wrongShape = await request(
      dataSubject(TEST_AGENT, DATA_OPERATIONS.missingBlobs),
      JSON.stringify({ sessionId: 's1', blobs: [{ type: 'data', id: 'xyz' }] }),
    );
    expect(wrongShape?.code).toBe(DataPathErrorCode.BadRequest);
    expect(wrongShape?.message).toContain('blobs.0.id');
    const noHeaders = await request(dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlob), randomBytes(100));
    expect(noHeaders?.code).toBe(DataPathErrorCode.BadRequest);
    const data = randomBytes(100);
    const noSession = await request(
      dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlob),
      data,
      encodeBlobHeaders({ type: 'data', id: sha256(data) }),
    );
    expect(noSession?.message).toContain(DATA_HEADERS.sessionId);
    const badCommit = await request(
      dataSubject(TEST_AGENT, DATA_OPERATIONS.commitSnapshot),
      JSON.stringify({
        sessionId: 's1',
        snapshot: { tree: 'nope', paths: [], hostname: 'h', time: 'yesterday' },
      }),
    );
    expect(badCommit?.code).toBe(DataPathErrorCode.BadRequest);
    // A host token no encoder writes names no requester.
    const noRequester = await request('volback.data.host.a~2e.missing-blobs', JSON.stringify({}));
    expect(noRequester).toMatchObject({ code: DataPathErrorCode.BadRequest });
    expect(noRequester?.message).toContain('not a data-path subject');
    expect(await restic(backend.location, ['--no-lock', 'snapshots', '--json'])).toBe('[]\n');
  });

  it('refuses other repositories, unknown blobs, unreadable snapshot refs and oversized blobs', async () => {
    const other = new DataPathClient(nc, { requester: TEST_AGENT, repositoryId: 'elsewhere', retries: 0 });
    await expectDataPathError(other.repositoryInfo(), DataPathErrorCode.UnknownRepository);
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'bad-input' });
    const neverStored = sha256(Buffer.from('never stored'));
    await expectDataPathError(client.loadBlob('data', neverStored), DataPathErrorCode.NotFound);
    // An agent may read only blobs of its host's snapshots: one of none is refused as such.
    const agent = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'bad-input-agent' });
    await expectDataPathError(agent.loadBlob('data', neverStored), DataPathErrorCode.Forbidden);
    await expectDataPathError(client.findSnapshot('not-a-ref'), DataPathErrorCode.BadRequest);
    const big = Buffer.alloc(MAX_DATA_BLOB_BYTES + 1);
    await expectDataPathError(client.storeBlob('data', sha256(big), big), DataPathErrorCode.BlobTooLarge);
    // A commit whose tree is not a restic tree.
    const notATree = Buffer.from('{"nodes":[{"name":"d","type":"dir","uid":0,"gid":0}]}\n');
    await client.storeBlob('tree', sha256(notATree), notATree);
    const error = await expectDataPathError(
      client.commitSnapshot({
        tree: sha256(notATree),
        paths: ['/volumes/v'],
        hostname: 'h',
        time: new Date().toISOString(),
      }),
      DataPathErrorCode.BadRequest,
    );
    expect(error.message).toContain('has no subtree');
  });

  it('carries a blob of the chunker maximum (8 MiB) both ways', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'big-blob' });
    const big = randomBytes(8 * 1024 * 1024);
    const id = sha256(big);
    expect((await client.storeBlob('data', id, big)).added).toBe(true);
    await client.flush();
    expect((await client.loadBlob('data', id)).equals(big)).toBe(true);
  });

  it('a flush waits for the gateways that served its client, not for one that holds nothing of it', async () => {
    // Another gateway: acknowledges every flush at once, finishes it 3 s later.
    const named = (phase?: string) => {
      const h = natsHeaders();
      h.set(GATEWAY_ID_HEADER, 'gw-slow');
      if (phase) h.set(FLUSH_PHASE_HEADER, phase);
      return h;
    };
    const slow = nc.subscribe(dataSubject(TEST_AGENT, DATA_OPERATIONS.flush));
    const answering = (async () => {
      for await (const msg of slow) {
        msg.respond(JSON.stringify({ gatewayId: 'gw-slow', packsWritten: 0 }), {
          headers: named(FLUSH_STARTED),
        });
        const done = JSON.stringify({ gatewayId: 'gw-slow', packsWritten: 0, bytesStored: 0 });
        setTimeout(() => msg.respond(done, { headers: named() }), 3_000);
      }
    })();
    try {
      const served = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'flush-served' });
      const blob = randomContent(5_000);
      expect((await served.storeBlob('data', sha256(blob), blob)).added).toBe(true);
      // gw-bad-input named itself on that reply: its flush is the one that counts.
      const flushed = await served.flush();
      expect(flushed.map((r) => r.gatewayId)).toEqual(['gw-bad-input']);
      // A client no gateway answered yet waits for every gateway that acknowledged the broadcast.
      const unserved = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'flush-unserved' });
      expect((await unserved.flush()).map((r) => r.gatewayId)).toEqual(['gw-bad-input', 'gw-slow']);
    } finally {
      slow.unsubscribe();
      await answering;
    }
  });

  it('says NO_GATEWAY when no gateway listens', async () => {
    await gw.stop();
    const client = new DataPathClient(nc, { requester: TEST_AGENT, retries: 1, timeoutMs: 2_000 });
    await expectDataPathError(client.repositoryInfo(), DataPathErrorCode.NoGateway);
    await expectDataPathError(client.flush(), DataPathErrorCode.NoGateway);
  });
});
