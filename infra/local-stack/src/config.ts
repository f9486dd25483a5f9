import { resolve } from 'node:path';
import { envReader } from '@volback/runtime';

/** The local stack's settings, from the environment (documented in the root README). */
export interface LocalStackConfig {
  /** Everything the stack keeps: NATS store, repository, its password, catalog, agent state. */
  readonly dataDir: string;
  /** An existing NATS to use instead of starting one (`VOLBACK_NATS_URL`, one or more URLs). */
  readonly natsServers: readonly string[] | undefined;
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
  /** Seconds before a new volume's first backup: the stack's own default is short (10). */
  readonly firstBackupDelaySeconds: string;
}

/** A setting the stack cannot use; `variable` names the environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'VOLBACK_INVALID_CONFIG';
  readonly variable: string;

  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options);
    this.variable = variable;
  }
}

/** The highest TCP port; 0 asks for a free one. */
const MAX_PORT = 65_535;

/**
 * Reads the configuration with the services' parsers (`@volback/runtime`); throws
 * {@link ConfigError} naming the bad variable.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LocalStackConfig {
  const read = envReader(env, cwd, ConfigError);
  return {
    dataDir: read.path('VOLBACK_DATA_DIR') ?? resolve(cwd, '.volback'),
    natsServers: read.value('VOLBACK_NATS_URL') === undefined ? undefined : read.nats().natsServers,
    natsPort: read.integer('VOLBACK_NATS_PORT', 4222, 0, MAX_PORT),
    opsPort: read.integer('VOLBACK_OPS_PORT', 9400, 0, MAX_PORT),
    catalogPort: read.integer('VOLBACK_CATALOG_PORT', 8080, 0, MAX_PORT),
    dockerHost: read.value('DOCKER_HOST') ?? 'unix:///var/run/docker.sock',
    password: read.secret('VOLBACK_PASSWORD'),
    // Passed on to the scheduler, which checks it.
    firstBackupDelaySeconds: read.value('VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS') ?? '10',
  };
}
