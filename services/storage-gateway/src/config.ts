import { natsAuthFromEnv, type NatsAuthFiles } from '@volback/messaging';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
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

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const parsed = Number(raw);
  if (!/^\d+$/.test(raw) || parsed < min || parsed > max) {
    throw new ConfigError(name, `${JSON.stringify(raw)} is not a whole number from ${min} to ${max}`);
  }
  return parsed;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === '0' || raw === 'false' || raw === 'no') return false;
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  throw new ConfigError(name, `${JSON.stringify(env[name])} is not 1/true/yes or 0/false/no`);
}

function password(env: NodeJS.ProcessEnv, cwd: string): string {
  const file = value(env, 'VOLBACK_PASSWORD_FILE');
  const direct = env['VOLBACK_PASSWORD'];
  if (file !== undefined && direct) {
    throw new ConfigError(
      'VOLBACK_PASSWORD_FILE',
      'set either VOLBACK_PASSWORD or VOLBACK_PASSWORD_FILE, not both',
    );
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, file), 'utf8');
    } catch (cause) {
      throw new ConfigError(
        'VOLBACK_PASSWORD_FILE',
        `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    // One trailing newline is the file's, not the password's (as restic's --password-file).
    const secret = text.replace(/\r?\n$/, '');
    if (secret === '') throw new ConfigError('VOLBACK_PASSWORD_FILE', `${file} is empty`);
    return secret;
  }
  if (!direct)
    throw new ConfigError(
      'VOLBACK_PASSWORD',
      'no repository password: set VOLBACK_PASSWORD or VOLBACK_PASSWORD_FILE',
    );
  return direct;
}

/** Reads the gateway's configuration; throws {@link ConfigError} naming the variable at fault. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): GatewayConfig {
  const repository = value(env, 'VOLBACK_REPOSITORY');
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
  const repositoryId = value(env, 'VOLBACK_REPOSITORY_ID') ?? CONFIG_DEFAULTS.repositoryId;
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(repositoryId)) {
    throw new ConfigError('VOLBACK_REPOSITORY_ID', 'lower-case letters, digits, - and _, at most 63');
  }
  const natsServers = (value(env, 'VOLBACK_NATS_URL') ?? CONFIG_DEFAULTS.natsUrl)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const server of natsServers) {
    if (!/^(nats|tls|wss?):\/\/\S+$/.test(server)) {
      throw new ConfigError('VOLBACK_NATS_URL', `${JSON.stringify(server)} is not a nats://host:port URL`);
    }
  }
  const gatewayId = value(env, 'VOLBACK_GATEWAY_ID') ?? `${hostname()}-${process.pid}`;
  if (!/^[\x21-\x7e]{1,128}$/.test(gatewayId)) {
    throw new ConfigError('VOLBACK_GATEWAY_ID', 'printable ASCII without spaces, at most 128 characters');
  }
  return {
    repository,
    repositoryKind,
    password: password(env, cwd),
    initRepository: flag(env, 'VOLBACK_REPOSITORY_INIT', repositoryKind === 'local'),
    repositoryId,
    natsServers,
    natsAuth: natsAuthFromEnv(env, cwd),
    gatewayId,
    streamReplicas: integer(env, 'VOLBACK_STREAM_REPLICAS', CONFIG_DEFAULTS.streamReplicas, 1, 5),
    opsHost: value(env, 'VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: integer(env, 'VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    sessionIdleSeconds: integer(
      env,
      'VOLBACK_GATEWAY_SESSION_IDLE_SECONDS',
      CONFIG_DEFAULTS.sessionIdleSeconds,
      1,
      3_600,
    ),
    idleFlushSeconds: integer(
      env,
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
