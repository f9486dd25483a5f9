import type { NatsAuthFiles } from '@volback/messaging';
import { envReader } from '@volback/runtime';
import { hostname } from 'node:os';
import { openBackend } from '@volback/repository';
import { ConfigError } from './errors.ts';

/** The gateway's settings (README, "Configuration"). */
export interface GatewayConfig {
  /** Repository location: a directory, or `s3:http(s)://host[:port]/bucket[/prefix]`. */
  readonly repository: string;
  readonly repositoryKind: 'local' | 's3';
  /** The repository password (from `VOLBACK_PASSWORD` or the file `VOLBACK_PASSWORD_FILE` names). Never log it. */
  readonly password: string;
  /** Create the repository when the location holds none. */
  readonly initRepository: boolean;
  /** The repository id requests and commands name. */
  readonly repositoryId: string;
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file (never the secrets themselves). */
  readonly natsAuth: NatsAuthFiles;
  /** This gateway's name in flush answers, events and logs. */
  readonly gatewayId: string;
  /** Replicas of the volback streams when the gateway creates or updates them (3 on a JetStream cluster). */
  readonly streamReplicas: number;
  readonly opsHost: string;
  readonly opsPort: number;
  /** A session's lock is released this long after its last request. */
  readonly sessionIdleSeconds: number;
  /** Open packs are written this long after the last stored blob. */
  readonly idleFlushSeconds: number;
}

/** Defaults of the settings, as documented. */
export const CONFIG_DEFAULTS = {
  natsUrl: 'nats://127.0.0.1:4222',
  repositoryId: 'default',
  streamReplicas: 1,
  opsHost: '127.0.0.1',
  opsPort: 9402,
  sessionIdleSeconds: 5,
  idleFlushSeconds: 3,
} as const;

/** Reads the gateway's configuration; throws {@link ConfigError} naming the variable at fault. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): GatewayConfig {
  const read = envReader(env, cwd, ConfigError);
  const repository = read.value('VOLBACK_REPOSITORY');
  if (!repository) {
    throw new ConfigError(
      'VOLBACK_REPOSITORY',
      'no repository: a directory or s3:http(s)://host[:port]/bucket[/prefix]',
    );
  }
  try {
    // Checks the location and, for S3, that credentials are set; contacts nothing.
    void openBackend(repository, env).close();
  } catch (cause) {
    throw new ConfigError('VOLBACK_REPOSITORY', (cause as Error).message, { cause });
  }
  const repositoryKind = repository.startsWith('s3:') ? 's3' : 'local';
  const repositoryId = read.value('VOLBACK_REPOSITORY_ID') ?? CONFIG_DEFAULTS.repositoryId;
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(repositoryId)) {
    throw new ConfigError('VOLBACK_REPOSITORY_ID', 'lower-case letters, digits, - and _, at most 63');
  }
  const { natsServers, natsAuth } = read.nats();
  const gatewayId = read.value('VOLBACK_GATEWAY_ID') ?? `${hostname()}-${process.pid}`;
  if (!/^[\x21-\x7e]{1,128}$/.test(gatewayId)) {
    throw new ConfigError('VOLBACK_GATEWAY_ID', 'printable ASCII without spaces, at most 128 characters');
  }
  const password = read.secret('VOLBACK_PASSWORD');
  if (!password) {
    throw new ConfigError(
      'VOLBACK_PASSWORD',
      'no repository password: set VOLBACK_PASSWORD or VOLBACK_PASSWORD_FILE',
    );
  }
  return {
    repository,
    repositoryKind,
    password,
    initRepository: read.flag('VOLBACK_REPOSITORY_INIT', repositoryKind === 'local'),
    repositoryId,
    natsServers,
    natsAuth,
    gatewayId,
    streamReplicas: read.integer('VOLBACK_STREAM_REPLICAS', CONFIG_DEFAULTS.streamReplicas, 1, 5),
    opsHost: read.value('VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: read.integer('VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    sessionIdleSeconds: read.integer(
      'VOLBACK_GATEWAY_SESSION_IDLE_SECONDS',
      CONFIG_DEFAULTS.sessionIdleSeconds,
      1,
      3_600,
    ),
    idleFlushSeconds: read.integer(
      'VOLBACK_GATEWAY_IDLE_FLUSH_SECONDS',
      CONFIG_DEFAULTS.idleFlushSeconds,
      1,
      600,
    ),
  };
}

/** The configuration as it may be logged: everything but the password. */
export function describeConfig(config: GatewayConfig): Omit<GatewayConfig, 'password'> {
  const { password: _password, ...rest } = config;
  return rest;
}
