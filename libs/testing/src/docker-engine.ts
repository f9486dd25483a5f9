import { connect } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import {
  CONTAINERD,
  DOCKERD,
  resolveBinary,
  startProcess,
  waitUntil,
  type ProcessExit,
  type ServerProcess,
} from '@volback/process';
import { importBusyboxImage } from './busybox-image.ts';
import { removeCgroup } from './cgroups.ts';
import { unmountAll } from './mounts.ts';
import { killAndWait, pidsMentioning } from './processes.ts';

/** Options of {@link startDockerEngine}. */
export interface DockerEngineOptions {
  /**
   * Graph driver of the engine. Defaults to `$VOLBACK_DOCKER_STORAGE_DRIVER`, else overlay2 where
   * the kernel and the file system under the temp dir allow it, else vfs.
   */
  readonly storageDriver?: string;
}

/** A private Docker Engine on a unix socket of its own, standing in for one Docker host. */
export interface DockerEngine extends ServerProcess {
  /** Path of the API socket. */
  readonly socketPath: string;
  /** `unix://<socketPath>`, as in `DOCKER_HOST`. */
  readonly dockerHost: string;
  /** A client connected to this engine. */
  readonly docker: Dockerode;
  /** The busybox image imported at start, `volback-test/busybox:latest`. */
  readonly image: string;
  readonly storageDriver: string;
  /** The temp dir that holds everything of this engine; removed by `stop()`. */
  readonly rootDir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** Parent cgroup of this engine's containers. */
  readonly cgroupParent: string;
  /** PID of the engine's own containerd. */
  readonly containerdPid: number;
}

/** Error raised when dockerd or its containerd does not come up; their logs stay in `rootDir`. */
export class DockerEngineStartError extends Error {
  override readonly name = 'DockerEngineStartError';
  readonly code = 'VOLBACK_DOCKER_ENGINE_START';
  readonly rootDir: string;

  constructor(message: string, rootDir: string, options?: ErrorOptions) {
    super(message, options);
    this.rootDir = rootDir;
  }
}

/** File systems an overlay upper directory cannot live on (statfs magic numbers). */
const NO_OVERLAY_UPPER = new Set([
  0x794c7630, // overlayfs
  0x61756673, // aufs
  0x6969, // nfs
  0x65735546, // fuse
  0xf15f, // ecryptfs
]);

/** overlay2 if the kernel has overlayfs and `dir` can hold upper layers, else vfs (slow, always works). */
async function probeStorageDriver(dir: string): Promise<string> {
  const filesystems = await readFile('/proc/filesystems', 'utf8');
  if (!/\toverlay$/m.test(filesystems)) return 'vfs';
  return NO_OVERLAY_UPPER.has((await statfs(dir)).type) ? 'vfs' : 'overlay2';
}

/** Unix socket paths are limited to 107 bytes, so everything lives in a short directory. */
async function shortTempDir(): Promise<string> {
  const base = tmpdir().length <= 40 ? tmpdir() : '/tmp';
  return mkdtemp(join(base, 'vbd-'));
}

async function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits for `ready`, failing at once with the log's name if the process exits first. */
async function waitForStart(what: string, proc: ServerProcess, ready: () => Promise<boolean>): Promise<void> {
  let exit: ProcessExit | undefined;
  void proc.exited.then((e) => (exit = e));
  await waitUntil(`${what} (log: ${proc.logFile})`, async () => exit !== undefined || (await ready()));
  if (exit)
    throw new Error(
      `${what} exited (code ${exit.code}, signal ${exit.signal}) before it was ready; see ${proc.logFile}`,
    );
}

/**
 * A containerd of the engine's own, with every path under `dir`. dockerd would otherwise share a
 * system containerd when one runs, and its managed one puts an `opt` directory under /opt.
 */
