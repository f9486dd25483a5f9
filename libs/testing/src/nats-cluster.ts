import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@volback/process';
import { isAlive } from './processes.ts';

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** How many nodes (default 3: the smallest cluster that keeps R3 streams through one loss). */
  readonly size?: number;
  readonly name?: string;
}

/**
 * A JetStream cluster of nats-server processes on loopback: each node has its own client, route
 * and monitoring ports and its own store, so a node killed and started again comes back as itself.
 */
export interface NatsCluster {
  /** The running server of each node (a killed node keeps its last entry until restarted). */
  readonly nodes: readonly NatsServer[];
  /** The client URL of every node, as `VOLBACK_NATS_URL` takes them (comma-separated). */
  readonly url: string;
  readonly urls: readonly string[];
  /** kill -9 of node `index`: no shutdown, no goodbye to its peers. */
  kill(index: number): Promise<void>;
  /** Stops node `index` gracefully (SIGTERM, then what its shutdown does). */
  stop(index: number): Promise<void>;
  /** Starts node `index` again on its ports and store; resolves once it is healthy. */
  restart(index: number): Promise<NatsServer>;
  /**
   * Waits until every running node routes to all the others, JetStream has a meta leader, and
   * every node's `/healthz` passes (its streams and consumers current with their leaders).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Where the nodes keep their stores and logs (`n1/nats-server.log`…). */
  readonly dir: string;
  /** Stops every node and removes {@link dir}, unless `keepFiles` (to read the logs). */
  destroy(keepFiles?: boolean): Promise<void>;
}

interface Jsz {
  readonly meta_cluster?: { readonly leader?: string; readonly cluster_size?: number };
}
interface Routez {
  readonly routes?: readonly { readonly remote_name?: string }[];
}

async function monitor<T>(server: NatsServer, path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`${server.monitorUrl}${path}`);
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a NATS cluster (default three nodes) and waits until it is healthy. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const name = options.name ?? 'volback-test';
  const root = await mkdtemp(join(tmpdir(), 'volback-nats-cluster-'));
  const clientPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const names = clientPorts.map((_, i) => `n${i + 1}`);
  const start = (i: number) =>
    startNatsServer({
      dataDir: join(root, names[i]!),
      port: clientPorts[i]!,
      serverName: names[i]!,
      cluster: { name, routePort: routePorts[i]!, routePorts },
      // A node that comes back recovers its store and catches up with its peers first.
      readyTimeoutMs: 90_000,
    });
  // Together: a node's JetStream waits for its peers before it reports itself enabled.
  const started = await Promise.allSettled(names.map((_, i) => start(i)));
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (nodes.length < size) {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await rm(root, { recursive: true, force: true });
    const failure = started.find((result) => result.status === 'rejected')!;
    throw new Error('could not start the NATS cluster', { cause: failure.reason });
  }

  /** Indexes of the nodes whose process runs. */
  const running = async () => {
    const alive = await Promise.all(nodes.map((node) => isAlive(node.pid)));
    return nodes.flatMap((_, i) => (alive[i] ? [i] : []));
  };
  /** Whether node `i` routes to every other running node, knows a meta leader and is healthy. */
  const healthy = async (i: number, up: readonly number[]) => {
    const node = nodes[i]!;
    const peers = new Set((await monitor<Routez>(node, '/routez'))?.routes?.map((r) => r.remote_name));
    if (up.some((j) => j !== i && !peers.has(names[j]))) return false;
    if (!(await monitor<Jsz>(node, '/jsz'))?.meta_cluster?.leader) return false;
    return (await fetch(`${node.monitorUrl}/healthz`).catch(() => undefined))?.ok === true;
  };
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((node) => node.url),
    url: nodes.map((node) => node.url).join(','),
    async kill(index) {
      const node = nodes[index]!;
      try {
        process.kill(node.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await node.exited;
    },
    async stop(index) {
      await nodes[index]!.stop();
    },
    async restart(index) {
      await nodes[index]!.stop();
      nodes[index] = await start(index);
      await cluster.waitHealthy();
      return nodes[index];
    },
    async waitHealthy(timeoutMs = 60_000) {
      await waitFor(
        `the NATS cluster ${name} to be healthy (logs under ${root})`,
        async () => {
          const up = await running();
          return (await Promise.all(up.map((i) => healthy(i, up)))).every(Boolean);
        },
        timeoutMs,
      );
    },
    dir: root,
    async destroy(keepFiles = false) {
      await Promise.allSettled(nodes.map((node) => node.stop()));
      if (!keepFiles) await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}
