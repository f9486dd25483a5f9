// The directory of a deployment's secrets (SECURITY-PLAN §5): what `volback init` writes, and the
// later changes to it (a host added, a subscriber, a rotated or revoked agent), each ending in a
// rewrite of the NATS server configuration (one per node of a cluster) and, when a server's pid is
// known, a reload.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import {
  decodeSubjectToken,
  hostId as hostIdSchema,
  identityName,
  SERVICE_NAMES,
  type Identity,
} from '@volback/contracts';
import { checkServerName, createCertificateAuthority, createServerCertificate } from './certificates.ts';
import {
  DEFAULT_NATS_LISTEN,
  hostPort,
  NatsClusterError,
  nodeNames,
  parseNatsCluster,
  routeListen,
  type NatsCluster,
  type NatsNode,
} from './nats-cluster.ts';
import { renderNatsConfig, type NatsUser } from './nats-config.ts';
import { InitError } from './init-error.ts';

/** Paths inside a secrets directory. */
export function secretPaths(dir: string) {
  return {
    caCert: join(dir, 'ca/ca.crt'),
    caKey: join(dir, 'ca/ca.key'),
    natsCert: join(dir, 'tls/nats.crt'),
    natsKey: join(dir, 'tls/nats.key'),
    minioCert: join(dir, 'tls/minio.crt'),
    minioKey: join(dir, 'tls/minio.key'),
    natsConfig: join(dir, 'nats/nats-server.conf'),
    natsSettings: join(dir, 'nats/settings.json'),
    natsDir: join(dir, 'nats'),
    natsPidFile: join(dir, 'nats/nats-server.pid'),
    identities: join(dir, 'identities'),
    repositoryPassword: join(dir, 'repository-password'),
    minioRootPassword: join(dir, 'minio-root-password'),
    catalogTokens: join(dir, 'catalog/tokens.json'),
    adminToken: join(dir, 'catalog/admin.token'),
    readToken: join(dir, 'catalog/read.token'),
  };
}

/** The files of one node of a NATS cluster. */
export function natsNodePaths(dir: string, node: string) {
  return {
    config: join(dir, `nats/nats-server-${node}.conf`),
    cert: join(dir, `tls/nats-${node}.crt`),
    key: join(dir, `tls/nats-${node}.key`),
    pidFile: join(dir, `nats/nats-server-${node}.pid`),
  };
}

/** Where the NATS server listens and keeps its store (kept in `nats/settings.json`). */
interface NatsSettings {
  /** The single server's name (a cluster's nodes have theirs). */
  readonly serverName: string;
  readonly listen: string;
  /** The store; each node of a cluster keeps its own below it (`<storeDir>/<node>`). */
  readonly storeDir: string;
  /** Where the server sees this directory (a container's mount); absent: where it is. */
  readonly secretsPath?: string;
  /** Present for a cluster: its nodes replace the single server. */
  readonly cluster?: NatsCluster;
}

/** The agent identity file `agent-<hostId>.json`. */
export interface AgentIdentity {
  readonly hostId: string;
  readonly name: string;
}

/** Options of {@link initSecrets}. */
export interface InitOptions {
  readonly dir: string;
  readonly natsHosts?: readonly string[];
  readonly minioHosts?: readonly string[];
  /** Client address of NATS (default `0.0.0.0:4222`: TLS and nkeys guard it). */
  readonly natsListen?: string;
  /**
   * A cluster instead of one server: `NAME=HOST:PORT` per node (comma-separated or several), the
   * route address the other nodes dial. `natsNodeListen` then takes `NAME=HOST:PORT` for a node's
   * client address (else `natsListen` for each).
   */
  readonly natsCluster?: readonly string[];
  readonly natsNodeListen?: readonly string[];
  /** The cluster's name (default `volback`). */
  readonly natsClusterName?: string;
  /** JetStream store (default `<dir>/nats/jetstream`, beside the config). */
  readonly natsStoreDir?: string;
  /** The server's name (default `volback-nats`); JetStream keeps it in its store. */
  readonly natsServerName?: string;
  /**
   * Where the NATS server sees the secrets directory (e.g. `/etc/volback` in a container that
   * mounts it): the config names its certificate, key and pid file under that path.
   */
  readonly natsSecretsPath?: string;
  /** The repository password (else the one the directory holds, else a random one). */
  readonly password?: string;
  /** Replace an existing set-up (its repository password stays unless `password`). */
  readonly force?: boolean;
}

