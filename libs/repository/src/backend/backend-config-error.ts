import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

/** Stable code of {@link BackendConfigError}. */
export const BACKEND_CONFIG_ERROR_CODE = RepositoryErrorCode.BackendConfig;

/**
 * A repository location or backend setting that cannot work (a malformed `s3:` location, missing
 * credentials, an unsupported scheme). Raised before any I/O; the message says what to fix and
 * never repeats a secret.
 */
export class BackendConfigError extends RepositoryError {
  override readonly name: string = 'BackendConfigError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(RepositoryErrorCode.BackendConfig, message, options);
  }
}
