// The nodes of a NATS cluster as `volback init --nats-cluster` takes them: a name and the address
// the other nodes dial for routes, plus where each listens for clients. Pure parsing and checks;
// secrets-dir.ts writes one configuration and one certificate per node from them.
import { checkServerName } from './certificates.ts';

/** One node of the cluster (kept in `nats/settings.json`). */
export interface NatsNode {
  /** Its `server_name`, unique in the cluster; also names its files (`nats-server-<name>.conf`). */
  readonly name: string;
  /** The name or address the other nodes dial (in its certificate). */
  readonly host: string;
  /** Its route port. */
  readonly routePort: number;
  /** `host:port` it listens on for clients; it listens for routes on the same host. */
  readonly listen: string;
}

/** The cluster (kept in `nats/settings.json`). */
export interface NatsCluster {
  readonly name: string;
  readonly nodes: readonly NatsNode[];
}

/** The default cluster name. */
export const DEFAULT_CLUSTER_NAME = 'volback';
/** Where NATS listens for clients unless told (TLS and nkeys guard it). */
export const DEFAULT_NATS_LISTEN = '0.0.0.0:4222';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Input that names no usable cluster; nothing was written. */
export class NatsClusterError extends Error {
  override readonly name = 'NatsClusterError';
  readonly code = 'VOLBACK_INIT_NATS_CLUSTER';
}

/** Splits `host:port` (`[v6]:port` for an IPv6 address); undefined when it is not that. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(address);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

const bracketed = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** `host:port` written back (IPv6 in brackets). */
export function hostPort(host: string, port: number): string {
  return `${bracketed(host)}:${port}`;
}

/** True for an address that means "every interface" (nothing to put in a certificate). */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function checkName(what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new NatsClusterError(
      `${what} ${JSON.stringify(name)}: a letter or digit, then letters, digits, _ or - (at most 64)`,
    );
  }
}

/**
 * The cluster from `--nats-cluster` entries (`NAME=HOST:PORT`, comma-separated or repeated) and
 * `--nats-listen` values (`HOST:PORT` for every node, or `NAME=HOST:PORT` for one).
 */
export function parseNatsCluster(
  entries: readonly string[],
  listens: readonly string[],
  name: string = DEFAULT_CLUSTER_NAME,
): NatsCluster {
  checkName('cluster name', name);
  const items = entries.flatMap((entry) => entry.split(',')).map((item) => item.trim());
  const parsed = items.map((item) => {
    const match = /^([^=]*)=(.*)$/.exec(item);
    const address = match ? splitHostPort(match[2]!) : undefined;
    if (!match || !address) {
      throw new NatsClusterError(
        `--nats-cluster ${JSON.stringify(item)} is not NAME=HOST:PORT (the node's name and the route address the others dial)`,
      );
    }
    checkName('node name', match[1]!);
    try {
      checkServerName(address.host);
    } catch (error) {
      throw new NatsClusterError(`node ${match[1]}: ${(error as Error).message}`);
    }
    return { name: match[1]!, host: address.host, routePort: address.port };
  });
  if (parsed.length < 2) {
    throw new NatsClusterError(
      `--nats-cluster names ${parsed.length} node: a cluster needs at least 2 (3 for streams at R3)`,
    );
  }
  for (const [index, node] of parsed.entries()) {
    if (parsed.findIndex((n) => n.name === node.name) !== index)
      throw new NatsClusterError(`--nats-cluster names node ${node.name} twice`);
    if (parsed.findIndex((n) => n.host === node.host && n.routePort === node.routePort) !== index)
      throw new NatsClusterError(`--nats-cluster gives ${hostPort(node.host, node.routePort)} to two nodes`);
  }

  let everyNode = DEFAULT_NATS_LISTEN;
  const perNode = new Map<string, string>();
  for (const value of listens.flatMap((entry) => entry.split(',')).map((item) => item.trim())) {
    const match = /^([^=]*)=(.*)$/.exec(value);
    const address = match ? match[2]! : value;
    if (!splitHostPort(address))
      throw new NatsClusterError(`--nats-listen ${JSON.stringify(value)} is not [NAME=]HOST:PORT`);
    if (!match) everyNode = address;
    else if (!parsed.some((node) => node.name === match[1]))
      throw new NatsClusterError(
        `--nats-listen ${JSON.stringify(value)}: no node ${match[1]} in --nats-cluster`,
      );
    else perNode.set(match[1]!, address);
  }
  const nodes = parsed.map((node) => ({ ...node, listen: perNode.get(node.name) ?? everyNode }));
  for (const node of nodes) {
    const client = splitHostPort(node.listen)!;
    if (client.port === node.routePort)
      throw new NatsClusterError(
        `node ${node.name} would listen for clients and routes on the same port ${client.port}`,
      );
  }
  return { name, nodes };
}

/** Where a node listens for routes: its client host, its route port. */
export function routeListen(node: NatsNode): string {
  return hostPort(splitHostPort(node.listen)!.host, node.routePort);
}

/** The names a node's certificate holds besides the loopback ones and `--nats-host`. */
export function nodeNames(node: NatsNode): string[] {
  const client = splitHostPort(node.listen)!.host;
  return [node.host, ...(isWildcard(client) ? [] : [client])];
}
