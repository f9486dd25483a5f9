// A distributed MinIO of four processes (one erasure set of 8 drives): an object written while
// all run reads back through any node, and one node killed (2 drives gone) loses neither reads
// nor writes.
import { Client } from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMinioCluster, type MinioCluster } from './minio-cluster.ts';
import { waitUntil } from '@volback/process';

let cluster: MinioCluster;
const client = (i: number) =>
  new Client({
    endPoint: '127.0.0.1',
    port: cluster.ports[i]!,
    useSSL: false,
    accessKey: cluster.accessKey,
    secretKey: cluster.secretKey,
  });
const read = async (i: number, bucket: string, key: string) => {
  const chunks: Buffer[] = [];
  for await (const chunk of await client(i).getObject(bucket, key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
};

/** A write of `text` as `key` through node `i`: true once it succeeded. */
const writes = (i: number, key: string, text: string) => () =>
  client(i)
    .putObject('cluster-test', key, text)
    .then(() => true)
    .catch(() => false);

beforeAll(async () => {
  cluster = await startMinioCluster();
}, 120_000);
afterAll(() => cluster?.destroy());

describe('distributed MinIO harness', () => {
  it('serves one erasure set through every node, and survives losing one', async () => {
    await client(0).makeBucket('cluster-test');
    // Healthy (write quorum) can come before a node has loaded what it needs to take requests: a
    // first write through another node met 503 in a clean-clone CI run. It must succeed within
    // seconds, as a client retries.
    await waitUntil(
      'a write through node 1 with all nodes up',
      writes(1, 'before', 'written with all nodes up'),
      30_000,
    );
    for (const i of [0, 1, 2, 3])
      expect(await read(i, 'cluster-test', 'before')).toBe('written with all nodes up');

    await cluster.kill(3);
    // Right after the kill a read may answer NoSuchKey, and a write 503, while the others find out
    // that node 3 is gone (clean-clone CI runs met both); both must succeed again within seconds,
    // as a client retries.
    await waitUntil(
      'a read with node 3 down',
      async () => (await read(0, 'cluster-test', 'before').catch(() => '')) === 'written with all nodes up',
      30_000,
    );
    await waitUntil('a write with node 3 down', writes(1, 'during', 'written with a node down'), 30_000);
    expect(await read(2, 'cluster-test', 'during')).toBe('written with a node down');

    // Healthy (write quorum as node 3 sees it) can come before node 3 reaches every peer's drives:
    // until then it may not find an object its own drives lack. It must serve it once it has.
    await cluster.restart(3);
    await waitUntil(
      'the restarted node to serve what was written while it was down',
      async () => (await read(3, 'cluster-test', 'during').catch(() => '')) === 'written with a node down',
      30_000,
    );
  }, 180_000);
});
