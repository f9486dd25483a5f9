import { resolve } from 'node:path';

/** The local stack's settings, from the environment (documented in the root README). */
export interface LocalStackConfig {
  /** Everything the stack keeps: NATS store, repository, its password, catalog, agent state. */
  readonly dataDir: string;
  /** An existing NATS to use instead of starting one. */
  readonly natsUrl: string | undefined;
  /** Client port of the NATS the stack starts. */
  readonly natsPort: number;
  /** Port of the stack's `/healthz`, `/readyz` and `/metrics`. */
  readonly opsPort: number;
  /** Port of the catalog's HTTP API on 127.0.0.1. */
  readonly catalogPort: number;
  /** The Docker Engine the agent watches (`DOCKER_HOST`). */
  readonly dockerHost: string;
  /** The repository password from the environment; else one is generated and kept in the data dir. */
  readonly password: string | undefined;
}

/** Error for a setting that cannot be used; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'VOLBACK_INVALID_CONFIG';
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new ConfigError(`${name}=${raw} is not a TCP port (0-65535)`);
  }
  return value;
}

/** Reads the configuration; throws {@link ConfigError} naming the bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LocalStackConfig {
  const natsUrl = env['VOLBACK_NATS_URL'] || undefined;
  if (natsUrl && !/^(nats|tls|wss?):\/\/\S+$/.test(natsUrl)) {
    throw new ConfigError(`VOLBACK_NATS_URL=${natsUrl} is not a nats:// URL`);
  }
  return {
    dataDir: resolve(cwd, env['VOLBACK_DATA_DIR'] || '.volback'),
    natsUrl,
    natsPort: port(env, 'VOLBACK_NATS_PORT', 4222),
    opsPort: port(env, 'VOLBACK_OPS_PORT', 9400),
    catalogPort: port(env, 'VOLBACK_CATALOG_PORT', 8080),
    dockerHost: env['DOCKER_HOST'] || 'unix:///var/run/docker.sock',
    password: env['VOLBACK_PASSWORD'] || undefined,
  };
}
