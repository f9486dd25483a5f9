import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import {
  DATA_HEADERS,
  DATA_OPERATIONS,
  dataSubject,
  GATEWAY_QUEUE_GROUP,
  LOAD_BLOBS_MAX_IDS,
} from '@volback/contracts';
import {
  DataPathClient,
  type DataPathError,
  DataPathErrorCode,
  GatewayBlobStore,
  readError,
  REPLY_BUDGET_BYTES,
} from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import {
  dumpTree,
  openBackend,
  Repository,
  restoreTree,
  type Backend,
  type BlobSource,
} from '@volback/repository';
import { startNatsServer, waitFor, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSnapshot,
  countRequests,
  failure,
  initRepository,
  randomContent,
  serveLoadBlob,
  startTestGateway,
  TEST_PASSWORD,
  startStandIn,
  TEST_READER,
  type StandIn,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

/** Everything a generator yields, and what it threw after. */
async function drain(blobs: AsyncIterable<Buffer>): Promise<{ yielded: Buffer[]; error?: DataPathError }> {
  const yielded: Buffer[] = [];
  try {
    for await (const blob of blobs) yielded.push(Buffer.from(blob));
    return { yielded };
  } catch (error) {
    return { yielded, error: error as DataPathError };
  }
}

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;
let backend: Backend;
let gw: TestGateway;

beforeAll(async () => {
  // A server of our own (max_payload 16 MiB, as every volback server): the queue group is fixed.
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'load-blobs-int-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-load-blobs-'));
  backend = openBackend(join(scratch, 'repo'));
  await initRepository(backend);
  gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-load-blobs', idleFlushMs: 60_000 });
});