async function startContainerd(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<ServerProcess & { socket: string }> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'containerd.sock');
  const config = [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    // CRI would look for CNI networking; dockerd needs none of it.
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = ${JSON.stringify(socket)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    '',
  ].join('\n');
  const configFile = join(dir, 'containerd.toml');
  await writeFile(configFile, config);
  const proc = startProcess(
    resolveBinary(CONTAINERD),
    ['--config', configFile],
    join(dir, 'containerd.log'),
    env,
  );
  try {
    await waitForStart('containerd', proc, () => socketAnswers(socket));
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return { ...proc, socket };
}

/** Everything dockerd may touch stays under `rootDir`; nothing touches the host's networking. */
function dockerdArgs(
  rootDir: string,
  containerdSocket: string,
  driver: string,
  cgroupParent: string,
): string[] {
  return [
    ['--config-file', join(rootDir, 'daemon.json')],
    ['--host', `unix://${join(rootDir, 'docker.sock')}`],
    ['--data-root', join(rootDir, 'data')],
    ['--exec-root', join(rootDir, 'exec')],
    ['--pidfile', join(rootDir, 'dockerd.pid')],
    ['--containerd', containerdSocket],
    ['--storage-driver', driver],
    ['--exec-opt', 'native.cgroupdriver=cgroupfs'],
    ['--cgroup-parent', `/${cgroupParent}`],
    ['--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--ip-forward=false'],
    ['--userland-proxy=false'],
    // Seconds a container gets to stop when the engine does; test containers hold nothing worth waiting for.
    ['--shutdown-timeout', '2'],
  ].flat();
}

async function killRunningContainers(docker: Dockerode): Promise<void> {
  const running = await docker.listContainers();
  await Promise.all(running.map((info) => docker.getContainer(info.Id).kill()));
}

/**
 * Kills whatever of the engine outlived it (containerd, shims, containers), unmounts what it left
 * mounted and removes its directory, so repeated runs leak neither mounts nor disk. After a failed
 * start the logs stay, for whoever reads the error.
 */
async function releaseEngine(rootDir: string, cgroupParent: string, keepLogs = false): Promise<void> {
  const stragglers = await pidsMentioning(`${rootDir}/`);
  if (stragglers.length > 0) await killAndWait(stragglers);
  await removeCgroup(cgroupParent);
  await unmountAll(rootDir);
  const doomed = keepLogs
    ? ['data', 'exec', 'containerd/root', 'containerd/state', 'containerd/opt'].map((d) => join(rootDir, d))
    : [rootDir];
  for (const dir of doomed) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Starts a private dockerd (with its own containerd) on a unix socket in a fresh temp dir, waits
 * until the API answers `_ping` and imports the busybox image. Several can run side by side.
 */
export async function startDockerEngine(options: DockerEngineOptions = {}): Promise<DockerEngine> {
  const dockerd = resolveBinary(DOCKERD);
  const rootDir = await shortTempDir();
  const cgroupParent = `volback-${basename(rootDir)}`;
  const socketPath = join(rootDir, 'docker.sock');
  // containerd, runc and the shims are looked up on PATH; prefer the ones beside dockerd.
  const env: NodeJS.ProcessEnv = {
    PATH: [dirname(dockerd), process.env['PATH'], '/usr/sbin', '/sbin'].filter(Boolean).join(':'),
    HOME: rootDir,
  };
  // daemon.json only moves the engine's identity key out of /etc/docker.
  await writeFile(
    join(rootDir, 'daemon.json'),
    JSON.stringify({ 'deprecated-key-path': join(rootDir, 'key.json') }),
  );
  const storageDriver =
    options.storageDriver ??
    process.env['VOLBACK_DOCKER_STORAGE_DRIVER'] ??
    (await probeStorageDriver(rootDir));
  let containerd: (ServerProcess & { socket: string }) | undefined;
  let engine: ServerProcess | undefined;
  try {
    containerd = await startContainerd(join(rootDir, 'containerd'), env);
    engine = startProcess(
      dockerd,
      dockerdArgs(rootDir, containerd.socket, storageDriver, cgroupParent),
      join(rootDir, 'dockerd.log'),
      env,
    );
    const docker = new Dockerode({ socketPath });
    await waitForStart('dockerd', engine, async () => (await docker.ping()).toString() === 'OK');
    const image = await importBusyboxImage(docker);
    const proc = engine;
    const containerdProc = containerd;
    return {
      pid: proc.pid,
      logFile: proc.logFile,
      exited: proc.exited,
      socketPath,
      dockerHost: `unix://${socketPath}`,
      docker,
      image,
      storageDriver,
      rootDir,
      dataRoot: join(rootDir, 'data'),
      execRoot: join(rootDir, 'exec'),
      cgroupParent,
      containerdPid: containerdProc.pid,
      async stop(graceMs = 20_000) {
        // dockerd would give each running container its own stop timeout (10 s by default) first.
        await killRunningContainers(docker).catch(() => undefined);
        await proc.stop(graceMs);
        await containerdProc.stop(graceMs);
        await releaseEngine(rootDir, cgroupParent);
      },
    };
  } catch (error) {
    await engine?.stop();
    await containerd?.stop();
    await releaseEngine(rootDir, cgroupParent, true).catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new DockerEngineStartError(`could not start a Docker Engine in ${rootDir}: ${reason}`, rootDir, {
      cause: error,
    });
  }
}
