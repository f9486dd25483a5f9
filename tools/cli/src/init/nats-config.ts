// The NATS server configuration `volback init` writes: TLS, JetStream, 16 MiB messages, and one
// nkey user per identity with its permissions from @volback/contracts (the single source); for a
// node of a cluster also its routes, over TLS both ways (mutual: each end shows a certificate of
// the set-up's CA).
import { identityName, permissionsFor, type Identity, type NatsPermissions } from '@volback/contracts';

/** The largest message: restic chunks reach 8 MiB (libs/messaging/README.md, "Large messages"). */
export const NATS_MAX_PAYLOAD = 16 * 1024 * 1024;

/** One NATS user: an identity and the public key of its nkey. */
export interface NatsUser {
  readonly identity: Identity;
  readonly publicKey: string;
}

/** Where the server listens and finds its files. */
export interface NatsServerSettings {
  readonly serverName: string;
  /** `host:port` of the client port. */
  readonly listen: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly storeDir: string;
  /** Where the server writes its pid, for `volback init` to reload it. */
  readonly pidFile?: string;
  /** This server is a node of a cluster. */
  readonly cluster?: NatsClusterSettings;
}

/** A cluster node's routes: where it listens for the others and whom it dials. */
export interface NatsClusterSettings {
  readonly name: string;
  /** `host:port` this node listens on for routes. */
  readonly listen: string;
  /** `host:port` the other nodes reach this one at (gossiped to them; in its certificate). */
  readonly advertise: string;
  /** `host:port` of every other node. */
  readonly routes: readonly string[];
  /** The set-up's CA: a route peer must show a certificate it signed. */
  readonly caFile: string;
}

const q = (value: string): string => JSON.stringify(value);

function list(values: readonly string[], indent: string): string {
  return `[\n${values.map((v) => `${indent}  ${q(v)}`).join('\n')}\n${indent}]`;
}

function permissionsBlock(permissions: NatsPermissions, indent: string): string {
  const rules = (name: string, r: { allow: readonly string[]; deny?: readonly string[] }) =>
    [
      `${indent}  ${name}: {`,
      `${indent}    allow: ${list(r.allow, `${indent}    `)}`,
      ...(r.deny?.length ? [`${indent}    deny: ${list(r.deny, `${indent}    `)}`] : []),
      `${indent}  }`,
    ].join('\n');
  return [
    `${indent}permissions: {`,
    rules('publish', permissions.publish),
    rules('subscribe', permissions.subscribe),
    ...(permissions.allowResponses
      ? [
          `${indent}  allow_responses: { max: ${permissions.allowResponses.max}, expires: ${q(permissions.allowResponses.expires)} }`,
        ]
      : []),
    `${indent}}`,
  ].join('\n');
}

function clusterBlock(settings: NatsServerSettings, cluster: NatsClusterSettings): string[] {
  return [
    'cluster {',
    `  name: ${q(cluster.name)}`,
    `  listen: ${q(cluster.listen)}`,
    `  advertise: ${q(cluster.advertise)}`,
    `  routes: ${list(
      cluster.routes.map((route) => `nats-route://${route}`),
      '  ',
    )}`,
    '  # Mutual TLS: this node and every peer it routes with show a certificate of the CA.',
    '  tls {',
    `    cert_file: ${q(settings.certFile)}`,
    `    key_file: ${q(settings.keyFile)}`,
    `    ca_file: ${q(cluster.caFile)}`,
    '    verify: true',
    '    timeout: 5',
    '  }',
    '}',
  ];
}

/** The whole server configuration, include-free and reloadable (SIGHUP). */
export function renderNatsConfig(settings: NatsServerSettings, users: readonly NatsUser[]): string {
  const userBlocks = users.map((user) => {
    const permissions = permissionsFor(user.identity);
    return [
      `    # ${identityName(user.identity)}`,
      `    {`,
      `      nkey: ${q(user.publicKey)}`,
      ...(permissions ? [permissionsBlock(permissions, '      ')] : []),
      `    }`,
    ].join('\n');
  });
  return [
    '# Written by `volback init`; `volback init agent|subscriber|rotate|revoke` rewrite it whole.',
    '# Every client authenticates with its own nkey (its seed stays with it) over TLS.',
    `server_name: ${q(settings.serverName)}`,
    `listen: ${q(settings.listen)}`,
    `max_payload: ${NATS_MAX_PAYLOAD}`,
    ...(settings.pidFile ? [`pid_file: ${q(settings.pidFile)}`] : []),
    'tls {',
    `  cert_file: ${q(settings.certFile)}`,
    `  key_file: ${q(settings.keyFile)}`,
    '  timeout: 5',
    '}',
    'jetstream {',
    `  store_dir: ${q(settings.storeDir)}`,
    '}',
    ...(settings.cluster ? clusterBlock(settings, settings.cluster) : []),
    'authorization {',
    '  users: [',
    ...userBlocks,
    '  ]',
    '}',
    '',
  ].join('\n');
}
