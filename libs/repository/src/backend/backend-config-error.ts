/** Stable code of {@link BackendConfigError}. */
export const BACKEND_CONFIG_ERROR_CODE = 'VOLBACK_REPO_BACKEND_CONFIG';

/**
 * A repository location or backend setting that cannot work (a malformed `s3:` location, missing
 * credentials, an unsupported scheme). Raised before any I/O; the message says what to fix and
 * never repeats a secret.
 */
export class BackendConfigError extends Error {
  override readonly name: string = 'BackendConfigError';
  readonly code = BACKEND_CONFIG_ERROR_CODE;
}
