import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import {
  DATA_HEADERS,
  DATA_OPERATIONS,
  dataSubject,
  GATEWAY_QUEUE_GROUP,
  STORE_BLOBS_MAX_BLOBS,
} from '@volback/contracts';
import {
  DataPathClient,
  DataPathErrorCode,
  decodeBlobHeaders,
  encodeJson,
  encodeStoreBlobsHeaders,
  GatewayBlobStore,
  MAX_DATA_BLOB_BYTES,
  readError,
} from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { openBackend, type Backend } from '@volback/repository';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countRequests,
  failure,
  initRepository,
  randomContent,
  restic,
  startStandIn,
  startTestGateway,
  TEST_AGENT,
  type StandIn,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;

beforeAll(async () => {
  // A server of our own (max_payload 16 MiB, as every volback server): the queue group is fixed.
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'store-blobs-int-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-store-blobs-'));
});

afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('store-blobs between a backup and a gateway', () => {
  let backend: Backend;
  let gw: TestGateway;

  beforeAll(async () => {
    backend = openBackend(join(scratch, 'repo'));
    await initRepository(backend);
    gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-store-blobs', idleFlushMs: 60_000 });
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
  });

  it("sends a backup's small blobs many to a request, each once; restic reads every one back", async () => {
    const small = Array.from({ length: 600 }, (_, i) => randomContent(100 + ((i * 997) % 6_000)));
    const large = [randomContent(200_000), randomContent(300_000)];
    const batches = await countRequests(nc, dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlobs));
    const singles = await countRequests(nc, dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlob));
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-small-files' });
    const store = await GatewayBlobStore.open(client);
    try {
      for (const data of [...small, ...large, small[0]!]) await store.saveBlob('data', data, sha256(data));
      const tree = Buffer.from('{"nodes":[]}\n');
      await store.saveBlob('tree', tree, sha256(tree));
      await store.drain();
    } finally {
      batches.stop();
      singles.stop();
    }
    // 600 small data blobs in requests of up to 256, the tree in one of its own; large ones alone.
    expect(batches.count).toBe(Math.ceil(600 / STORE_BLOBS_MAX_BLOBS) + 1);
    expect(singles.count).toBe(large.length);
    const bytes = (blobs: Buffer[]) => blobs.reduce((n, b) => n + b.length, 0);
    expect(store.bytesSent).toBe(bytes(small) + bytes(large) + 13);
    expect(store.bytesAdded).toBe(bytes(small) + bytes(large));
    await client.flush();

    const refs = [...small, ...large].map((data) => ({ type: 'data' as const, id: sha256(data) }));
    expect(await client.missingBlobs(refs)).toEqual([]);
    const listed = new Set((await restic(backend.location, ['--no-lock', 'list', 'blobs'])).split('\n'));
    for (const { id } of refs) expect(listed.has(`data ${id}`), id).toBe(true);
    await restic(backend.location, ['--no-lock', 'check', '--read-data']);

    // Another backup of the same blobs: stored once, so nothing is added.
    const again = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-small-again' });
    expect(
      await again.storeBlobs(
        'data',
        small.slice(0, 10).map((data) => ({ id: sha256(data), data })),
      ),
    ).toEqual(Array<boolean>(10).fill(false));
    await again.flush();
  });

  it('stores nothing of a request with one blob that does not match its id (BLOB_ID_MISMATCH)', async () => {
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-one-bad-blob' });
    const blobs = Array.from({ length: 5 }, () => randomContent(2_000)).map((data) => ({
      id: sha256(data),
      data,
    }));
    const wrong = { id: sha256(Buffer.from('something else')), data: randomContent(2_000) };
    const error = await failure(client.storeBlobs('data', [...blobs.slice(0, 3), wrong, ...blobs.slice(3)]));
    expect(error.code).toBe(DataPathErrorCode.BlobIdMismatch);
    expect(error.message).toContain('blob 4 of 6');
    expect(error.message).toContain(sha256(wrong.data));
    const refs = [...blobs, wrong].map(({ id }) => ({ type: 'data' as const, id }));
    expect(await client.missingBlobs(refs)).toEqual(refs);

    // Through the store, the backup fails with it, and nothing of the batch was stored.
    const store = await GatewayBlobStore.open(client);
    for (const blob of [...blobs, wrong]) await store.saveBlob('data', blob.data, blob.id);
    expect((await failure(store.drain())).code).toBe(DataPathErrorCode.BlobIdMismatch);
    expect(await client.missingBlobs(refs)).toEqual(refs);
  });

  it('answers malformed store-blobs requests with BAD_REQUEST naming the header, and stores nothing', async () => {
    const data = [randomContent(1_000), randomContent(2_000)];
    const ids = data.map(sha256);
    const body = Buffer.concat(data);
    const valid = {
      type: 'data',
      ids,
      lengths: data.map((d) => d.length),
      repositoryId: 'default',
      sessionId: 's1',
    } as const;
    const request = async (payload: Uint8Array, headers: MsgHdrs) =>
      readError(
        await nc.request(dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlobs), payload, {
          timeout: 5_000,
          headers,
        }),
      );
    const edited = (edit: (h: MsgHdrs) => void) => {
      const h = encodeStoreBlobsHeaders(valid);
      edit(h);
      return h;
    };
    const cases: Array<[string, Uint8Array, MsgHdrs, string, string]> = [
      ['no headers', body, natsHeaders(), DataPathErrorCode.BadRequest, DATA_HEADERS.blobType],
      [
        'a bad id',
        body,
        edited((h) => h.set(DATA_HEADERS.blobIds, `${ids[0]},XYZ`)),
        DataPathErrorCode.BadRequest,
        DATA_HEADERS.blobIds,
      ],
      [
        'fewer lengths than ids',
        body,
        edited((h) => h.set(DATA_HEADERS.blobLengths, String(body.length))),
        DataPathErrorCode.BadRequest,
        DATA_HEADERS.blobLengths,
      ],
      [
        'lengths that do not add up',
        body.subarray(1),
        encodeStoreBlobsHeaders(valid),
        DataPathErrorCode.BadRequest,
        DATA_HEADERS.blobLengths,
      ],
      [
        'no session',
        body,
        edited((h) => h.delete(DATA_HEADERS.sessionId)),
        DataPathErrorCode.BadRequest,
        DATA_HEADERS.sessionId,
      ],
      [
        'too many blobs',
        Buffer.alloc(0),
        encodeStoreBlobsHeaders({
          ...valid,
          ids: Array<string>(STORE_BLOBS_MAX_BLOBS + 1).fill(sha256(Buffer.alloc(0))),
          lengths: Array<number>(STORE_BLOBS_MAX_BLOBS + 1).fill(0),
        }),
        DataPathErrorCode.BadRequest,
        `at most ${STORE_BLOBS_MAX_BLOBS}`,
      ],
      [
        'a blob above the limit',
        Buffer.alloc(MAX_DATA_BLOB_BYTES + 1),
        encodeStoreBlobsHeaders({
          ...valid,
          ids: [sha256(Buffer.alloc(MAX_DATA_BLOB_BYTES + 1))],
          lengths: [MAX_DATA_BLOB_BYTES + 1],
        }),
        DataPathErrorCode.BlobTooLarge,
        String(MAX_DATA_BLOB_BYTES),
      ],
      [
        'another repository',
        body,
        edited((h) => h.set(DATA_HEADERS.repositoryId, 'elsewhere')),
        DataPathErrorCode.UnknownRepository,
        'elsewhere',
      ],
    ];
    for (const [what, payload, headers, code, named] of cases) {
      const error = await request(payload, headers);
      expect(error?.code, what).toBe(code);
      expect(error?.message, what).toContain(named);
    }
    const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'backup-bad-store-blobs' });
    const refs = ids.map((id) => ({ type: 'data' as const, id }));
    expect(await client.missingBlobs(refs)).toEqual(refs);
    // The client refuses what the contract does not allow before sending anything.
    expect((await failure(client.storeBlobs('data', []))).code).toBe(DataPathErrorCode.BadRequest);
    expect((await failure(client.storeBlobs('data', [{ id: 'nope', data: body }]))).code).toBe(
      DataPathErrorCode.BadRequest,
    );
  });
});

