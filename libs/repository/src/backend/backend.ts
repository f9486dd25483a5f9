const FILE_ID = /^[0-9a-f]{64}$/;

/** The kinds of files in a restic repository, each in its own directory. */
export const FILE_TYPES = ['config', 'keys', 'locks', 'snapshots', 'index', 'data'] as const;
/** One of {@link FILE_TYPES}. */
export type FileType = (typeof FILE_TYPES)[number];

/** Names one file: its type and its name (64 hex digits; `config` for the config file). */
export interface FileHandle {
  readonly type: FileType;
  readonly name: string;
}

/** Part of a file: `length` bytes (to the end when omitted) from `offset`; a negative offset counts from the end. */
export interface ByteRange {
  readonly offset: number;
  readonly length?: number;
}

/** A file as a listing shows it. */
export interface FileInfo {
  readonly name: string;
  readonly size: number;
}

/**
 * Where a repository's files live: a small port, one implementation per storage (local
 * filesystem, S3), all held to one conformance suite (`backend-conformance.ts`).
 *
 * The layout is restic's: `config`, `keys/<id>`, `locks/<id>`, `snapshots/<id>`, `index/<id>` and
 * `data/<first two hex digits>/<id>`.
 */
/**
 * A file's bytes: one buffer, or pieces in order (a pack is its sealed blobs, then its header),
 * so that nobody has to join them into one buffer first.
 */
export type FileBody = Uint8Array | readonly Uint8Array[];

/** The pieces of a file body, in order. */
export function bodyPieces(body: FileBody): readonly Uint8Array[] {
  return body instanceof Uint8Array ? [body] : body;
}

export interface Backend {
  /** Where the repository is, for messages (never with credentials). */
  readonly location: string;
  /** Prepares an empty layout (directories, bucket); idempotent. */
  create(): Promise<void>;
  /** Stores a whole file atomically: readers see all of it or nothing, also after a crash. */
  save(handle: FileHandle, data: FileBody): Promise<void>;
  /**
   * Starts a file written piece by piece as its bytes come (a pack while it fills), so that the
   * writer never holds all of it; named and made visible only by {@link StagedFile.commit}, as
   * atomically as {@link save}. Only backends that stage files on a disk have it (the others
   * take whole bodies: an object store signs and may resend a body).
   */
  stage?(type: FileType): StagedFile;
  /**
   * Reads a file, or part of it. A range reaching past the end is cut at the end, so the result
   * may be shorter than `length` (empty when `offset` is at or past the end); a negative offset
   * further back than the start starts at the start. `VOLBACK_REPO_FILE_NOT_FOUND` when missing.
   * The buffer is the caller's: the repository may hand it to a worker thread (detaching it), so
   * a backend never returns one it keeps.
   */
  load(handle: FileHandle, range?: ByteRange): Promise<Buffer>;
  /** Size of a file; `VOLBACK_REPO_FILE_NOT_FOUND` when it does not exist. */
  stat(handle: FileHandle): Promise<FileInfo>;
  /** Removes a file; removing a missing file is not an error. */
  remove(handle: FileHandle): Promise<void>;
  /** Every file of one type (names only, any order). */
  list(type: FileType): AsyncIterable<FileInfo>;
  /**
   * How long (ms) a listing may still miss a file whose {@link save} has returned: the lock's
   * second check waits this long after writing its lock file (see `takeLock`). Unset: 100 ms
   * (restic waits 200 ms on every backend).
   */
  readonly listingLagMs?: number;
  /** Releases connections. */
  close(): Promise<void>;
  /**
   * Removes half-written files an interrupted writer left behind (only backends that stage
   * files have any). Call only under an exclusive lock: a live writer's files would go too.
   * Returns how many were removed.
   */
  removeTemporary?(): Promise<number>;
}

/** A file being written in pieces ({@link Backend.stage}). Calls must not overlap. */
export interface StagedFile {
  /** Appends pieces; once it resolves the caller may reuse or free them. */
  append(pieces: readonly Uint8Array[]): Promise<void>;
  /** Appends the last pieces and stores the file under its handle (durably, atomically). */
  commit(handle: FileHandle, last: readonly Uint8Array[]): Promise<void>;
  /** Removes what was written; after a failed append or commit, or instead of a commit. */
  discard(): Promise<void>;
}

/** The path of a file inside the layout, `/`-separated. */
export function layoutPath(handle: FileHandle): string {
  if (handle.type === 'config') return 'config';
  if (!isFileId(handle.name)) throw new RangeError(`not a file id: ${handle.name}`);
  if (handle.type === 'data') return `data/${handle.name.slice(0, 2)}/${handle.name}`;
  return `${handle.type}/${handle.name}`;
}

/** Whether `name` is a file id as restic writes them: 64 lowercase hex digits. */
export function isFileId(name: string): boolean {
  return FILE_ID.test(name);
}

/** Rejects ranges no caller should build (fractions, negative lengths) with a `RangeError`. */
export function checkRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset)) throw new RangeError(`not a byte offset: ${range.offset}`);
  if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
    throw new RangeError(`not a byte length: ${range.length}`);
  }
}

/** Where `range` starts in a file of `size` bytes and how many bytes of it exist. */
export function resolveRange(size: number, range: ByteRange): { start: number; length: number } {
  checkRange(range);
  const start = range.offset < 0 ? Math.max(0, size + range.offset) : Math.min(range.offset, size);
  const length = Math.min(range.length ?? size - start, size - start);
  return { start, length };
}