/** Writes `content` to `file` (0600) atomically: a reader sees the old file or the new one. */
async function writeSecret(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
  await rename(temp, file);
}

const randomSecret = (): string => randomBytes(32).toString('base64url');
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function newSeed(): string {
  return new TextDecoder().decode(createUser().getSeed());
}

function seedFile(dir: string, identity: Identity): string {
  return join(secretPaths(dir).identities, `${identityName(identity)}.nk`);
}

/** True when `dir` already holds a set-up. */
export function hasSetUp(dir: string): boolean {
  const paths = secretPaths(dir);
  return (
    existsSync(paths.natsConfig) ||
    existsSync(paths.natsSettings) ||
    existsSync(paths.caKey) ||
    existsSync(paths.identities)
  );
}

/**
 * Writes a new deployment's secrets into `dir`: CA and server certificates, an nkey per service
 * (and the admin), the NATS server config, the repository password, the MinIO root password and
 * the catalog's tokens. Refuses a directory that holds a set-up unless `force`.
 */
export async function initSecrets(options: InitOptions): Promise<string[]> {
  const dir = resolve(options.dir);
  for (const name of [...(options.natsHosts ?? []), ...(options.minioHosts ?? [])]) {
    try {
      checkServerName(name);
    } catch (error) {
      throw new InitError((error as Error).message);
    }
  }
  let cluster: NatsCluster | undefined;
  if (options.natsCluster?.length) {
    if (options.natsServerName !== undefined)
      throw new InitError(
        'a cluster names its nodes in --nats-cluster: --nats-server-name is for one server',
      );
    try {
      cluster = parseNatsCluster(
        options.natsCluster,
        [...(options.natsListen ? [options.natsListen] : []), ...(options.natsNodeListen ?? [])],
        options.natsClusterName,
      );
    } catch (error) {
      if (error instanceof NatsClusterError) throw new InitError(error.message, { cause: error });
      throw error;
    }
  } else if (options.natsNodeListen?.length || options.natsClusterName !== undefined) {
    throw new InitError('--nats-cluster-name and NAME=HOST:PORT in --nats-listen need --nats-cluster');
  }
  if (options.password !== undefined && options.password.trim() === '') {
    throw new InitError('VOLBACK_PASSWORD is set but empty');
  }
  if (hasSetUp(dir) && !options.force) {
    throw new InitError(
      `${dir} already holds a set-up; pass --force to replace it (every secret but the repository password changes)`,
    );
  }
  const paths = secretPaths(dir);
  // Never a new repository password for a repository that exists: without the old one no backup
  // could be read. `--force` keeps it unless VOLBACK_PASSWORD names another.
  const kept = existsSync(paths.repositoryPassword) ? await readText(paths.repositoryPassword) : '';
  const password = options.password ?? (kept || randomSecret());
  if (options.force) {
    await rm(paths.identities, { recursive: true, force: true });
    // A cluster's node files, or the single server's, that the new set-up would not rewrite.
    for (const folder of [paths.natsDir, dirname(paths.natsCert)]) {
      for (const entry of existsSync(folder) ? await readdir(folder) : []) {
        if (/^nats(-server)?(-[^.]+)?\.(conf|crt|key)$/.test(entry)) await rm(join(folder, entry));
      }
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);

  const ca = await createCertificateAuthority();
  const natsCertificates: [string, string][] = [];
  if (cluster) {
    for (const node of cluster.nodes) {
      // Each node's certificate proves it to clients and, both ways, to the nodes it routes with.
      const pair = await createServerCertificate(
        ca,
        node.name,
        [...nodeNames(node), ...(options.natsHosts ?? [])],
        { clientAuth: true },
      );
      const nodePaths = natsNodePaths(dir, node.name);
      natsCertificates.push([nodePaths.cert, pair.cert], [nodePaths.key, pair.key]);
    }
  } else {
    const pair = await createServerCertificate(ca, 'volback-nats', options.natsHosts ?? []);
    natsCertificates.push([paths.natsCert, pair.cert], [paths.natsKey, pair.key]);
  }
  const minio = await createServerCertificate(ca, 'volback-minio', options.minioHosts ?? []);
  const admin = randomSecret();
  const read = randomSecret();
  const files: [string, string][] = [
    [paths.caCert, ca.cert],
    [paths.caKey, ca.key],
    ...natsCertificates,
    [paths.minioCert, minio.cert],
    [paths.minioKey, minio.key],
    [paths.repositoryPassword, `${password}\n`],
    [paths.minioRootPassword, `${randomSecret()}\n`],
    [
      paths.catalogTokens,
      `${JSON.stringify(
        {
          tokens: [
            { name: 'admin', scope: 'write', sha256: sha256(admin) },
            { name: 'read', scope: 'read', sha256: sha256(read) },
          ],
        },
        null,
        2,
      )}\n`,
    ],
    [paths.adminToken, `${admin}\n`],
    [paths.readToken, `${read}\n`],
    [
      paths.natsSettings,
      `${JSON.stringify({
        serverName: options.natsServerName ?? 'volback-nats',
        listen: options.natsListen ?? DEFAULT_NATS_LISTEN,
        storeDir: resolve(options.natsStoreDir ?? join(dir, 'nats/jetstream')),
        ...(options.natsSecretsPath ? { secretsPath: options.natsSecretsPath } : {}),
        ...(cluster ? { cluster } : {}),
      } satisfies NatsSettings)}\n`,
    ],
  ];
  for (const identity of [
    { kind: 'admin' } as const,
    ...SERVICE_NAMES.map((service) => ({ kind: 'service', service }) as const),
  ]) {
    files.push([seedFile(dir, identity), `${newSeed()}\n`]);
  }
  for (const [file, content] of files) await writeSecret(file, content);
  return [...files.map(([file]) => file), ...(await writeNatsConfig(dir))];
}

async function readText(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new InitError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

async function requireSetUp(dir: string): Promise<void> {
  if (!existsSync(secretPaths(dir).natsSettings)) {
    throw new InitError(`${dir} holds no set-up: run \`volback init --dir ${dir}\` first`);
  }
}

/** Every identity of the set-up with the public key of its seed. */
async function natsUsers(dir: string): Promise<NatsUser[]> {
  const folder = secretPaths(dir).identities;
  const users: NatsUser[] = [];
  for (const entry of (await readdir(folder)).sort()) {
    if (!entry.endsWith('.nk')) continue;
    const name = entry.slice(0, -'.nk'.length);
    let identity: Identity;
    if (name === 'admin') identity = { kind: 'admin' };
    else if ((SERVICE_NAMES as readonly string[]).includes(name))
      identity = { kind: 'service', service: name as (typeof SERVICE_NAMES)[number] };
    else if (name.startsWith('agent-')) {
      const agent = JSON.parse(await readText(join(folder, `${name}.json`))) as AgentIdentity;
      identity = { kind: 'agent', hostId: agent.hostId };
    } else if (name.startsWith('subscriber-'))
      identity = { kind: 'subscriber', name: decodeSubjectToken(name.slice('subscriber-'.length)) };
    else continue;
    const seed = await readText(join(folder, entry));
    users.push({ identity, publicKey: fromSeed(new TextEncoder().encode(seed)).getPublicKey() });
  }
  return users;
}

/** The NATS configuration (one per node of a cluster) the settings and identities give: file and text. */
async function renderNatsConfigs(dir: string): Promise<{ file: string; config: string }[]> {
  const paths = secretPaths(dir);
  const settings = JSON.parse(await readText(paths.natsSettings)) as NatsSettings;
  const seenDir = settings.secretsPath ?? resolve(dir);
  // In a container (secrets mounted, maybe read-only) the pid would be of another namespace
  // anyway: reload with `docker compose kill -s HUP nats`.
  const pidFile = (file: string) => (settings.secretsPath ? {} : { pidFile: file });
  const users = await natsUsers(dir);
  if (!settings.cluster) {
    const seen = secretPaths(seenDir);
    const config = renderNatsConfig(
      {
        serverName: settings.serverName,
        listen: settings.listen,
        storeDir: settings.storeDir,
        certFile: seen.natsCert,
        keyFile: seen.natsKey,
        ...pidFile(seen.natsPidFile),
      },
      users,
    );
    return [{ file: paths.natsConfig, config }];
  }
  const { name, nodes } = settings.cluster;
  const rendered: { file: string; config: string }[] = [];
  for (const node of nodes) {
    const seen = natsNodePaths(seenDir, node.name);
    const config = renderNatsConfig(
      {
        serverName: node.name,
        listen: node.listen,
        storeDir: join(settings.storeDir, node.name),
        certFile: seen.cert,
        keyFile: seen.key,
        ...pidFile(seen.pidFile),
        cluster: {
          name,
          listen: routeListen(node),
          advertise: hostPort(node.host, node.routePort),
          routes: nodes.filter((n) => n !== node).map((n) => hostPort(n.host, n.routePort)),
          caFile: secretPaths(seenDir).caCert,
        },
      },
      users,
    );
    rendered.push({ file: natsNodePaths(dir, node.name).config, config });
  }
  return rendered;
}

/** Rewrites the NATS configuration (one per node of a cluster) from the identities, atomically. */
export async function writeNatsConfig(dir: string): Promise<string[]> {
  const rendered = await renderNatsConfigs(dir);
  for (const { file, config } of rendered) await writeSecret(file, config);
  return rendered.map(({ file }) => file);
}

/**
 * Rewrites the NATS configuration where it differs from what this version writes (`volback init
 * nats-config`): a set-up written by an earlier version lacks the permissions of newer operations
 * (the servers refuse them, and the services fall back to slower ones). Returns the files changed.
 */
export async function refreshNatsConfig(dir: string): Promise<string[]> {
  const changed: string[] = [];
  for (const { file, config } of await renderNatsConfigs(dir)) {
    const current = existsSync(file) ? await readFile(file, 'utf8') : undefined;
    if (current === config) continue;
    await writeSecret(file, config);
    changed.push(file);
  }
  return changed;
}

async function isNatsServer(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('nats-server');
  } catch {
    // No /proc (not Linux): trust the pid file; a process that is gone fails the signal.
    return !existsSync('/proc/self');
  }
}

/** What a reload did: the servers signalled, and how to reload those it could not. */
export interface ReloadOutcome {
  /** `node`: the cluster node (absent for the single server or a pid given). */
  readonly reloaded: readonly { readonly node?: string; readonly pid: number }[];
  /** How to reload the servers that run nowhere this command could see; absent when none. */
  readonly how?: string;
}

/** The servers of the set-up: each one's configuration and pid file (and node name in a cluster). */
async function natsServers(dir: string): Promise<{ node?: string; config: string; pidFile: string }[]> {
  const paths = secretPaths(dir);
  const settings = JSON.parse(await readText(paths.natsSettings)) as NatsSettings;
  if (!settings.cluster) return [{ config: paths.natsConfig, pidFile: paths.natsPidFile }];
  return settings.cluster.nodes.map((node: NatsNode) => {
    const nodePaths = natsNodePaths(dir, node.name);
    return { node: node.name, config: nodePaths.config, pidFile: nodePaths.pidFile };
  });
}

/**
 * Tells NATS to reload its configuration (SIGHUP): the pids given, else every server of the set-up
 * whose pid file names a running nats-server (each node of a cluster). Says how for the others.
 */
export async function reloadNats(dir: string, pids: readonly number[] = []): Promise<ReloadOutcome> {
  if (pids.length) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        throw new InitError(`cannot signal NATS (pid ${pid}): ${(error as Error).message}`);
      }
    }
    return { reloaded: pids.map((pid) => ({ pid })) };
  }
  const reloaded: { node?: string; pid: number }[] = [];
  const missed: string[] = [];
  for (const { node, config, pidFile } of await natsServers(dir)) {
    let target: number | undefined;
    if (existsSync(pidFile)) {
      const parsed = Number((await readFile(pidFile, 'utf8')).trim());
      // A pid file a stopped server left behind may name another process by now.
      if (Number.isInteger(parsed) && parsed > 0 && (await isNatsServer(parsed))) target = parsed;
    }
    try {
      if (target === undefined) throw new Error('not running here');
      process.kill(target, 'SIGHUP');
      reloaded.push({ ...(node ? { node } : {}), pid: target });
    } catch {
      missed.push(config);
    }
  }
  if (!missed.length) return { reloaded };
  return {
    reloaded,
    how: `reload NATS with the new ${missed.join(', ')}: \`nats-server --signal reload[=<pid>]\`, or SIGHUP to its pid (docker compose kill -s HUP nats)`,
  };
}

