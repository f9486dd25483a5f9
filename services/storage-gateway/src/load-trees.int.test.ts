import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { DATA_OPERATIONS, dataSubject } from '@volback/contracts';
import { DataPathClient, DataPathErrorCode, GatewayBlobStore, readError } from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { encodeTree, openBackend, type Backend, type TreeNode } from '@volback/repository';
import { startNatsServer, waitFor, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countRequests,
  failure,
  initRepository,
  serveLoadBlob,
  startStandIn,
  startTestGateway,
  TEST_READER,
  type StandIn,
  type TestGateway,
} from './test-support/gateway-fixture.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const time = '2025-03-14T03:00:00Z';

const dir = (name: string, subtree: string): TreeNode => ({
  name,
  type: 'dir',
  mode: 0o755,
  mtime: time,
  atime: time,
  ctime: time,
  uid: 0,
  gid: 0,
  subtree,
});
const file = (name: string): TreeNode => ({
  name,
  type: 'file',
  mode: 0o644,
  mtime: time,
  atime: time,
  ctime: time,
  uid: 0,
  gid: 0,
  size: 0,
  content: [],
});

/** Trees by id, and the root: `levels` deep, `fanOut` directories each, one shared empty directory below every leaf. */
function treeOf(levels: number, fanOut: number): { root: string; trees: Map<string, Buffer> } {
  const trees = new Map<string, Buffer>();
  const add = (nodes: TreeNode[]) => {
    const bytes = encodeTree(nodes);
    trees.set(sha256(bytes), bytes);
    return sha256(bytes);
  };
  const empty = add([]);
  const build = (level: number, name: string): string =>
    level === levels
      ? add([file(`${name}.txt`), dir('empty', empty)])
      : add(Array.from({ length: fanOut }, (_, i) => dir(`${name}-${i}`, build(level + 1, `${name}-${i}`))));
  return { root: build(0, 'd'), trees };
}

/** The ids of the trees below `root`, breadth first, each once. */
function breadthFirst(root: string, trees: Map<string, Buffer>): string[] {
  const order = [root];
  for (let i = 0; i < order.length; i++) {
    const nodes = JSON.parse(trees.get(order[i]!)!.toString()) as { nodes: TreeNode[] };
    for (const node of nodes.nodes)
      if (node.type === 'dir' && node.subtree && !order.includes(node.subtree)) order.push(node.subtree);
  }
  return order;
}

let nats: NatsServer;
let nc: NatsConnection;
let scratch: string;
let backend: Backend;
let gw: TestGateway;
const { root, trees } = treeOf(3, 4); // 1 + 4 + 16 + 64 trees and the shared empty one

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'load-trees-int-test', connectTimeoutMs: 5_000 });
  scratch = await mkdtemp(join(tmpdir(), 'volback-load-trees-'));
  backend = openBackend(join(scratch, 'repo'));
  await initRepository(backend);
  gw = await startTestGateway(nats.url, { backend, gatewayId: 'gw-load-trees', idleFlushMs: 60_000 });
  const client = new DataPathClient(nc, { requester: TEST_READER, sessionId: 'store-trees' });
  for (const [id, bytes] of trees) await client.storeBlob('tree', id, bytes);
  await client.flush();
});

