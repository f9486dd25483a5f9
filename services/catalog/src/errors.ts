/** Stable codes of the catalog's failures; the HTTP status is chosen at the edge (`http/problem.ts`). */
export const CatalogErrorCode = {
  /** A query string, path parameter or body does not match its schema; `errors` names the fields. */
  BadRequest: 'VOLBACK_CATALOG_BAD_REQUEST',
  /** A pagination cursor this catalog did not hand out (or one of another list). */
  InvalidCursor: 'VOLBACK_CATALOG_INVALID_CURSOR',
  /** No bearer token, or not one of the configured tokens. */
  Unauthorized: 'VOLBACK_CATALOG_UNAUTHORIZED',
  /** A read token on a request that changes something (any method but GET and HEAD). */
  Forbidden: 'VOLBACK_CATALOG_FORBIDDEN',
  /** Too many wrong or missing tokens from this address: wait `Retry-After` seconds (429). */
  TooManyAuthFailures: 'VOLBACK_CATALOG_TOO_MANY_AUTH_FAILURES',
  /** A state-changing request whose `Origin` is another site's (403: cross-site request forgery). */
  OriginNotAllowed: 'VOLBACK_CATALOG_ORIGIN_NOT_ALLOWED',
  /** A `Host` header that is not one of the API's names (421: DNS rebinding). */
  HostNotAllowed: 'VOLBACK_CATALOG_HOST_NOT_ALLOWED',
  /** No such route. */
  RouteNotFound: 'VOLBACK_CATALOG_ROUTE_NOT_FOUND',
  HostNotFound: 'VOLBACK_CATALOG_HOST_NOT_FOUND',
  VolumeNotFound: 'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
  ContainerNotFound: 'VOLBACK_CATALOG_CONTAINER_NOT_FOUND',
  PolicyNotFound: 'VOLBACK_CATALOG_POLICY_NOT_FOUND',
  /** A policy that does not come from the API (labels, configuration) cannot be removed through it. */
  PolicyNotRemovable: 'VOLBACK_CATALOG_POLICY_NOT_REMOVABLE',
  BackupNotFound: 'VOLBACK_CATALOG_BACKUP_NOT_FOUND',
  RestoreNotFound: 'VOLBACK_CATALOG_RESTORE_NOT_FOUND',
  SetNotFound: 'VOLBACK_CATALOG_SET_NOT_FOUND',
  SetBackupNotFound: 'VOLBACK_CATALOG_SET_BACKUP_NOT_FOUND',
  SnapshotNotFound: 'VOLBACK_CATALOG_SNAPSHOT_NOT_FOUND',
  DrillNotFound: 'VOLBACK_CATALOG_DRILL_NOT_FOUND',
  /** A drill of a volume that has no snapshot yet: back it up first. */
  NothingToDrill: 'VOLBACK_CATALOG_NOTHING_TO_DRILL',
  /** The path is not in the snapshot. */
  PathNotFound: 'VOLBACK_CATALOG_PATH_NOT_FOUND',
  /** A host name that several hosts carry: give the host id instead. */
  AmbiguousHost: 'VOLBACK_CATALOG_AMBIGUOUS_HOST',
  /** No repository operation (forget, prune, check) with that id. */
  OperationNotFound: 'VOLBACK_CATALOG_OPERATION_NOT_FOUND',
  /** A snapshot id prefix that matches more than one snapshot. */
  AmbiguousSnapshot: 'VOLBACK_CATALOG_AMBIGUOUS_SNAPSHOT',
  /** No notification channel of that name (or none at all, for a test of every channel). */
  ChannelNotFound: 'VOLBACK_CATALOG_CHANNEL_NOT_FOUND',
  /** A channel of the scheduler's configuration: change it there, not through the API. */
  ChannelNotChangeable: 'VOLBACK_CATALOG_CHANNEL_NOT_CHANGEABLE',
  /** The volume was removed from its host: there is nothing to back up. */
  VolumeRemoved: 'VOLBACK_CATALOG_VOLUME_REMOVED',
  /** A restore into a new volume whose name the host already uses. */
  VolumeExists: 'VOLBACK_CATALOG_VOLUME_EXISTS',
  /** The request's body is not JSON, or of another media type. */
  UnsupportedMediaType: 'VOLBACK_CATALOG_UNSUPPORTED_MEDIA_TYPE',
  PayloadTooLarge: 'VOLBACK_CATALOG_PAYLOAD_TOO_LARGE',
  /** No storage gateway answered (snapshot browsing and downloads go through them). */
  RepositoryUnavailable: 'VOLBACK_CATALOG_REPOSITORY_UNAVAILABLE',
  /** NATS did not take a command; nothing was sent. */
  MessagingUnavailable: 'VOLBACK_CATALOG_MESSAGING_UNAVAILABLE',
  /** Anything unexpected: details in the log, never in the answer. */
  Internal: 'VOLBACK_CATALOG_INTERNAL',
  /** A bad setting at start; the message names the variable. */
  ConfigInvalid: 'VOLBACK_CATALOG_CONFIG_INVALID',
} as const;
/** One of {@link CatalogErrorCode}. */
export type CatalogErrorCode = (typeof CatalogErrorCode)[keyof typeof CatalogErrorCode];

/** A field of a request that was wrong, and why. */
export interface FieldIssue {
  /** Where: `query.limit`, `params.hostId`, `body.target.volumeName`. */
  readonly field: string;
  readonly message: string;
}

/** Base of the catalog's errors: a stable code, the cause kept. */
export class CatalogError extends Error {
  override readonly name: string = 'CatalogError';
  readonly code: CatalogErrorCode;
  /** For bad input: the fields at fault. */
  readonly issues: readonly FieldIssue[];

  constructor(
    code: CatalogErrorCode,
    message: string,
    options: { cause?: unknown; issues?: readonly FieldIssue[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/** Something asked for does not exist (404). */
export class NotFoundError extends CatalogError {
  override readonly name = 'NotFoundError';
}

/** Bad input (400), naming the field. */
export class BadRequestError extends CatalogError {
  override readonly name = 'BadRequestError';

  constructor(code: CatalogErrorCode, field: string, message: string, options: { cause?: unknown } = {}) {
    super(code, `${field}: ${message}`, { ...options, issues: [{ field, message }] });
  }
}

/** The request conflicts with what the catalog knows (409). */
export class ConflictError extends CatalogError {
  override readonly name = 'ConflictError';
}

/** A dependency (gateways, NATS) did not answer (503); the message names which, not why. */
export class UnavailableError extends CatalogError {
  override readonly name = 'UnavailableError';
}

/** A bad configuration value; the process exits naming it. */
export class ConfigError extends CatalogError {
  override readonly name = 'ConfigError';
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(CatalogErrorCode.ConfigInvalid, `${variable}: ${message}`);
    this.variable = variable;
  }
}