afterAll(async () => {
  await gw?.stop();
  await backend?.close();
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Stores blobs through the data path and writes them into a pack of their own. */
async function storePack(blobs: readonly Buffer[]): Promise<string[]> {
  const client = new DataPathClient(nc, {
    requester: TEST_READER,
    sessionId: `store-${randomBytes(4).toString('hex')}`,
  });
  for (const data of blobs) await client.storeBlob('data', sha256(data), data);
  await client.flush();
  return blobs.map(sha256);
}

describe('load-blobs between a client and a gateway', () => {
  let first: Buffer[];
  let second: Buffer[];
  let zero: Buffer;

  beforeAll(async () => {
    first = Array.from({ length: 6 }, (_, i) => randomContent(20_000 + i * 37_000));
    zero = Buffer.alloc(64 * 1024);
    second = [...Array.from({ length: 5 }, (_, i) => randomContent(5_000 + i * 51_000)), zero];
    const before = await count(backend.list('data'));
    await storePack(first);
    await storePack(second);
    expect(await count(backend.list('data'))).toBe(before + 2);
  });

  it('answers a batch that spans packs, in the order asked, repeated ids included', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-spanning' });
    const wanted = [first[0]!, second[1]!, first[1]!, first[1]!, zero, zero, zero, second[4]!, first[5]!];
    const blobs = await client.loadBlobs('data', wanted.map(sha256));
    expect(blobs).toHaveLength(wanted.length);
    blobs.forEach((blob, i) => expect(blob.equals(wanted[i]!), `blob ${i}`).toBe(true));
  });

  it('a restore reads a file with few requests: 16 distinct blobs each, a sparse run of one blob in one', async () => {
    // A file of 11 distinct blobs, then 600 places of its zero blob, then the first blobs again.
    const content = [...first, ...second.slice(0, 5), ...Array<Buffer>(600).fill(zero), ...first];
    const store = await GatewayBlobStore.open(
      new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-file' }),
    );
    const batched = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs));
    const single = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlob));
    try {
      const { yielded, error } = await drain(store.loadBlobs('data', content.map(sha256)));
      expect(error).toBeUndefined();
      expect(yielded).toHaveLength(content.length);
      yielded.forEach((blob, i) => expect(blob.equals(content[i]!), `place ${i}`).toBe(true));
      await nc.flush();
      // 11 distinct + zero blob (245 places) | zero (256) | zero (99) + first 6: at most 256 places each.
      expect(batched.count).toBe(3);
      expect(single.count).toBe(0);
    } finally {
      batched.stop();
      single.stop();
    }
  });

  it('ends the reply with the blobs before a missing one; asked first, it is NOT_FOUND', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-missing' });
    const missing = sha256(Buffer.from('never stored'));
    const ids = [sha256(first[0]!), sha256(first[1]!), missing, sha256(first[2]!)];
    const prefix = await client.loadBlobs('data', ids);
    expect(prefix).toHaveLength(2);
    expect(prefix[1]!.equals(first[1]!)).toBe(true);
    const error = await failure(client.loadBlobs('data', ids.slice(2)));
    expect(error.code).toBe(DataPathErrorCode.NotFound);
    expect(error.message).toContain(missing);

    const store = await GatewayBlobStore.open(client);
    const { yielded, error: thrown } = await drain(store.loadBlobs('data', ids));
    expect(yielded.map(sha256)).toEqual(ids.slice(0, 2));
    expect(thrown?.code).toBe(DataPathErrorCode.NotFound);
  });

  it('asks for no more than one message carries; the client asks again for the rest', async () => {
    // Three 7 MiB blobs: two fit in a 16 MiB message, the third comes in the next reply.
    const large = Array.from({ length: 3 }, () => randomContent(7 * MiB));
    const ids = await storePack(large);
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-large' });
    const prefix = await client.loadBlobs('data', ids);
    expect(prefix).toHaveLength(2);
    expect(prefix[0]!.equals(large[0]!) && prefix[1]!.equals(large[1]!)).toBe(true);
    expect((await client.loadBlobs('data', ids.slice(2)))[0]!.equals(large[2]!)).toBe(true);

    const store = await GatewayBlobStore.open(client);
    const wanted = [...large, first[0]!, large[0]!];
    const batched = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs));
    try {
      const { yielded, error } = await drain(store.loadBlobs('data', wanted.map(sha256)));
      expect(error).toBeUndefined();
      expect(yielded).toHaveLength(wanted.length);
      yielded.forEach((blob, i) => expect(blob.equals(wanted[i]!), `place ${i}`).toBe(true));
      await nc.flush();
      expect(batched.count).toBe(2); // [l0 l1 | l2 f0 l0 asked too], then [l2 f0 l0]
    } finally {
      batched.stop();
    }
  });

  it("files read at once share the connection's reply budget, which all comes back, also when a reader stops early", async () => {
    const files = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const blobs = Array.from({ length: 6 }, () => randomContent(3 * MiB));
        await storePack(blobs);
        return blobs;
      }),
    );
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-at-once' });
    const budget = client.replyBudget;
    expect(budget.limit).toBe(REPLY_BUDGET_BYTES);
    expect(budget.used).toBe(0);
    const store = await GatewayBlobStore.open(client);
    let most = 0;
    await Promise.all(
      files.map(async (blobs) => {
        let i = 0;
        for await (const blob of store.loadBlobs('data', blobs.map(sha256))) {
          most = Math.max(most, budget.used);
          expect(blob.equals(blobs[i++]!)).toBe(true);
          await new Promise((resolve) => setTimeout(resolve, 5)); // a writer slower than the reads
        }
        expect(i).toBe(blobs.length);
      }),
    );
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(REPLY_BUDGET_BYTES);
    expect(budget.used).toBe(0);

    for await (const blob of store.loadBlobs('data', files[0]!.map(sha256))) {
      expect(blob.equals(files[0]![0]!)).toBe(true);
      break; // replies still on their way give their share back when they arrive
    }
    await waitFor('the budget to come back', async () => budget.used === 0);
  });

  it('reads the index again when a pack is gone (a prune since it was read), once', async () => {
    const blobs = Array.from({ length: 4 }, (_, i) => randomContent(30_000 + i * 1_000));
    const indexesBefore = await names(backend.list('index'));
    const packsBefore = await names(backend.list('data'));
    const ids = await storePack(blobs);
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'restore-after-prune' });
    expect(await client.loadBlobs('data', ids)).toHaveLength(4); // the gateway knows their pack
    const [oldPack] = [...(await names(backend.list('data')))].filter((n) => !packsBefore.has(n));
    const oldIndexes = [...(await names(backend.list('index')))].filter((n) => !indexesBefore.has(n));

    // Behind the gateway's back, as prune repacks: the blobs go into a new pack with an index
    // of its own, then the old pack and the index naming it are deleted.
    const repacker = await Repository.open(backend, TEST_PASSWORD); // no index read: stores them anew
    for (const data of blobs) await repacker.saveBlob('data', data, sha256(data));
    await repacker.flush();
    await repacker.close();
    for (const name of oldIndexes) await backend.remove({ type: 'index', name });
    await backend.remove({ type: 'data', name: oldPack! });

    const again = await client.loadBlobs('data', ids);
    expect(again).toHaveLength(4);
    again.forEach((blob, i) => expect(blob.equals(blobs[i]!), `blob ${i}`).toBe(true));
    // Gone for good: the index read again does not name it either.
    await backend.remove({
      type: 'data',
      name: [...(await names(backend.list('data')))].find((n) => !packsBefore.has(n))!,
    });
    const error = await failure(client.loadBlobs('data', ids));
    expect(error.code).toBe(DataPathErrorCode.NotFound);
  });

  it('answers malformed requests with BAD_REQUEST naming the field, and takes no lock', async () => {
    const request = async (body: unknown, headers?: MsgHdrs) => {
      const reply = await nc.request(
        dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs),
        new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)),
        { timeout: 5_000, ...(headers ? { headers } : {}) },
      );
      return readError(reply);
    };
    const id = sha256(first[0]!);
    // Earlier tests' restore sessions may still let their locks go meanwhile: none may be new.
    const locksBefore = await names(backend.list('locks'));
    const session = natsHeaders();
    session.set(DATA_HEADERS.sessionId, 'restore-bad-input');
    const cases: Array<[unknown, string]> = [
      ['not json', 'JSON'],
      [{ type: 'data', ids: [] }, 'ids'],
      [{ type: 'data', ids: Array<string>(LOAD_BLOBS_MAX_IDS + 1).fill(id) }, 'ids'],
      [{ type: 'data', ids: [id, 'XYZ'] }, 'ids.1'],
      [{ type: 'blob', ids: [id] }, 'type'],
      [{ ids: [id] }, 'type'],
    ];
    for (const [body, field] of cases) {
      const error = await request(body, session);
      expect(error?.code, JSON.stringify(body).slice(0, 80)).toBe(DataPathErrorCode.BadRequest);
      expect(error?.message).toContain(field);
    }
    const badSession = natsHeaders();
    badSession.set(DATA_HEADERS.sessionId, 'two words');
    const refused = await request({ type: 'data', ids: [id] }, badSession);
    expect(refused?.code).toBe(DataPathErrorCode.BadRequest);
    expect(refused?.message).toContain(DATA_HEADERS.sessionId);
    expect((await request({ repositoryId: 'elsewhere', type: 'data', ids: [id] }, session))?.code).toBe(
      DataPathErrorCode.UnknownRepository,
    );
    const locksAfter = [...(await names(backend.list('locks')))];
    expect(locksAfter.filter((name) => !locksBefore.has(name))).toEqual([]);
    // The client refuses what the contract does not allow before sending anything.
    const client = new DataPathClient(nc, { requester: TEST_READER });
    expect((await failure(client.loadBlobs('data', []))).code).toBe(DataPathErrorCode.BadRequest);
    expect((await failure(client.loadBlobs('data', ['nope']))).code).toBe(DataPathErrorCode.BadRequest);
  });
});

