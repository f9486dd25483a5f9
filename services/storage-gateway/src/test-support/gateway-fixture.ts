// Helpers for the gateway's integration tests: repositories, gateways in this process, snapshots
// built by hand, and the real restic as the verifier. Only tests import this file.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { NatsConnection } from '@nats-io/nats-core';
import { DATA_OPERATIONS, dataSubject, GATEWAY_QUEUE_GROUP, type DataRequester } from '@volback/contracts';
import { DataPathError, encodeBlobHeaders, encodeJson } from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { createLogger, type Logger } from '@volback/observability';
import {
  encodeTree,
  formatChunkerPolynomial,
  GoMode,
  randomIrreduciblePolynomial,
  Repository,
  type Backend,
  type TreeNode,
} from '@volback/repository';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { expect } from 'vitest';
import { startGateway, type Gateway, type GatewayOptions } from '../gateway.ts';

const run = promisify(execFile);

/** The agent the tests' data-path clients stand for (it names the requester in every subject). */
export const TEST_AGENT = { kind: 'host', hostId: 'docker-test-01' } as const satisfies DataRequester;
/**
 * A requester that reads any blob, as the catalog does: for tests of the read mechanics on blobs
 * stored without a snapshot (an agent may read only blobs of its host's snapshots).
 */
export const TEST_READER = { kind: 'catalog' } as const satisfies DataRequester;

/** The password of every test repository. */
export const TEST_PASSWORD = 'gateway-test-password-3b9f';

/** A quiet logger (set LOG_LEVEL=debug to see the gateways talk). */
export function testLogger(): Logger {
  return createLogger({
    service: 'storage-gateway-test',
    level: (process.env['LOG_LEVEL'] as 'debug') ?? 'silent',
    pretty: false,
  });
}

/** Creates an empty repository (format v2) at the backend. */
export async function initRepository(backend: Backend): Promise<void> {
  const repo = await Repository.init(backend, TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
  await repo.close();
}

/** A gateway with its own NATS connection (closing it is how a test kills the gateway). */
export interface TestGateway {
  readonly gateway: Gateway;
  readonly nc: NatsConnection;
  /** Graceful stop, then the connection closes. */
  stop(): Promise<void>;
  /** As a crash: open packs are lost, no answer to requests in hand. */
  kill(): Promise<void>;
}

/** Starts a gateway in this process on a connection of its own. */
export async function startTestGateway(
  natsUrl: string,
  options: Omit<GatewayOptions, 'nc' | 'logger' | 'password'> & { logger?: Logger },
): Promise<TestGateway> {
  const nc = await connectNats({
    servers: natsUrl,
    name: `test-${options.gatewayId}`,
    connectTimeoutMs: 5_000,
  });
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      logger: testLogger(),
      password: TEST_PASSWORD,
      maintenance: false,
      ...options,
      nc,
    });
  } catch (error) {
    await nc.close();
    throw error;
  }
  let done = false;
  return {
    gateway,
    nc,
    async stop() {
      if (done) return;
      done = true;
      await gateway.stop();
      await nc.drain();
    },
    async kill() {
      if (done) return;
      done = true;
      await gateway.abort();
      await nc.close();
    },
  };
}

/** A blob a test sends. */
export interface TestBlob {
  readonly type: 'data' | 'tree';
  readonly id: string;
  readonly data: Buffer;
}