afterAll(async () => {
  await gw?.stop();
  await backend?.close();
  await nc?.close();
  await nats?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('load-trees between a client and a gateway', () => {
  it('answers a tree and every tree below it, breadth first, each once', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER });
    const loaded = await client.loadTrees(root);
    expect(loaded.map((t) => t.id)).toEqual(breadthFirst(root, trees));
    expect(loaded).toHaveLength(1 + 4 + 16 + 64 + 1);
    for (const { id, data } of loaded) expect(data.equals(trees.get(id)!)).toBe(true);
    // A subtree is a root too.
    const sub = breadthFirst(root, trees)[3]!;
    expect((await client.loadTrees(sub)).map((t) => t.id)).toEqual(breadthFirst(sub, trees));
  });

  it('stops at maxBytes, but always answers the root', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER });
    const order = breadthFirst(root, trees);
    const firstFive = order.slice(0, 5).reduce((n, id) => n + trees.get(id)!.length, 0);
    expect((await client.loadTrees(root, firstFive + 5 * 12)).map((t) => t.id)).toEqual(order.slice(0, 5));
    expect((await client.loadTrees(root, 1)).map((t) => t.id)).toEqual([root]);
  });

  it('a walk of every tree takes one request through the store; with read-ahead off, one per tree', async () => {
    const walk = async (store: GatewayBlobStore) => {
      const seen: string[] = [];
      const visit = async (id: string): Promise<void> => {
        seen.push(id);
        for (const node of await store.loadTree(id)) if (node.type === 'dir') await visit(node.subtree!);
      };
      await visit(root);
      return seen;
    };
    const batched = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadTrees));
    const single = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlob));
    const many = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs));
    try {
      const client = new DataPathClient(nc, { requester: TEST_READER });
      const visited = await walk(await GatewayBlobStore.open(client));
      expect(visited).toHaveLength(1 + 4 + 16 + 64 * 2); // the empty tree below each leaf
      expect(batched.count).toBe(1);
      expect(single.count).toBe(0);
      await walk(await GatewayBlobStore.open(client, { treesAheadBytes: 0 }));
      expect(batched.count).toBe(1);
      expect(single.count).toBe(visited.length);
      expect(client.replyBudget.used).toBe(0);

      // A read-ahead of a few trees (2,000 bytes, 6,000 kept): the trees below each reply are asked
      // for ahead of the walk, many in one load-blobs request; the walk still reads every tree
      // once, in far fewer requests than trees.
      const small = await walk(await GatewayBlobStore.open(client, { treesAheadBytes: 2_000 }));
      expect(small).toEqual(visited);
      expect(single.count).toBe(visited.length);
      expect(many.count).toBeGreaterThan(0);
      expect(batched.count - 1 + many.count).toBeLessThan(visited.length / 4);
      await waitFor('the reply budget to come back', async () => client.replyBudget.used === 0);
    } finally {
      batched.stop();
      single.stop();
      many.stop();
    }
  });

  it("a walk of 3,200 directories with a small read-ahead reads every tree, in the walk's order, in few requests", async () => {
    // Eight directories of 400 each: more trees named at once than the store asks for in the
    // background (256 with 20,000 bytes of read-ahead); those left out are asked for once the walk
    // reads the directory naming them.
    const wide = new Map<string, Buffer>();
    const add = (nodes: TreeNode[]) => {
      const bytes = encodeTree(nodes);
      wide.set(sha256(bytes), bytes);
      return sha256(bytes);
    };
    const top = add(
      Array.from({ length: 8 }, (_, i) =>
        dir(`d${i}`, add(Array.from({ length: 400 }, (_, j) => dir(`e${j}`, add([file(`f${i}-${j}`)]))))),
      ),
    );
    const client = new DataPathClient(nc, { requester: TEST_READER });
    const ids = [...wide.keys()];
    for (let i = 0; i < ids.length; i += 200) {
      await client.storeBlobs(
        'tree',
        ids.slice(i, i + 200).map((id) => ({ id, data: wide.get(id)! })),
      );
    }
    await client.flush();
    const walk = async (store: GatewayBlobStore) => {
      const seen: string[] = [];
      const visit = async (id: string): Promise<void> => {
        const nodes = await store.loadTree(id);
        seen.push(`${id} ${nodes.map((n) => n.name).join(',')}`);
        for (const node of nodes) if (node.type === 'dir') await visit(node.subtree!);
      };
      await visit(top);
      return seen;
    };
    const expected: string[] = [];
    const visit = (id: string) => {
      const nodes = (JSON.parse(wide.get(id)!.toString()) as { nodes: TreeNode[] }).nodes;
      expected.push(`${id} ${nodes.map((n) => n.name).join(',')}`);
      for (const node of nodes) if (node.type === 'dir') visit(node.subtree!);
    };
    visit(top);
    expect(expected).toHaveLength(1 + 8 + 8 * 400);
    const batched = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadTrees));
    const many = await countRequests(nc, dataSubject(TEST_READER, DATA_OPERATIONS.loadBlobs));
    try {
      expect(await walk(await GatewayBlobStore.open(client, { treesAheadBytes: 20_000 }))).toEqual(expected);
      // The trees forgotten are asked for in the background once the walk reads the tree naming them.
      expect(batched.count + many.count).toBeLessThan(expected.length / 20);
      expect(await walk(await GatewayBlobStore.open(client))).toEqual(expected);
    } finally {
      batched.stop();
      many.stop();
    }
    await waitFor('the reply budget to come back', async () => client.replyBudget.used === 0);
  });

  it('answers an unknown root with NOT_FOUND and a malformed request with BAD_REQUEST', async () => {
    const client = new DataPathClient(nc, { requester: TEST_READER });
    expect((await failure(client.loadTrees(sha256(Buffer.from('no such tree'))))).code).toBe(
      DataPathErrorCode.NotFound,
    );
    expect((await failure(client.loadTrees('nope'))).code).toBe(DataPathErrorCode.BadRequest);
    for (const body of [
      'not json',
      JSON.stringify({ root: 'xyz' }),
      JSON.stringify({ root, maxBytes: -1 }),
    ]) {
      const reply = await nc.request(dataSubject(TEST_READER, DATA_OPERATIONS.loadTrees), body, {
        timeout: 5_000,
        headers: natsHeaders(),
      });
      expect(readError(reply)?.code, body).toBe(DataPathErrorCode.BadRequest);
    }
  });
});

describe('gateways older than load-trees', () => {
  let standIns: StandIn;

  beforeAll(async () => {
    standIns = await startStandIn(TEST_READER);
  });

  afterAll(async () => {
    await standIns?.stop();
  });

  it('reads tree by tree from gateways that do not know load-trees', async () => {
    const { standIn, client } = standIns;
    const single = await serveLoadBlob(standIn, TEST_READER, 'tree', trees);
    try {
      const store = await GatewayBlobStore.open(
        new DataPathClient(client as NatsConnection, { requester: TEST_READER, timeoutMs: 5_000 }),
      );
      const nodes = await store.loadTree(root);
      expect(nodes.map((n) => n.name)).toEqual(['d-0', 'd-1', 'd-2', 'd-3']);
      expect(single.served).toBe(1);
    } finally {
      single.stop();
    }
  });
});