async function agents(dir: string): Promise<{ file: string; agent: AgentIdentity }[]> {
  const folder = secretPaths(dir).identities;
  const found = [];
  for (const entry of await readdir(folder)) {
    if (!entry.startsWith('agent-') || !entry.endsWith('.json')) continue;
    const file = join(folder, entry);
    found.push({ file, agent: JSON.parse(await readText(file)) as AgentIdentity });
  }
  return found;
}

/** The agent named `nameOrHostId` (its name, or its host id). */
async function findAgent(dir: string, nameOrHostId: string): Promise<AgentIdentity> {
  const all = await agents(dir);
  const byId = all.find((a) => a.agent.hostId === nameOrHostId);
  if (byId) return byId.agent;
  const byName = all.filter((a) => a.agent.name === nameOrHostId);
  if (byName.length === 1) return byName[0]!.agent;
  if (byName.length > 1) {
    throw new InitError(
      `${byName.length} agents are named ${JSON.stringify(nameOrHostId)}: name one by its host id (${byName.map((a) => a.agent.hostId).join(', ')})`,
    );
  }
  throw new InitError(`no agent named ${JSON.stringify(nameOrHostId)} in ${dir}`);
}

/** The files an agent host needs. */
export interface AgentFiles {
  readonly hostId: string;
  readonly seedFile: string;
  readonly identityFile: string;
  readonly caFile: string;
}

