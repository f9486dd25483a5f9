/** Stable codes of repository failures (the CLI maps them to exit codes and messages). */
export const RepositoryErrorCode = {
  /** A MAC did not verify: wrong key, or the data was altered. */
  Authentication: 'VOLBACK_REPO_AUTHENTICATION',
  /** No key file opens with this password. */
  WrongPassword: 'VOLBACK_REPO_WRONG_PASSWORD',
  /** The location holds no repository (no config file). */
  NotARepository: 'VOLBACK_REPO_NOT_FOUND',
  /** `init` on a location that already holds a repository. */
  AlreadyExists: 'VOLBACK_REPO_EXISTS',
  /** A file the repository refers to is missing. */
  FileNotFound: 'VOLBACK_REPO_FILE_NOT_FOUND',
  /** A file is not in the format restic defines. */
  Malformed: 'VOLBACK_REPO_MALFORMED',
  /** The repository location or backend settings cannot work (malformed, missing credentials). */
  BackendConfig: 'VOLBACK_REPO_BACKEND_CONFIG',
  /** The backend cannot be reached or refused the request. */
  BackendUnavailable: 'VOLBACK_REPO_BACKEND_UNAVAILABLE',
  /** The backend has no space left. */
  NoSpace: 'VOLBACK_REPO_NO_SPACE',
  /** Another process holds a conflicting lock. */
  Locked: 'VOLBACK_REPO_LOCKED',
  /** A repository version or feature we do not support. */
  Unsupported: 'VOLBACK_REPO_UNSUPPORTED',
  /** A restore would write outside its target (a malicious or broken tree). */
  UnsafePath: 'VOLBACK_REPO_UNSAFE_PATH',
  /** A blob handed in with its id does not hash to it (`SaveBlobOptions.verify`): nothing was stored. */
  BlobIdMismatch: 'VOLBACK_REPO_BLOB_ID_MISMATCH',
} as const;
/** One of {@link RepositoryErrorCode}. */
export type RepositoryErrorCode = (typeof RepositoryErrorCode)[keyof typeof RepositoryErrorCode];

/** Any failure of the repository library; `code` is stable, `cause` keeps the original error. */
export class RepositoryError extends Error {
  override readonly name: string = 'RepositoryError';
  readonly code: RepositoryErrorCode;

  constructor(code: RepositoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