async function count(items: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of items) n++;
  return n;
}

async function names(files: AsyncIterable<{ name: string }>): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const { name } of files) found.add(name);
  return found;
}

describe('a tar of a snapshot through a gateway', () => {
  it('reads many small files a batch at a time, and carries every byte', async () => {
    const files = Object.fromEntries(
      Array.from({ length: 300 }, (_, i) => [
        `f${String(i).padStart(3, '0')}.bin`,
        randomContent(200 + i * 37),
      ]),
    );
    const snapshot = buildSnapshot('many-small', files);
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'store-many-small' });
    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
    await client.flush();

    const batched = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs));
    const into = await mkdtemp(join(scratch, 'tar-'));
    try {
      const store = await GatewayBlobStore.open(new DataPathClient(nc, { requester: TEST_READER }));
      const tar = spawn('tar', ['-x', '-C', into], { stdio: ['pipe', 'ignore', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
      await pipeline(await dumpTree(store, snapshot.tree, '/'), tar.stdin);
      expect(await exited).toBe(0);
      // 300 files of one directory: 128 to a batch, each batch one request.
      expect(batched.count).toBeLessThanOrEqual(Math.ceil(300 / 128) + 1);
    } finally {
      batched.stop();
    }
    const dir = join(into, ...snapshot.paths[0]!.split('/').filter(Boolean));
    for (const [name, content] of Object.entries(files))
      expect((await readFile(join(dir, name))).equals(content), name).toBe(true);
  });
});