function agentFiles(dir: string, hostId: string): AgentFiles {
  const identity: Identity = { kind: 'agent', hostId };
  return {
    hostId,
    seedFile: seedFile(dir, identity),
    identityFile: join(secretPaths(dir).identities, `${identityName(identity)}.json`),
    caFile: secretPaths(dir).caCert,
  };
}

/** Adds a Docker host: a new host id (unless given), its seed and identity file, and its NATS user. */
export async function addAgent(
  dir: string,
  name: string,
  hostId: string = randomUUID(),
): Promise<AgentFiles> {
  await requireSetUp(dir);
  if (!/^[\x21-\x7e]{1,253}$/.test(name))
    throw new InitError(`agent name ${JSON.stringify(name)}: 1 to 253 printable characters, no spaces`);
  const parsed = hostIdSchema.safeParse(hostId);
  if (!parsed.success)
    throw new InitError(`host id ${JSON.stringify(hostId)}: ${parsed.error.issues[0]?.message}`);
  const all = await agents(dir);
  if (all.some((a) => a.agent.hostId === hostId))
    throw new InitError(`host id ${hostId} already has an agent identity`);
  if (all.some((a) => a.agent.name === name))
    throw new InitError(`an agent named ${JSON.stringify(name)} exists already`);
  const files = agentFiles(dir, hostId);
  await writeSecret(files.identityFile, `${JSON.stringify({ hostId, name } satisfies AgentIdentity)}\n`);
  await writeSecret(files.seedFile, `${newSeed()}\n`);
  await writeNatsConfig(dir);
  return files;
}

