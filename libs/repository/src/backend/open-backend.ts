import { resolve } from 'node:path';
import { BackendConfigError } from './backend-config-error.ts';
import type { Backend } from './backend.ts';
import { LocalBackend } from './local-backend.ts';
import { s3BackendFromEnv, type S3BackendOptions, type S3Environment } from './s3-backend.ts';

/** restic backends volback does not implement; their locations must not be taken for paths. */
const UNSUPPORTED = /^(sftp|rest|b2|azure|gs|swift|rclone):/;

/**
 * The backend for a restic-style repository location: `s3:…` (credentials from `env`, see
 * {@link s3BackendFromEnv}), or a directory, written as a path or `local:<path>`. Nothing is
 * contacted until the backend is used.
 */
export function openBackend(
  location: string,
  env: S3Environment = process.env,
  s3Options: Omit<S3BackendOptions, 'credentials'> = {},
): Backend {
  if (location.startsWith('s3:')) return s3BackendFromEnv(location, env, s3Options);
  const scheme = UNSUPPORTED.exec(location);
  if (scheme) {
    throw new BackendConfigError(
      `repository backend "${scheme[1]}:" is not supported (use a directory or s3:)`,
    );
  }
  const path = location.startsWith('local:') ? location.slice('local:'.length) : location;
  if (path.trim() === '') throw new BackendConfigError('no repository location given');
  return new LocalBackend(resolve(path));
}
