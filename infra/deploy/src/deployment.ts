// Test support for the deployment files: stand-in base images on private engines, a staged copy
// of the project as a user checks it out, `docker compose` (the v5 plugin from the cache) against
// one engine, and the loopback overrides that keep every container on the host's loopback.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir, resolveBinary } from '@volback/process';

/**
 * A Docker Engine as these helpers reach it: its socket (`DOCKER_HOST`) and a folder of its own
 * (the CLI's config goes there). The test harness's private engines are such engines.
 */
export interface DockerEngine {
  readonly dockerHost: string;
  readonly rootDir: string;
}

const run = promisify(execFile);

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The docker command line (Debian's docker.io, or one on PATH). */
export const DOCKER_CLI = { name: 'docker', envVar: 'DOCKER_CLI_BIN' } as const;
/** Compose v5, built by `scripts/install-servers.sh compose`. */
export const COMPOSE = { name: 'docker-compose', envVar: 'COMPOSE_BIN' } as const;

/**
 * The stand-in of each upstream image (a tarball of `scripts/build-stand-in-images.sh` in the
 * cache) by the image name the Dockerfile and compose files use.
 */
export const STAND_INS: Readonly<Record<string, string>> = {
  'debian:bookworm-slim': 'debian-bookworm-slim',
  'node:24-bookworm-slim': 'node-24-bookworm-slim',
  'node:24-bookworm': 'node-24-bookworm',
  'nats:2.12-alpine': 'nats-alpine',
  'minio/minio:RELEASE.2025-09-07T16-13-09Z': 'minio',
};

/** Imports the stand-ins of `images` into `engine` under those names (`docker import` with the upstream settings). */
export async function importStandIns(engine: DockerEngine, images: readonly string[]): Promise<void> {
  const dir = join(cacheDir(), 'images');
  for (const image of images) {
    const file = STAND_INS[image];
    if (!file)
      throw new Error(`no stand-in for the image ${image}: add one to scripts/build-stand-in-images.sh`);
    const tarball = join(dir, `${file}.tar`);
    if (!existsSync(tarball)) {
      throw new Error(`${tarball} is missing: run \`sh scripts/install-servers.sh images\``);
    }
    const changes = (await readFile(join(dir, `${file}.changes`), 'utf8')).split('\n').filter(Boolean);
    await docker(engine, ['import', ...changes.flatMap((c) => ['--change', c]), tarball, image]);
  }
}

/** Runs the docker CLI against `engine`; returns stdout. */
export async function docker(engine: DockerEngine, args: readonly string[]): Promise<string> {
  const { stdout } = await run(resolveBinary(DOCKER_CLI), [...args], {
    env: cliEnv(engine, ''),
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Copies `image` from one engine to another (`docker save | docker load`), as a host without a registry gets it. */
export async function copyImage(from: DockerEngine, to: DockerEngine, image: string): Promise<void> {
  const cli = resolveBinary(DOCKER_CLI);
  const save = spawn(cli, ['save', image], { env: cliEnv(from, ''), stdio: ['ignore', 'pipe', 'inherit'] });
  const load = spawn(cli, ['load', '-q'], { env: cliEnv(to, ''), stdio: ['pipe', 'ignore', 'inherit'] });
  save.stdout.pipe(load.stdin);
  const codes = await Promise.all(
    [save, load].map((p) => new Promise<number | null>((resolve) => p.once('exit', resolve))),
  );
  if (codes.some((c) => c !== 0)) throw new Error(`docker save | docker load of ${image} failed: ${codes}`);
}

function cliEnv(engine: DockerEngine, dockerConfig: string): NodeJS.ProcessEnv {
  // A clean environment: compose reads variables of its own environment before `.env`.
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/root',
    DOCKER_HOST: engine.dockerHost,
    // The legacy builder: no buildx plugin here; it builds offline (`build.network: none`).
    DOCKER_BUILDKIT: '0',
    ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}),
  };
}

/** A copy of the project as a user has it (tracked and new files, nothing ignored), in a temp dir. */
export async function stageProject(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vb-deploy-'));
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  for (const file of new Set(stdout.split('\0').filter(Boolean))) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(join(ROOT, file), join(dir, file), { preserveTimestamps: true, verbatimSymlinks: true });
  }
  // The npm cache the Dockerfile installs from when the build has no network (README).
  await run('sh', [join(ROOT, 'scripts/npm-offline-cache.sh'), join(dir, '.npm-cache')], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return dir;
}

/** `docker compose` (the CLI plugin under a DOCKER_CONFIG of the test's own) for one engine. */
export class Compose {
  readonly #engine: DockerEngine;
  readonly #config: string;

  private constructor(engine: DockerEngine, config: string) {
    this.#engine = engine;
    this.#config = config;
  }

  static async for(engine: DockerEngine): Promise<Compose> {
    const config = join(engine.rootDir, 'docker-config');
    await mkdir(join(config, 'cli-plugins'), { recursive: true });
    await symlink(resolveBinary(COMPOSE), join(config, 'cli-plugins', 'docker-compose')).catch(
      () => undefined,
    );
    return new Compose(engine, config);
  }

  /**
   * Runs `docker compose <args>` in `cwd`; resolves with its standard output (compose's progress
   * goes to standard error), rejects with both on failure.
   */
  async run(cwd: string, args: readonly string[], timeoutMs = 600_000): Promise<string> {
    const child = spawn(resolveBinary(DOCKER_CLI), ['compose', ...args], {
      cwd,
      env: cliEnv(this.#engine, this.#config),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    if (code !== 0) {
      throw new Error(`docker compose ${args.join(' ')} exited ${code}:\n${output.slice(-8000)}`);
    }
    return stdout;
  }
}

/** Ports of the central stack on the host's loopback. */
export interface CentralPorts {
  nats: number;
  natsHttp: number;
  minio: number;
  minioConsole: number;
  catalog: number;
  ops: { gateway: number; scheduler: number; catalog: number; agent: number };
}

const hostNetwork = (extra = '') => `    network_mode: host\n    ports: !reset []\n${extra}`;
const volbackEnv = (lines: Record<string, string | number>) =>
  `    environment:\n${Object.entries(lines)
    .map(([k, v]) => `      ${k}: '${v}'`)
    .join('\n')}\n`;

/**
 * The override that puts the central stack on the host's loopback (these machines have no bridge
 * network): host networking with free ports, builds without a network. Everything else is the
 * real compose file (the certificates name 127.0.0.1 too, so TLS is checked as it is there).
 */
export function centralLoopbackOverride(p: CentralPorts): string {
  const nats = `nats://127.0.0.1:${p.nats}`;
  return `services:
  init:
${hostNetwork()}  nats:
${hostNetwork()}    command: ['nats-server', '--config', '/app/.volback/secrets/nats/nats-server.conf', '--http_port', '${p.natsHttp}', '--pid', '/tmp/nats-server.pid', '--addr', '127.0.0.1', '--port', '${p.nats}']
    healthcheck:
      test: ['CMD', 'wget', '-qO-', 'http://127.0.0.1:${p.natsHttp}/healthz?js-enabled-only=true']
  minio:
${hostNetwork()}    command: ['server', '/data', '--address', '127.0.0.1:${p.minio}', '--console-address', '127.0.0.1:${p.minioConsole}', '--certs-dir', '/secrets/certs']
${volbackEnv({ MC_HOST_local: `https://127.0.0.1:${p.minio}` })}  storage-gateway:
${hostNetwork('    build: { network: none }\n')}${volbackEnv({
    VOLBACK_NATS_URL: nats,
    VOLBACK_REPOSITORY: `s3:https://127.0.0.1:${p.minio}/volback`,
    VOLBACK_OPS_HOST: '127.0.0.1',
    VOLBACK_OPS_PORT: p.ops.gateway,
  })}  scheduler:
${hostNetwork()}${volbackEnv({ VOLBACK_NATS_URL: nats, VOLBACK_OPS_HOST: '127.0.0.1', VOLBACK_OPS_PORT: p.ops.scheduler })}  catalog:
${hostNetwork()}${volbackEnv({
    VOLBACK_NATS_URL: nats,
    VOLBACK_CATALOG_HOST: '127.0.0.1',
    VOLBACK_CATALOG_PORT: p.catalog,
    VOLBACK_OPS_HOST: '127.0.0.1',
    VOLBACK_OPS_PORT: p.ops.catalog,
  })}  agent:
${hostNetwork()}${volbackEnv({ VOLBACK_NATS_URL: nats, VOLBACK_OPS_HOST: '127.0.0.1', VOLBACK_OPS_PORT: p.ops.agent })}`;
}

/** The same for `deploy/agent/compose.yml`: the agent on the host's network, its ops port free. */
export function agentLoopbackOverride(opsPort: number): string {
  return `services:
  agent:
${hostNetwork()}${volbackEnv({ VOLBACK_OPS_HOST: '127.0.0.1', VOLBACK_OPS_PORT: opsPort })}`;
}

/** Writes `.env` in `dir` from `.env.example` of the project with `values` set. */
export async function writeEnvFile(
  projectRoot: string,
  dir: string,
  values: Record<string, string>,
): Promise<void> {
  const example = await readFile(join(projectRoot, '.env.example'), 'utf8');
  const left = new Map(Object.entries(values));
  const lines = example.split('\n').map((line) => {
    const match = /^#?\s*([A-Z][A-Z0-9_]*)=/.exec(line);
    if (!match || !left.has(match[1]!)) return line;
    const value = left.get(match[1]!)!;
    left.delete(match[1]!);
    return `${match[1]}=${value}`;
  });
  for (const [key, value] of left) lines.push(`${key}=${value}`);
  await writeFile(join(dir, '.env'), lines.join('\n'));
}

/** Removes a staged project. */
export async function removeStaged(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
