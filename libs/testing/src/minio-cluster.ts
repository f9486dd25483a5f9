import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, MINIO, resolveBinary, startProcess, waitFor, type ServerProcess } from '@volback/process';
import { minioEnvironment } from './minio-server.ts';
import { isAlive } from './processes.ts';

/** Options of {@link startMinioCluster}. */
export interface MinioClusterOptions {
  /** Server processes (default 4). */
  readonly nodes?: number;
  /** Drives per server (default 2): 4 × 2 = one erasure set of 8 drives, 4 of them parity. */
  readonly drivesPerNode?: number;
}

/**
 * A distributed MinIO on loopback: several server processes, each with its own port and drives
 * (folders), forming one erasure set. Any node serves the whole S3 API.
 */
export interface MinioCluster {
  /** `http://127.0.0.1:<port>` of each node. */
  readonly urls: readonly string[];
  readonly ports: readonly number[];
  /** The root user and password of every node, usable as an S3 access and secret key. */
  readonly accessKey: string;
  readonly secretKey: string;
  /** Where the nodes keep their drives and logs (`n1/minio.log`…). */
  readonly dir: string;
  /** kill -9 of node `index`. */
  kill(index: number): Promise<void>;
  /** Starts node `index` again on its port and drives; resolves once the cluster is healthy. */
  restart(index: number): Promise<void>;
  /**
   * Waits until every running node answers and has write quorum; with every node running, until
   * each reaches at least all but one of the others (so a write through one reads back through any).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes {@link dir}, unless `keepFiles`. */
  destroy(keepFiles?: boolean): Promise<void>;
}

/** A node exited while the cluster started: another process took its port in between. */
class PortTaken extends Error {}

/**
 * Starts a distributed MinIO (default 4 nodes × 2 drives) and waits until it is healthy. Every
 * node must know every port before it starts, so a port another process takes between
 * {@link freePort} and the node's bind (tests run in parallel) starts the whole cluster again on
 * new ports (at most 3 times).
 */
export async function startMinioCluster(options: MinioClusterOptions = {}): Promise<MinioCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt === 3) throw error;
    }
  }
}

async function startOnce(options: MinioClusterOptions): Promise<MinioCluster> {
  const count = options.nodes ?? 4;
  const drives = options.drivesPerNode ?? 2;
  const bin = resolveBinary(MINIO);
  const root = await mkdtemp(join(tmpdir(), 'volback-minio-cluster-'));
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const consolePorts = await Promise.all(Array.from({ length: count }, () => freePort()));
  const accessKey = `volback-${randomBytes(6).toString('hex')}`;
  const secretKey = randomBytes(24).toString('hex');
  const nodeDir = (i: number) => join(root, `n${i + 1}`);
  // Every node is given every drive of the set; it serves those at its own address.
  const endpoints = ports.flatMap((port, i) =>
    Array.from({ length: drives }, (_, d) => `http://127.0.0.1:${port}${join(nodeDir(i), `d${d + 1}`)}`),
  );
  for (let i = 0; i < count; i++) {
    for (let d = 0; d < drives; d++) await mkdir(join(nodeDir(i), `d${d + 1}`), { recursive: true });
    await mkdir(join(nodeDir(i), 'home'), { recursive: true });
  }
  const processes: ServerProcess[] = [];
  const start = (i: number): ServerProcess =>
    startProcess(
      bin,
      [
        'server',
        '--quiet',
        '--address',
        `127.0.0.1:${ports[i]}`,
        '--console-address',
        `127.0.0.1:${consolePorts[i]}`,
        ...endpoints,
      ],
      join(nodeDir(i), 'minio.log'),
      {
        ...minioEnvironment(join(nodeDir(i), 'home'), accessKey, secretKey),
        // In a container (a /.dockerenv) MinIO waits for every endpoint to resolve to a
        // non-loopback address; this names the node's own endpoints instead (outside a
        // container it tells them apart by port and ignores this).
        _MINIO_SERVER_LOCAL: `127.0.0.1:${ports[i]}`,
        // Drives that are folders of the root file system: refused in distributed mode otherwise.
        MINIO_CI_CD: 'on',
      },
    );
  for (let i = 0; i < count; i++) processes.push(start(i));

  const answers = async (url: string) => {
    try {
      return (await fetch(url)).ok;
    } catch {
      return false;
    }
  };
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  /**
   * Whether every running node answers healthy. Write quorum as a node sees it (5 of the default
   * set's 8 drives) can come before it reaches every peer: a write then lands on the drives its
   * node sees, and another node that sees other ones may not find it (NoSuchKey in a clean-clone
   * CI run, read right after a write with all nodes up). So with every node running each must pass
   * the maintenance probe instead: write quorum without its own drives, so at least 7 of the 8
   * seen. A write then reaches 7 drives and a read sees 7, at least 6 of them with the object
   * (read quorum 4).
   */
  const healthy = async (alive: readonly boolean[]) => {
    const probe = alive.every(Boolean) ? '/minio/health/cluster?maintenance=true' : '/minio/health/cluster';
    const up = urls.filter((_, i) => alive[i]);
    return (await Promise.all(up.map((url) => answers(`${url}${probe}`)))).every(Boolean);
  };
  const cluster: MinioCluster = {
    urls,
    ports,
    accessKey,
    secretKey,
    dir: root,
    async kill(index) {
      try {
        process.kill(processes[index]!.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await processes[index]!.exited;
      await processes[index]!.stop(0);
    },
    async restart(index) {
      await processes[index]!.stop();
      processes[index] = start(index);
      await cluster.waitHealthy();
    },
    async waitHealthy(timeoutMs = 90_000) {
      await waitFor(
        `the distributed MinIO to be healthy (logs under ${root})`,
        async () => healthy(await Promise.all(processes.map((p) => isAlive(p.pid)))),
        timeoutMs,
      );
    },
    async destroy(keepFiles = false) {
      await Promise.allSettled(processes.map((p) => p.stop()));
      if (!keepFiles) await rm(root, { recursive: true, force: true });
    },
  };
  try {
    // As waitHealthy, but a node that exits ends the wait at once (waitFor would retry past it).
    const deadline = Date.now() + 90_000;
    for (;;) {
      const alive = await Promise.all(processes.map((p) => isAlive(p.pid)));
      const gone = alive.indexOf(false);
      if (gone >= 0) {
        const log = await readFile(join(nodeDir(gone), 'minio.log'), 'utf8').catch(() => '');
        if (/port is already in use/i.test(log)) throw new PortTaken(`node ${gone + 1}: ${log.trim()}`);
        throw new Error(
          `MinIO node ${gone + 1} exited while starting (logs under ${root}): ${log.trim().slice(-2000)}`,
        );
      }
      if (await healthy(alive)) break;
      if (Date.now() > deadline)
        throw new Error(
          `timed out after 90000 ms waiting for the distributed MinIO to be healthy (logs under ${root})`,
        );
      await sleep(100);
    }
  } catch (error) {
    // A port taken: nothing worth keeping; anything else: the logs stay for the reader.
    await cluster.destroy(!(error instanceof PortTaken));
    throw error;
  }
  return cluster;
}