describe('gateways older than store-blobs', () => {
  // A stand-in for an older gateway, on a NATS server of its own: it knows store-blob only.
  let standIns: StandIn;
  let standIn: NatsConnection;
  let client: NatsConnection;

  beforeAll(async () => {
    standIns = await startStandIn(TEST_AGENT);
    ({ standIn, client } = standIns);
  });

  afterAll(async () => {
    await standIns?.stop();
  });

  it('sends blob by blob to gateways that do not know store-blobs', async () => {
    const received = new Map<string, Buffer>();
    const single = standIn.subscribe(dataSubject(TEST_AGENT, DATA_OPERATIONS.storeBlob), {
      queue: GATEWAY_QUEUE_GROUP,
    });
    void (async () => {
      for await (const msg of single) {
        const blob = decodeBlobHeaders(msg.headers);
        if (blob.ok) received.set(blob.value.id, Buffer.from(msg.data));
        msg.respond(encodeJson({ added: true, storedLength: 0 }));
      }
    })();
    await standIn.flush();
    try {
      const dataPath = new DataPathClient(client, { requester: TEST_AGENT, timeoutMs: 5_000 });
      const store = await GatewayBlobStore.open(dataPath);
      const blobs = Array.from({ length: 7 }, () => randomBytes(3_000));
      for (const data of blobs) await store.saveBlob('data', data, sha256(data));
      await store.drain();
      expect(received.size).toBe(blobs.length);
      for (const data of blobs) expect(received.get(sha256(data))?.equals(data)).toBe(true);
      expect(store.bytesAdded).toBe(7 * 3_000);
    } finally {
      single.unsubscribe();
    }
  });
});