/** A volume's snapshot built by hand, as the agent would send it. */
export interface TestSnapshot {
  /** Every blob, data first, then trees bottom-up (the root last). */
  readonly blobs: TestBlob[];
  readonly tree: string;
  readonly paths: string[];
  /** File name → content, as `restic ls` / `restic dump` show them under the volume path. */
  readonly files: Record<string, Buffer>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function dirNode(name: string, subtree: string, time: string): TreeNode {
  return {
    name,
    type: 'dir',
    mode: GoMode.Dir + 0o755,
    mtime: time,
    atime: time,
    ctime: time,
    uid: 0,
    gid: 0,
    subtree,
  };
}

/**
 * Builds the blobs of a snapshot of `/volumes/<volume>` holding these files, each cut into
 * chunks of `chunkSize` bytes, with restic's layout (the tree nests `/volumes/<volume>`).
 */
export function buildSnapshot(
  volume: string,
  files: Record<string, Buffer>,
  chunkSize = 256 * 1024,
): TestSnapshot {
  const time = '2025-03-14T03:00:00Z';
  const blobs: TestBlob[] = [];
  const seen = new Set<string>();
  const add = (type: 'data' | 'tree', data: Buffer): string => {
    const id = sha256(data);
    if (!seen.has(`${type}:${id}`)) {
      seen.add(`${type}:${id}`);
      blobs.push({ type, id, data });
    }
    return id;
  };
  const nodes: TreeNode[] = Object.entries(files).map(([name, content]) => {
    const chunks: string[] = [];
    for (let offset = 0; offset < content.length; offset += chunkSize)
      chunks.push(add('data', content.subarray(offset, offset + chunkSize)));
    return {
      name,
      type: 'file',
      mode: 0o644,
      mtime: time,
      atime: time,
      ctime: time,
      uid: 0,
      gid: 0,
      size: content.length,
      content: chunks,
    };
  });
  const volumeTree = add('tree', encodeTree(nodes));
  const volumesTree = add('tree', encodeTree([dirNode(volume, volumeTree, time)]));
  const root = add('tree', encodeTree([dirNode('volumes', volumesTree, time)]));
  return { blobs, tree: root, paths: [`/volumes/${volume}`], files };
}

/** Random content. */
export function randomContent(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Runs the real restic; resolves with stdout, rejects with stderr. */
export async function restic(
  repo: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<string> {
  try {
    const { stdout } = await run('restic', ['-r', repo, '--no-cache', ...args], {
      env: { ...process.env, RESTIC_PASSWORD: TEST_PASSWORD, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string; stdout?: string; code?: number };
    throw new Error(`restic ${args.join(' ')} failed (${e.code}): ${e.stderr ?? ''}${e.stdout ?? ''}`, {
      cause: error,
    });
  }
}

/** The data-path error a call failed with (the test fails when it did not). */
export async function failure(promise: Promise<unknown>): Promise<DataPathError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataPathError);
  return error as DataPathError;
}

/** Counts the requests sent on a subject (a plain subscriber sees them beside the gateways). */
export async function countRequests(
  nc: NatsConnection,
  subject: string,
): Promise<{ readonly count: number; stop(): void }> {
  let count = 0;
  const sub = nc.subscribe(subject, { callback: () => void count++ });
  await nc.flush(); // the server knows the subscription before a request is sent
  return {
    get count() {
      return count;
    },
    stop: () => sub.unsubscribe(),
  };
}

/**
 * A NATS server of its own with a stand-in for a broken or an older gateway: it answers
 * `repository-info` for `requester`, and the test subscribes `standIn` to what else it answers.
 */
export interface StandIn {
  readonly standIn: NatsConnection;
  /** The connection of the client under test. */
  readonly client: NatsConnection;
  stop(): Promise<void>;
}

export async function startStandIn(requester: DataRequester): Promise<StandIn> {
  const server: NatsServer = await startNatsServer();
  const standIn = await connectNats({
    servers: server.url,
    name: 'stand-in-gateway',
    connectTimeoutMs: 5_000,
  });
  const client = await connectNats({ servers: server.url, name: 'stand-in-client', connectTimeoutMs: 5_000 });
  const info = standIn.subscribe(dataSubject(requester, DATA_OPERATIONS.repositoryInfo), {
    queue: GATEWAY_QUEUE_GROUP,
  });
  void (async () => {
    for await (const msg of info)
      msg.respond(encodeJson({ repositoryId: 'default', version: 2, chunkerPolynomial: '3da3358b4dc173' }));
  })();
  await standIn.flush();
  return {
    standIn,
    client,
    async stop() {
      await client.close();
      await standIn.close();
      await server.destroy();
    },
  };
}

/**
 * Has a stand-in answer `load-blob` for `requester` from `blobs`, as a gateway older than the
 * batched reads does; `served` counts the blobs it sent.
 */
export async function serveLoadBlob(
  standIn: NatsConnection,
  requester: DataRequester,
  type: 'data' | 'tree',
  blobs: ReadonlyMap<string, Buffer>,
): Promise<{ readonly served: number; stop(): void }> {
  const sub = standIn.subscribe(dataSubject(requester, DATA_OPERATIONS.loadBlob), {
    queue: GATEWAY_QUEUE_GROUP,
  });
  let served = 0;
  void (async () => {
    for await (const msg of sub) {
      const { blob } = JSON.parse(new TextDecoder().decode(msg.data)) as { blob: { id: string } };
      served++;
      msg.respond(blobs.get(blob.id)!, { headers: encodeBlobHeaders({ type, id: blob.id }) });
    }
  })();
  await standIn.flush();
  return {
    get served() {
      return served;
    },
    stop: () => sub.unsubscribe(),
  };
}