describe('a restore through a gateway', () => {
  it('frees each reply once its blobs are written the last time, and restores blobs repeated across and within files whole', async () => {
    // 300 small files of their own content (about 5 MiB: replies of MiBs), the same small content
    // twice side by side, again about 300 files further (another reply) and at the end, a large
    // file whose chunks repeat (zeros) and a small file equal to one of its chunks.
    const CHUNK = 256 * 1024;
    const shared = randomContent(9_000);
    const large = Buffer.concat([randomContent(CHUNK), Buffer.alloc(3 * CHUNK), randomContent(CHUNK / 2)]);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 300; i++) {
      const name = `f${String(i).padStart(3, '0')}`;
      files[`${name}.bin`] = [0, 1, 299].includes(i) ? shared : randomContent(12_000 + i * 23);
    }
    files['g-large.bin'] = large;
    files['h-chunk.bin'] = large.subarray(0, CHUNK); // a small file: one blob, also the large file's first
    files['i-shared.bin'] = shared;
    const snapshot = buildSnapshot('restore-release', files, CHUNK);
    const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'store-restore-release' });
    for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
    await client.flush();

    const store = await GatewayBlobStore.open(new DataPathClient(nc, { requester: TEST_READER }));
    // What each reply buffer held (by the blobs handed out), and how large it was.
    const replies = new Map<ArrayBufferLike, { bytes: number; ids: Set<string> }>();
    const source: BlobSource = {
      loadBlob: (type, id) => store.loadBlob(type, id),
      loadTree: (id) => store.loadTree(id),
      async *loadBlobs(type, ids, bytes) {
        let place = 0;
        for await (const blob of store.loadBlobs(type, ids, bytes)) {
          const reply = replies.get(blob.buffer) ?? { bytes: blob.buffer.byteLength, ids: new Set() };
          reply.ids.add(ids[place++]!);
          replies.set(blob.buffer, reply);
          yield blob;
        }
      },
    };
    const into = await mkdtemp(join(scratch, 'restore-release-'));
    const summary = await restoreTree(source, { tree: snapshot.tree, target: into });
    expect(summary.errors).toEqual([]);
    for (const [name, content] of Object.entries(files)) {
      const restored = await readFile(join(into, 'volumes', 'restore-release', name));
      expect(restored.equals(content), name).toBe(true);
    }

    // Every reply of a MiB or more whose blobs occur once in the snapshot was freed; one holding
    // a blob the restore reads again elsewhere may be left to the collector, never freed early.
    const places = new Map<string, number>();
    for (const content of Object.values(files))
      for (let at = 0; at < content.length; at += CHUNK) {
        const id = sha256(content.subarray(at, at + CHUNK));
        places.set(id, (places.get(id) ?? 0) + 1);
      }
    const big = [...replies].filter(([, r]) => r.bytes >= MiB);
    const once = big.filter(([, r]) => [...r.ids].every((id) => places.get(id) === 1));
    expect(once.length).toBeGreaterThan(0);
    for (const [buffer] of once) expect((buffer as ArrayBuffer).detached).toBe(true);
  });
});

