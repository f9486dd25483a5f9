/** The kinds of files in a restic repository, each in its own directory. */
export const FILE_TYPES = ['config', 'keys', 'locks', 'snapshots', 'index', 'data'] as const;
/** One of {@link FILE_TYPES}. */
export type FileType = (typeof FILE_TYPES)[number];

/** Names one file: its type and its name (64 hex digits; `config` for the config file). */
export interface FileHandle {
  readonly type: FileType;
  readonly name: string;
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
export interface Backend {
  /** Where the repository is, for messages (never with credentials). */
  readonly location: string;
  /** Prepares an empty layout (directories, bucket); idempotent. */
  create(): Promise<void>;
  /** Stores a whole file atomically: readers see all of it or nothing, also after a crash. */
  save(handle: FileHandle, data: Uint8Array): Promise<void>;
  /** Reads a file, or `length` bytes from `offset` (a negative offset counts from the end). */
  load(handle: FileHandle, range?: { offset: number; length?: number }): Promise<Buffer>;
  /** Size of a file; `VOLBACK_REPO_FILE_NOT_FOUND` when it does not exist. */
  stat(handle: FileHandle): Promise<FileInfo>;
  /** Removes a file; removing a missing file is not an error. */
  remove(handle: FileHandle): Promise<void>;
  /** Every file of one type (names only, any order). */
  list(type: FileType): AsyncIterable<FileInfo>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** The path of a file inside the layout, `/`-separated. */
export function layoutPath(handle: FileHandle): string {
  if (handle.type === 'config') return 'config';
  if (!/^[0-9a-f]{64}$/.test(handle.name)) throw new RangeError(`not a file id: ${handle.name}`);
  if (handle.type === 'data') return `data/${handle.name.slice(0, 2)}/${handle.name}`;
  return `${handle.type}/${handle.name}`;
}