/** A new seed for an agent; its old one is refused once NATS reloads. */
export async function rotateAgent(dir: string, nameOrHostId: string): Promise<AgentFiles> {
  await requireSetUp(dir);
  const agent = await findAgent(dir, nameOrHostId);
  const files = agentFiles(dir, agent.hostId);
  await writeSecret(files.seedFile, `${newSeed()}\n`);
  await writeNatsConfig(dir);
  return files;
}

/** Removes an agent's identity: NATS drops its connection on reload and refuses it from then on. */
export async function revokeAgent(dir: string, nameOrHostId: string): Promise<AgentIdentity> {
  await requireSetUp(dir);
  const agent = await findAgent(dir, nameOrHostId);
  const files = agentFiles(dir, agent.hostId);
  await rm(files.seedFile, { force: true });
  await rm(files.identityFile, { force: true });
  await writeNatsConfig(dir);
  return agent;
}

/** Adds a read-only event subscriber; returns its seed file. */
export async function addSubscriber(dir: string, name: string): Promise<string> {
  await requireSetUp(dir);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name)) {
    throw new InitError(
      `subscriber name ${JSON.stringify(name)}: a letter or digit, then letters, digits, _ or - (at most 64)`,
    );
  }
  const file = seedFile(dir, { kind: 'subscriber', name });
  if (existsSync(file)) throw new InitError(`subscriber ${name} exists already (${file})`);
  await writeSecret(file, `${newSeed()}\n`);
  await writeNatsConfig(dir);
  return file;
}
