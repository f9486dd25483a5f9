/**
 * Stable codes of data-path failures. Gateways send them in the `Volback-Error` header of a reply;
 * the client raises the same codes for what goes wrong on its side (no gateway, no answer).
 */
export const DataPathErrorCode = {
  /** No gateway listens on the data path (NATS "no responders"). */
  NoGateway: 'NO_GATEWAY',
  /** No answer within the request's time limit. */
  Timeout: 'TIMEOUT',
  /**
   * The NATS server does not let this identity publish the request: its permissions were written
   * before the operation existed (`volback init` writes them again), or name another requester.
   */
  NotPermitted: 'NOT_PERMITTED',
  /** The request does not match its schema; nothing was changed. */
  BadRequest: 'BAD_REQUEST',
  /** A stored blob's body does not hash to the id it was sent with; nothing was stored. */
  BlobIdMismatch: 'BLOB_ID_MISMATCH',
  /** A blob is larger than the data path carries (data blobs: the chunker's maximum plus a margin). */
  BlobTooLarge: 'BLOB_TOO_LARGE',
  /** A loaded blob failed verification (MAC, decompression or SHA-256 against its id). */
  BlobCorrupt: 'BLOB_CORRUPT',
  /** A snapshot refers to blobs the repository does not hold; `missing` lists them. */
  MissingBlobs: 'MISSING_BLOBS',
  /** The repository's storage did not answer or refused the request; worth a retry later. */
  RepositoryUnavailable: 'REPOSITORY_UNAVAILABLE',
  /** Another holder's lock (an exclusive one, for prune) stops this operation; retry later. */
  RepositoryLocked: 'REPOSITORY_LOCKED',
  /** The request names a repository this gateway does not serve. */
  UnknownRepository: 'UNKNOWN_REPOSITORY',
  /** The blob or snapshot asked for does not exist. */
  NotFound: 'NOT_FOUND',
  /**
   * The requester may not read this snapshot or blob: it belongs to another host's snapshots, and
   * no grant of the catalog names it for this host (`Volback-Grant`).
   */
  Forbidden: 'FORBIDDEN',
  /** The gateway answered something this client cannot read (a version mismatch). */
  BadReply: 'BAD_REPLY',
  /** The gateway failed for a reason of its own; details are in its log, never in the reply. */
  Internal: 'INTERNAL',
} as const;
/** One of {@link DataPathErrorCode}. */
export type DataPathErrorCode = (typeof DataPathErrorCode)[keyof typeof DataPathErrorCode];

/** A blob named in a data-path request or error. */
export interface BlobRef {
  type: 'data' | 'tree';
  id: string;
}

/** A failed data-path request: a stable `code`, and for `MISSING_BLOBS` the blobs still missing. */
export class DataPathError extends Error {
  override readonly name = 'DataPathError';
  /** One of {@link DataPathErrorCode} (a newer gateway may send codes this build does not list). */
  readonly code: string;
  /** For {@link DataPathErrorCode.MissingBlobs}: the blobs a snapshot refers to that are not stored. */
  readonly missing?: BlobRef[];

  constructor(code: string, message: string, options?: { cause?: unknown; missing?: BlobRef[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.missing) this.missing = options.missing;
  }
}

/** Codes after which the same request may well succeed: another try is worth it. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  DataPathErrorCode.NoGateway,
  DataPathErrorCode.Timeout,
]);