describe('load-blobs replies the client does not take, and gateways older than load-blobs', () => {
  // Stand-ins for a broken or an older gateway, on a NATS server of their own (no real gateway).
  let standIns: StandIn;
  let standIn: NatsConnection;
  let client: NatsConnection;
  const blobs = Array.from({ length: 5 }, (_, i) => randomContent(1_000 + i * 10_000));
  const byId = new Map(blobs.map((b) => [sha256(b), b]));
  const ids = blobs.map(sha256);

  beforeAll(async () => {
    standIns = await startStandIn(TEST_READER);
    ({ standIn, client } = standIns);
  });

  afterAll(async () => {
    await standIns?.stop();
  });

  /** Answers `load-blobs` with what `answer` makes of the ids asked for, until stopped. */
  async function brokenGateway(
    answer: (asked: string[]) => { lengths?: string; type?: string; body: Buffer },
  ) {
    const sub = standIn.subscribe(dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs), {
      queue: GATEWAY_QUEUE_GROUP,
    });
    void (async () => {
      for await (const msg of sub) {
        const asked = (JSON.parse(new TextDecoder().decode(msg.data)) as { ids: string[] }).ids;
        const reply = answer(asked);
        const h = natsHeaders();
        h.set(DATA_HEADERS.blobType, reply.type ?? 'data');
        if (reply.lengths !== undefined) h.set(DATA_HEADERS.blobLengths, reply.lengths);
        msg.respond(reply.body, { headers: h });
      }
    })();
    await standIn.flush(); // the server knows the subscription before a request is sent
    return {
      stop: async () => {
        sub.unsubscribe();
        await standIn.flush();
      },
    };
  }

  const honest = (asked: string[]) => {
    const parts = asked.map((id) => byId.get(id)!);
    return { lengths: parts.map((p) => p.length).join(','), body: Buffer.concat(parts) };
  };

  it('refuses lengths that are missing, malformed, too many or do not add up (BAD_REPLY), and damaged blobs (BLOB_CORRUPT)', async () => {
    const dataPath = new DataPathClient(client, { requester: TEST_READER, retries: 0, timeoutMs: 5_000 });
    const cases: Array<
      [string, (asked: string[]) => { lengths?: string; type?: string; body: Buffer }, string]
    > = [
      ['no lengths', (asked) => ({ body: honest(asked).body }), DataPathErrorCode.BadReply],
      ['not numbers', (asked) => ({ ...honest(asked), lengths: 'a,b' }), DataPathErrorCode.BadReply],
      [
        'one byte short',
        (asked) => ({ ...honest(asked), body: honest(asked).body.subarray(1) }),
        DataPathErrorCode.BadReply,
      ],
      ['more blobs than asked', (asked) => honest([...asked, asked[0]!]), DataPathErrorCode.BadReply],
      ['tree blobs', (asked) => ({ ...honest(asked), type: 'tree' }), DataPathErrorCode.BadReply],
      [
        'a flipped bit',
        (asked) => {
          const reply = honest(asked);
          reply.body[reply.body.length - 1]! ^= 1;
          return reply;
        },
        DataPathErrorCode.BlobCorrupt,
      ],
      ['another order', (asked) => honest([...asked].reverse()), DataPathErrorCode.BlobCorrupt],
    ];
    for (const [what, answer, code] of cases) {
      const gateway = await brokenGateway(answer);
      try {
        expect((await failure(dataPath.loadBlobs('data', ids))).code, what).toBe(code);
      } finally {
        await gateway.stop();
      }
    }
    // A restore passes on nothing of a damaged reply.
    const gateway = await brokenGateway((asked) => {
      const reply = honest(asked);
      reply.body[0]! ^= 1;
      return reply;
    });
    try {
      const store = await GatewayBlobStore.open(dataPath);
      const { yielded, error } = await drain(store.loadBlobs('data', ids));
      expect(yielded).toHaveLength(0);
      expect(error?.code).toBe(DataPathErrorCode.BlobCorrupt);
    } finally {
      await gateway.stop();
    }
  });

  it('reads blob by blob from gateways that do not know load-blobs', async () => {
    const single = await serveLoadBlob(standIn, TEST_READER, 'data', byId);
    try {
      const dataPath = new DataPathClient(client, { requester: TEST_READER, timeoutMs: 5_000 });
      const store = await GatewayBlobStore.open(dataPath);
      const wanted = [...ids, ids[0]!];
      const { yielded, error } = await drain(store.loadBlobs('data', wanted));
      expect(error).toBeUndefined();
      expect(yielded.map(sha256)).toEqual(wanted);
      expect(single.served).toBe(wanted.length);
      await waitFor('the reply budget to come back', async () => dataPath.replyBudget.used === 0);
    } finally {
      single.stop();
    }
  });
});
