import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_SERVER, resolveBinary } from './binaries.ts';
import { freePort, startProcess, waitUntil, type ServerProcess } from './processes.ts';

/**
 * The largest message the servers we start accept: restic chunks reach 8 MiB, so the data path
 * needs more than NATS's default 1 MB (see libs/messaging/README.md).
 */
export const NATS_MAX_PAYLOAD = 16 * 1024 * 1024;

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Data directory (JetStream store, config, log); a fresh temporary one when omitted. */
  readonly dataDir?: string;
  /** Client port on 127.0.0.1; a free random one when omitted. */
  readonly port?: number;
  readonly serverName?: string;
  /**
   * Runs the server in a process group of its own, so that a Ctrl-C meant for the process that
   * started it does not stop it before that process has stopped its clients (the local stack).
   */
  readonly ownProcessGroup?: boolean;
  /**
   * A server configuration to run (e.g. the one `volback init` writes: TLS, nkey users), with
   * this harness's address, port and monitoring port given as flags, which override it. The
   * server name and JetStream store are the configuration's (`dataDir` holds only the log; a
   * name given as a flag would make every reload fail); its `pid_file` lets `volback init` reload
   * the server.
   */
  readonly configFile?: string;
  /** How long to wait for JetStream to answer its health check (default 30 s). */
  readonly readyTimeoutMs?: number;
  /** Makes the server a node of a cluster (with its own JetStream store and a `serverName`). */
  readonly cluster?: NatsClusterRoutes;
}

/** A cluster node's routes, all on loopback and in plain text (a test cluster). */
export interface NatsClusterRoutes {
  readonly name: string;
  /** The port this node listens on for routes. */
  readonly routePort: number;
  /** The route ports of every node, this one included (NATS ignores a route to itself). */
  readonly routePorts: readonly number[];
}

/** A running NATS server with JetStream, on loopback. */
export interface NatsServer extends ServerProcess {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` of the monitoring endpoint. */
  readonly monitorUrl: string;
  readonly dataDir: string;
  /** Stops the server and deletes its data directory when the harness created it. */
  destroy(): Promise<void>;
}

/** Starts nats-server with JetStream on loopback and waits until JetStream answers its health check. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = resolveBinary(NATS_SERVER);
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'volback-nats-')));
  await mkdir(join(dataDir, 'jetstream'), { recursive: true });
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const config = [
    `server_name: ${JSON.stringify(options.serverName ?? `volback-${port}`)}`,
    `listen: "127.0.0.1:${port}"`,
    `http: "127.0.0.1:${monitorPort}"`,
    `max_payload: ${NATS_MAX_PAYLOAD}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(join(dataDir, 'jetstream'))}`,
    `  max_memory_store: 268435456`,
    `}`,
    ...(options.cluster
      ? [
          'cluster {',
          `  name: ${JSON.stringify(options.cluster.name)}`,
          `  listen: "127.0.0.1:${options.cluster.routePort}"`,
          `  routes: [${options.cluster.routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ')}]`,
          '}',
        ]
      : []),
    '',
  ].join('\n');
  let args: string[];
  if (options.configFile) {
    args = ['-c', options.configFile, '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)];
  } else {
    const configFile = join(dataDir, 'nats-server.conf');
    await writeFile(configFile, config);
    args = ['-c', configFile];
  }
  const proc = startProcess(bin, args, join(dataDir, 'nats-server.log'), process.env, {
    ownProcessGroup: options.ownProcessGroup ?? false,
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  try {
    await waitUntil(
      `nats-server on port ${port} (log: ${proc.logFile})`,
      async () => {
        const res = await fetch(`${monitorUrl}/healthz?js-enabled-only=true`);
        return res.ok;
      },
      options.readyTimeoutMs,
    );
  } catch (error) {
    await proc.stop();
    throw error;
  }
  const created = options.dataDir === undefined;
  return {
    ...proc,
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl,
    dataDir,
    async destroy() {
      await proc.stop();
      if (created) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