describe('an agent whose NATS permissions predate store-blobs and load-trees', () => {
  // Its identity may publish only the operations of before: the requests are refused by the
  // server, and the agent goes blob by blob, as with a gateway that does not know them.
  let server: NatsServer;
  let agentNc: NatsConnection;
  let backend: Backend;
  let gw: TestGateway;
  const old = ['repository-info', 'missing-blobs', 'store-blob', 'flush', 'load-blob', 'load-blobs'];

  beforeAll(async () => {
    const dir = join(scratch, 'old-permissions');
    await mkdir(dir, { recursive: true });
    const allow = old.map((op) => JSON.stringify(dataSubject(TEST_AGENT, op)));
    const configFile = join(dir, 'nats.conf');
    await writeFile(
      configFile,
      [
        `jetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }`,
        'max_payload: 16777216',
        'no_auth_user: gateway',
        'authorization {',
        '  users: [',
        '    { user: gateway, password: gateway-test-pass }',
        `    { user: old-agent, password: old-agent-pass, permissions: { publish: { allow: [${allow.join(', ')}] }, subscribe: { allow: ["_INBOX.>"] } } }`,
        '  ]',
        '}',
      ].join('\n'),
    );
    server = await startNatsServer({ dataDir: dir, configFile });
    backend = openBackend(join(dir, 'repo'));
    await initRepository(backend);
    gw = await startTestGateway(server.url, {
      backend,
      gatewayId: 'gw-old-permissions',
      idleFlushMs: 60_000,
    });
    agentNc = await connectNats({
      servers: server.url,
      name: 'old-agent',
      user: 'old-agent',
      pass: 'old-agent-pass',
      connectTimeoutMs: 5_000,
    });
  });

  afterAll(async () => {
    await agentNc?.close();
    await gw?.stop();
    await backend?.close();
    await server?.destroy();
  });

  it('is told NOT_PERMITTED at once, and backs up blob by blob', async () => {
    const refusals: string[] = [];
    const client = new DataPathClient(agentNc, {
      requester: TEST_AGENT,
      sessionId: 'backup-old-permissions',
      onNotPermitted: (error) => refusals.push(error.message),
    });
    const blobs = Array.from({ length: 5 }, () => randomContent(3_000));
    const refused = await failure(client.storeBlobs('data', [{ id: sha256(blobs[0]!), data: blobs[0]! }]));
    expect(refused.code).toBe(DataPathErrorCode.NotPermitted);
    expect(refused.message).toContain('volback init nats-config');
    expect((await failure(client.loadTrees(sha256(Buffer.from('a tree'))))).code).toBe(
      DataPathErrorCode.NotPermitted,
    );

    const store = await GatewayBlobStore.open(client);
    for (const data of blobs) await store.saveBlob('data', data, sha256(data));
    await store.drain();
    expect(store.bytesAdded).toBe(5 * 3_000);
    await client.flush();
    const refs = blobs.map((data) => ({ type: 'data' as const, id: sha256(data) }));
    expect(await client.missingBlobs(refs)).toEqual([]);
    // Told, so that an agent can say what to run: the subject and the command.
    expect(refusals.length).toBeGreaterThanOrEqual(3);
    expect(refusals[0]).toContain(dataSubject(TEST_AGENT, 'store-blobs'));
    expect(refusals.every((message) => message.includes('volback init nats-config'))).toBe(true);
  });
});
