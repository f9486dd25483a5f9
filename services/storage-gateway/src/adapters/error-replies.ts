import { DataPathError, DataPathErrorCode } from '@volback/data-path';
import { RepositoryError, RepositoryErrorCode } from '@volback/repository';

/** What a failure becomes on the wire: a stable code and a message without internals. */
export interface ReplyFailure {
  readonly error: DataPathError;
  /** True when the cause is ours (a bug, an unexpected state): log it with its stack. */
  readonly internal: boolean;
}

/**
 * Maps a failure to the data-path error the client gets. Repository errors keep their message
 * (they name files and the location, never credentials or the password); anything unexpected is
 * `INTERNAL` with a generic message, and the details stay in the gateway's log.
 */
export function toReplyFailure(error: unknown): ReplyFailure {
  if (error instanceof DataPathError) return { error, internal: false };
  if (error instanceof RepositoryError) {
    const as = (code: string) => ({
      error: new DataPathError(code, error.message, { cause: error }),
      internal: false,
    });
    switch (error.code) {
      case RepositoryErrorCode.Locked:
        return as(DataPathErrorCode.RepositoryLocked);
      case RepositoryErrorCode.BackendUnavailable:
      case RepositoryErrorCode.NoSpace:
      case RepositoryErrorCode.NotARepository:
      case RepositoryErrorCode.WrongPassword:
      case RepositoryErrorCode.BackendConfig:
        return as(DataPathErrorCode.RepositoryUnavailable);
      case RepositoryErrorCode.Authentication:
        return as(DataPathErrorCode.BlobCorrupt);
      case RepositoryErrorCode.FileNotFound:
        return as(DataPathErrorCode.NotFound);
      case RepositoryErrorCode.BlobIdMismatch:
        return as(DataPathErrorCode.BlobIdMismatch);
      default:
        break;
    }
  }
  return {
    error: new DataPathError(
      DataPathErrorCode.Internal,
      'internal error in the storage gateway (see its log)',
      {
        cause: error,
      },
    ),
    internal: true,
  };
}
