import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A server program the harness runs, and the environment variable that may name it. */
export interface BinarySpec {
  /** File name looked up on PATH and in the cache, e.g. `nats-server`. */
  readonly name: string;
  /** Environment variable that, when set, names the binary to use as it is. */
  readonly envVar: string;
}

export const NATS_SERVER: BinarySpec = { name: 'nats-server', envVar: 'NATS_SERVER_BIN' };
export const MINIO: BinarySpec = { name: 'minio', envVar: 'MINIO_BIN' };
export const DOCKERD: BinarySpec = { name: 'dockerd', envVar: 'DOCKERD_BIN' };
export const CONTAINERD: BinarySpec = { name: 'containerd', envVar: 'CONTAINERD_BIN' };
export const RESTIC: BinarySpec = { name: 'restic', envVar: 'RESTIC_BIN' };
export const BUSYBOX: BinarySpec = { name: 'busybox', envVar: 'BUSYBOX_BIN' };

/** Where `scripts/install-servers.sh` puts what it builds; shared by every checkout. */
export function cacheDir(): string {
  return (
    process.env['VOLBACK_CACHE_DIR'] ??
    join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'volback')
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Error raised when a server binary is nowhere to be found. */
export class BinaryNotFoundError extends Error {
  override readonly name = 'BinaryNotFoundError';
  readonly code = 'VOLBACK_BINARY_NOT_FOUND';
}

/**
 * Finds a binary: the environment variable first, then PATH (plus /usr/sbin and /sbin, where
 * Debian puts dockerd), then the project's cache. Never installs anything itself.
 */
export function resolveBinary(spec: BinarySpec): string {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new BinaryNotFoundError(`${spec.envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const dirs = [
    ...(process.env['PATH'] ?? '').split(delimiter),
    '/usr/sbin',
    '/sbin',
    join(cacheDir(), 'bin'),
  ];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, spec.name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new BinaryNotFoundError(
    `${spec.name} not found on PATH, in ${join(cacheDir(), 'bin')} or in $${spec.envVar}; run \`npm run servers:install\``,
  );
}
