import { availableParallelism } from 'node:os';
import type { Backend, FileHandle, StagedFile } from './backend/backend.ts';
import { randomKey, decrypt, encrypt, type CryptoKey } from './crypto/crypto.ts';
import { NativeSealer, sealsNatively } from './crypto/native-blobs.ts';
import { plainLength, SealPool, type SealedPart } from './crypto/seal-pool.ts';
import { RepositoryError, RepositoryErrorCode } from './errors.ts';
import { decodeConfig, encodeConfig, type RepoConfig } from './format/config.ts';
import { isId, parseGoTime, randomId, sha256Hex } from './format/ids.ts';
import { BlobIndex, indexFileFor, parseIndexFile, type IndexEntry } from './format/index-file.ts';
import { listKeys, removeKey, saveKey, unlockWithPassword, type KeyInfo } from './keys.ts';
import { isStaleLock, removeStaleLocks, takeLock, type LockFiles, type RepositoryLock } from './locks.ts';
import {
  PACK_TAIL_GUESS,
  PackBuilder,
  parsePackHeader,
  type BlobType,
  type PackedBlob,
} from './format/pack.ts';
import { parseSnapshot, type LockFile, type Snapshot } from './format/snapshot.ts';
import { decodeTree, encodeTree, type TreeNode } from './format/tree.ts';
import { compressBlob, decompress } from './format/compression.ts';
import { release } from './format/release.ts';
import { decodeUnpacked, encodeUnpacked } from './format/unpacked.ts';

/** Tuning of a repository handle. */
export interface RepositoryOptions {
  /** Target pack size; restic's default is 16 MiB. */
  readonly packSize?: number;
  /** Packs uploaded at once. */
  readonly uploadConcurrency?: number;
  /**
   * Worker threads that compress, encrypt and decrypt blobs (0: do it on the calling thread).
   * Default: one fewer than the cores, at least one.
   */
  readonly sealWorkers?: number;
}

const MiB = 1024 * 1024;
/** {@link Repository.loadBlobs}: stored bytes one backend read may cover. */
const RUN_SPAN = 8 * MiB;
/** … bytes of other blobs it may read past to join two of the wanted ones. */
const RUN_GAP = MiB;
/**
 * … and for {@link Repository.loadTrees}: trees are small and a read from the page cache is cheap
 * (its trip through libuv's thread pool is what costs), so only what lies close is joined.
 */
const TREE_RUN_GAP = 64 * 1024;
/** … plaintext bytes one read may yield. */
const RUN_PLAIN = 16 * MiB;
/** … blobs one read may yield (a sparse file repeats its zero blob). */
const RUN_BLOBS = 512;
/** … bytes (read and plaintext) one call keeps ahead of its consumer. */
const LOAD_AHEAD = 24 * MiB;
/** … bytes all calls together keep ahead of their consumers (one read each may go over). */
const LOAD_BUDGET = 48 * MiB;

/** One backend read of {@link Repository.loadBlobs}: neighbouring blobs of one pack. */
interface BlobRun {
  readonly packId: string;
  start: number;
  end: number;
  /** Distinct blobs to open, in the order first wanted. */
  readonly parts: Array<IndexEntry>;
  /** For each wanted id in turn, its place in `parts`. */
  readonly order: number[];
  plainBytes: number;
  /** A wanted id the index does not know: the run yields nothing and fails there. */
  readonly missing?: string;
}

/**
 * Groups consecutive wanted blobs that sit near each other in one pack into runs (at most `gap`
 * bytes of other blobs between them).
 */
function planRuns(index: BlobIndex, type: BlobType, ids: readonly string[], gap = RUN_GAP): BlobRun[] {
  const runs: BlobRun[] = [];
  let run: BlobRun | undefined;
  let places = new Map<number, number>();
  for (const id of ids) {
    const entry = index.get(type, id);
    if (!entry) {
      runs.push({ packId: '', start: 0, end: 0, parts: [], order: [], plainBytes: 0, missing: id });
      run = undefined;
      continue;
    }
    const end = entry.offset + entry.length;
    const known = run?.packId === entry.packId ? places.get(entry.offset) : undefined;
    if (run && known !== undefined && run.order.length < RUN_BLOBS) {
      run.order.push(known);
      continue;
    }
    const fits =
      run?.packId === entry.packId &&
      run.order.length < RUN_BLOBS &&
      entry.offset <= run.end + gap &&
      end >= run.start - gap &&
      Math.max(run.end, end) - Math.min(run.start, entry.offset) <= RUN_SPAN &&
      run.plainBytes + plainLength(entry) <= RUN_PLAIN;
    if (!fits || !run) {
      run = { packId: entry.packId, start: entry.offset, end, parts: [], order: [], plainBytes: 0 };
      places = new Map();
      runs.push(run);
    }
    run.start = Math.min(run.start, entry.offset);
    run.end = Math.max(run.end, end);
    places.set(entry.offset, run.parts.length);
    run.order.push(run.parts.length);
    run.parts.push(entry);
    run.plainBytes += plainLength(entry);
  }
  return runs;
}

/** Blobs up to this size may be sealed or opened on the calling thread (see saveBlob, loadBlob). */
const INLINE_BLOB_BYTES = 64 * 1024;
/** File contents sealed on the calling thread before the seal workers start, at most. */
const INLINE_SEAL_BYTES = 4 * 1024 * 1024;
/**
 * Blobs up to this size are sealed in batches ({@link Repository.saveBlob}): a worker job per
 * blob of a few KiB costs more in messages and thread wake-ups than the sealing itself.
 */
const BATCH_BLOB_BYTES = 64 * 1024;
/** A batch is sent to a seal worker once it holds this many blobs, or this many bytes. */
const BATCH_BLOBS = 256;
const BATCH_BYTES = 1024 * 1024;

/** Small blobs of one type waiting to be sealed together. */
interface SealBatch {
  readonly blobs: Array<{
    id: string;
    data: Uint8Array;
    handedOver: boolean;
    onSealed: SaveBlobOptions['onSealed'];
  }>;
  bytes: number;
}
/**
 * An index file is written once the packs written and not yet indexed hold this many blobs, as
 * restic and rustic do (50,000): with one index file for a whole session, a backup of 127,000 small
 * files held every entry until its end and then built a 20 MB JSON text at once (50 MiB of the
 * CLI's peak, and the gateway's at each commit), growing with the volume.
 */
const INDEX_MAX_BLOBS = 50_000;
/** Snapshot files loaded at once by a listing (each a small read: this hides the store's latency). */
const SNAPSHOT_LOADS = 8;

/** `value` and everything in it made read-only (a snapshot shared by every listing). */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** How {@link Repository.saveBlob} may treat the plaintext it is given. */
export interface SaveBlobOptions {
  /**
   * The caller hands the buffer over and will not touch it again: it may be moved to a worker
   * thread instead of copied, or freed once stored (a buffer that spans its whole ArrayBuffer is
   * then detached; see {@link release}).
   */
  readonly handOver?: boolean;
  /**
   * Told the bytes the blob takes in its pack once it is compressed and encrypted (not called
   * when the repository already had it): what {@link SavedBlob.storedLength} cannot say while
   * the blob is still being sealed in a worker.
   */
  readonly onSealed?: (storedLength: number) => void;
  /**
   * The id came with the blob from elsewhere (a gateway's client): the plaintext is checked
   * against it, in a worker, before anything is stored, and the call resolves once the blob is
   * in its pack. A mismatch throws {@link RepositoryErrorCode.BlobIdMismatch} and changes nothing:
   * the blob never counts as present meanwhile, so a good copy of it sent at the same time is not
   * taken for a duplicate of a bad one.
   */
  readonly verify?: boolean;
}

/** Options of {@link Repository.loadBlobs}. */
export interface LoadBlobsOptions {
  /**
   * False: each blob's MAC is verified (it was written with the key and not altered since), but
   * its plaintext is not hashed against its id, because the reader does that itself (the storage
   * gateway's clients check every blob they receive). Default true.
   */
  readonly checkIds?: boolean;
}

/** A blob stored by {@link Repository.saveBlob}. */
export interface SavedBlob {
  readonly id: string;
  /** False when the repository already had it (deduplicated). */
  readonly added: boolean;
  /** Bytes the blob takes in its pack (0 when deduplicated). */
  readonly storedLength: number;
}

/** A pack being filled, and its file when the backend stages packs on a disk as they fill. */
interface OpenPack {
  readonly builder: PackBuilder;
  readonly staged: StagedFile | undefined;
  /** The last write of its blobs to the staged file (writes never overlap). */
  writing: Promise<void> | undefined;
  /** Why a write to the staged file failed: the pack is lost, the backup fails at its flush. */
  failure?: unknown;
}

/**
 * Bytes of a filling pack held in memory before they go to its staged file: a pack of 16 MiB is
 * never whole in memory, and the writes stay large.
 */
const STAGE_BYTES = 4 * 1024 * 1024;

/**
 * A restic repository (format v1 or v2), opened with a password. Writes follow restic's order:
 * packs, then the index that names them, then the snapshot (see README).
 */
export class Repository {
  readonly backend: Backend;
  readonly config: RepoConfig;
  #index = new BlobIndex();
  readonly #key: CryptoKey;
  readonly #packSize: number;
  readonly #uploadConcurrency: number;
  readonly #packers = new Map<BlobType, OpenPack>();
  readonly #pending = new Set<string>();
  readonly #uploads = new Set<Promise<void>>();
  readonly #written = new Map<string, PackedBlob[]>();
  /** Packs are being copied for a prune ({@link repack}): their caller indexes them, not uploads. */
  #repacking = false;
  /** Packs written since the last {@link flush} (some already indexed ahead of it). */
  #packsSinceFlush = 0;
  #uploadError: unknown;
  readonly #sealWorkers: number;
  /** Bytes of file contents sealed on the calling thread so far ({@link INLINE_SEAL_BYTES}). */
  #inlineSealed = 0;
  /** Seal workers, or without threads the addon ({@link sealsNatively}). */
  #pool: SealPool | NativeSealer | undefined;
  readonly #sealing = new Set<Promise<void>>();
  /** Small blobs waiting for a seal worker, by type ({@link BATCH_BLOB_BYTES}). */
  readonly #batches = new Map<BlobType, SealBatch>();
  /**
   * Snapshot files read so far, by name. A snapshot file never changes (its name is the hash of
   * its content, checked on load), so a listing reads only the files it has not seen.
   */
  readonly #snapshotFiles = new Map<string, Snapshot>();
  /** Bytes new blobs take in packs, since this handle was opened (compressed and encrypted). */
  #storedBytes = 0;
  /** Bytes {@link loadBlobs} calls hold ahead of their consumers. */
  #loadingBytes = 0;

  private constructor(backend: Backend, config: RepoConfig, key: CryptoKey, options: RepositoryOptions) {
    this.backend = backend;
    this.config = config;
    this.#key = key;
    this.#packSize = options.packSize ?? 16 * 1024 * 1024;
    this.#uploadConcurrency = options.uploadConcurrency ?? 2;
    this.#sealWorkers = options.sealWorkers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  }

  /** Creates a new repository (format v2 unless asked otherwise) with one key for `password`. */
  static async init(
    backend: Backend,
    password: string,
    options: RepositoryOptions & {
      version?: 1 | 2;
      chunkerPolynomial: string;
      kdf?: { N: number; r: number; p: number };
    },
  ): Promise<Repository> {
    const existing = await backend
      .stat({ type: 'config', name: 'config' })
      .catch((error: RepositoryError) => {
        if (error.code === RepositoryErrorCode.FileNotFound) return undefined;
        throw error;
      });
    if (existing)
      throw new RepositoryError(
        RepositoryErrorCode.AlreadyExists,
        `${backend.location} already holds a repository`,
      );
    await backend.create();
    const master = randomKey();
    await saveKey(backend, master, password, options.kdf);
    const config: RepoConfig = {
      version: options.version ?? 2,
      id: randomId(),
      chunker_polynomial: options.chunkerPolynomial,
    };
    // The config comes last: until it exists, the location is not a repository.
    await backend.save({ type: 'config', name: 'config' }, encodeConfig(master, config));
    return new Repository(backend, config, master, options);
  }

  /** Opens a repository with one of its passwords. */
  static async open(
    backend: Backend,
    password: string,
    options: RepositoryOptions = {},
  ): Promise<Repository> {
    let rawConfig: Buffer;
    try {
      rawConfig = await backend.load({ type: 'config', name: 'config' });
    } catch (error) {
      if ((error as RepositoryError).code === RepositoryErrorCode.FileNotFound) {
        throw new RepositoryError(
          RepositoryErrorCode.NotARepository,
          `no repository at ${backend.location} (no config file)`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    return unlockWithPassword(
      backend,
      password,
      (master) => new Repository(backend, decodeConfig(master, rawConfig), master, options),
    );
  }

  get version(): 1 | 2 {
    return this.config.version;
  }

  /** Adds a key file for another password; returns its id. */
  addKey(password: string): Promise<string> {
    return saveKey(this.backend, this.#key, password);
  }

  /** Key files with their metadata. */
  listKeys(): Promise<KeyInfo[]> {
    return listKeys(this.backend);
  }

  /** Removes a key file; refuses to remove the last one. */
  removeKey(id: string): Promise<void> {
    return removeKey(this.backend, id);
  }

  // ---- files in the unpacked format ----

  async #saveUnpacked(type: 'snapshots' | 'index' | 'locks', document: unknown): Promise<string> {
    const bytes = encodeUnpacked(this.#key, document, this.version);
    const name = sha256Hex(bytes);
    await this.backend.save({ type, name }, bytes);
    return name;
  }

  async #loadUnpacked(handle: FileHandle): Promise<unknown> {
    const bytes = await this.backend.load(handle);
    if (sha256Hex(bytes) !== handle.name) {
      throw new RepositoryError(
        RepositoryErrorCode.Malformed,
        `${handle.type}/${handle.name}: content does not match its name`,
      );
    }
    return decodeUnpacked(this.#key, bytes, `${handle.type}/${handle.name}`);
  }

  // ---- index ----

  /** Where each blob is, as of the last {@link loadIndex} plus what this handle wrote since. */
  get index(): BlobIndex {
    return this.#index;
  }

  /**
   * Reads every index file into a fresh in-memory index. Rebuilt, not added to: on a handle that
   * lives across operations, packs a prune removed must not stay known (a later backup would
   * refer to them), and no pack may be listed twice.
   */
  async loadIndex(): Promise<void> {
    const index = new BlobIndex();
    for await (const { name } of this.backend.list('index')) {
      index.addFile(parseIndexFile(await this.#loadUnpacked({ type: 'index', name }), name));
    }
    this.#index = index;
  }

  /** Reads a pack's header (for check and for rebuilding an index). */
  async readPackHeader(packId: string): Promise<PackedBlob[]> {
    const { size } = await this.backend.stat({ type: 'data', name: packId });
    let tail = await this.backend.load(
      { type: 'data', name: packId },
      { offset: -Math.min(size, PACK_TAIL_GUESS) },
    );
    let parsed = parsePackHeader(this.#key, tail, size, packId);
    if ('needed' in parsed) {
      tail = await this.backend.load({ type: 'data', name: packId }, { offset: -parsed.needed });
      parsed = parsePackHeader(this.#key, tail, size, packId);
      if ('needed' in parsed)
        throw new RepositoryError(RepositoryErrorCode.Malformed, `pack ${packId}: header unreadable`);
    }
    return parsed.blobs;
  }

  // ---- blobs ----

  /** True when the repository has (or is writing) this blob. */
  hasBlob(type: BlobType, id: string): boolean {
    return this.index.has(type, id) || this.#pending.has(BlobIndex.key(type, id));
  }

  /** Bytes new blobs took in packs since this handle was opened (after compression and encryption). */
  get storedBytes(): number {
    return this.#storedBytes;
  }

  /** Starts the seal workers now, not with the first blobs worth them: many blobs are coming. */
  warmSealing(): void {
    this.#sealPool();
  }

  /**
   * Opens blobs with a worker per core from now on, not one fewer: for a caller that leaves its
   * own thread mostly idle (a restore of large files, whose files are written on the thread pool).
   */
  openWithEveryCore(): void {
    if (this.#sealWorkers === 0) return;
    this.#sealPool()?.grow(Math.max(this.#sealWorkers, Math.min(4, availableParallelism())));
  }

  #sealPool(): SealPool | NativeSealer | undefined {
    if (this.#sealWorkers > 0 && !this.#pool)
      this.#pool = sealsNatively ? new NativeSealer(this.#key) : new SealPool(this.#key, this.#sealWorkers);
    return this.#pool;
  }

  /** Stops the worker threads; the handle can still be used (they start again on demand). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await Promise.all(this.#sealing);
    await pool?.close();
  }

  #addToPack(
    type: BlobType,
    id: string,
    sealed: Buffer | readonly Buffer[],
    uncompressedLength: number | undefined,
    onSealed?: (storedLength: number) => void,
  ): Promise<void> {
    const pack = this.#openPack(type);
    const blob = pack.builder.addSealed(id, sealed, uncompressedLength);
    this.#storedBytes += blob.length;
    onSealed?.(blob.length);
    return pack.builder.size >= this.#packSize ? this.#finishPack(type) : this.#stage(pack);
  }

  #openPack(type: BlobType): OpenPack {
    let pack = this.#packers.get(type);
    if (!pack) {
      pack = {
        builder: new PackBuilder(this.#key, type),
        staged: this.backend.stage?.('data'),
        writing: undefined,
      };
      this.#packers.set(type, pack);
    }
    return pack;
  }

  /**
   * Writes a filling pack's blobs to its staged file once {@link STAGE_BYTES} of them are held, and
   * frees them; resolves when written, so that callers wait for the disk rather than pile up.
   */
  #stage(pack: OpenPack): Promise<void> {
    const staged = pack.staged;
    if (!staged || pack.builder.heldBytes < STAGE_BYTES) return Promise.resolve();
    const pieces = pack.builder.takePieces();
    const before = pack.writing ?? Promise.resolve();
    pack.writing = before
      .then(() => (pack.failure ? undefined : staged.append(pieces)))
      .catch((error: unknown) => {
        pack.failure ??= error;
        this.#uploadError ??= error;
      })
      .finally(() => {
        for (const piece of pieces) release(piece);
      });
    return pack.writing;
  }

  /**
   * Stores a blob unless the repository has it. In format v2 it is zstd-compressed unless that
   * would not pay (random or already compressed data: {@link compressBlob}); compression
   * and encryption run in worker threads while the caller goes on reading (at most a few blobs
   * in flight, so memory stays bounded). The pack is written when full or on {@link flush};
   * `storedLength` is known only there ({@link storedBytes}).
   */
  async saveBlob(
    type: BlobType,
    plaintext: Uint8Array,
    id = sha256Hex(plaintext),
    options: SaveBlobOptions = {},
  ): Promise<SavedBlob> {
    if (this.#uploadError) throw this.#uploadError;
    if (this.hasBlob(type, id)) {
      if (options.handOver) release(plaintext);
      return { id, added: false, storedLength: 0 };
    }
    if (options.verify) return this.#saveVerified(type, plaintext, id, options);
    this.#pending.add(BlobIndex.key(type, id));
    const compress = this.version === 2;
    // Taken now: a plaintext handed over to a worker is detached here.
    const plaintextLength = plaintext.length;
    // Small blobs are sealed here until the workers have started (trees always, file contents
    // up to a few MiB): a backup that finds little changed starts no thread for it.
    const inline =
      !this.#pool &&
      plaintextLength <= INLINE_BLOB_BYTES &&
      (type === 'tree' || this.#inlineSealed + plaintextLength <= INLINE_SEAL_BYTES);
    if (inline && type === 'data') this.#inlineSealed += plaintextLength;
    const pool = inline ? undefined : this.#sealPool();
    if (!pool) {
      const before = this.#storedBytes;
      const frame = compress ? compressBlob(plaintext) : undefined;
      const sealed = encrypt(this.#key, frame ?? plaintext);
      release(frame);
      if (options.handOver) release(plaintext);
      await this.#addToPack(type, id, sealed, frame ? plaintextLength : undefined, options.onSealed);
      return { id, added: true, storedLength: this.#storedBytes - before };
    }
    if (plaintextLength <= BATCH_BLOB_BYTES) {
      await this.#batch(type, id, plaintext, options);
      return { id, added: true, storedLength: 0 };
    }
    while (this.#sealing.size >= 2 * this.#sealWorkers + 2) await Promise.race(this.#sealing);
    const job: Promise<void> = pool
      .seal(plaintext, compress, options.handOver)
      .then(({ sealed, compressed }) =>
        this.#addToPack(type, id, sealed, compressed ? plaintextLength : undefined, options.onSealed),
      )
      .catch((error: unknown) => {
        this.#uploadError ??= error;
      })
      .finally(() => this.#sealing.delete(job));
    this.#sealing.add(job);
    return { id, added: true, storedLength: 0 };
  }

  /**
   * Adds a small blob to its type's batch (a copy of it, unless handed over), and sends the
   * batch to a seal worker once it is full; {@link flush} sends what is left.
   */
  async #batch(type: BlobType, id: string, plaintext: Uint8Array, options: SaveBlobOptions): Promise<void> {
    let batch = this.#batches.get(type);
    if (!batch) this.#batches.set(type, (batch = { blobs: [], bytes: 0 }));
    const handedOver = options.handOver === true;
    batch.blobs.push({
      id,
      data: handedOver ? plaintext : Buffer.from(plaintext),
      handedOver,
      onSealed: options.onSealed,
    });
    batch.bytes += plaintext.length;
    if (batch.blobs.length >= BATCH_BLOBS || batch.bytes >= BATCH_BYTES) await this.#sealBatch(type);
  }

  /** Seals a type's waiting small blobs in one worker job and adds them to their pack. */
  async #sealBatch(type: BlobType): Promise<void> {
    const batch = this.#batches.get(type);
    if (!batch) return;
    this.#batches.delete(type);
    const pool = this.#sealPool()!;
    // Two batches a worker (one sealed, one waiting): more only held more memory (256 MiB of
    // small files: peak RSS 260–280 MiB with four, 245–249 with two, in the same time).
    while (this.#sealing.size >= 2 * this.#sealWorkers) await Promise.race(this.#sealing);
    const { blobs } = batch;
    const lengths = blobs.map((blob) => blob.data.length);
    // sealMany copies the plaintexts into the job before it returns: handed-over ones go now.
    const sealing = pool.sealMany(
      blobs.map((blob) => blob.data),
      this.version === 2,
    );
    for (const blob of blobs) if (blob.handedOver) release(blob.data, 0);
    const job: Promise<void> = sealing
      .then(async (sealed) => {
        for (const [i, blob] of blobs.entries()) {
          const { sealed: bytes, compressed } = sealed[i]!;
          await this.#addToPack(type, blob.id, bytes, compressed ? lengths[i] : undefined, blob.onSealed);
        }
      })
      .catch((error: unknown) => {
        this.#uploadError ??= error;
      })
      .finally(() => this.#sealing.delete(job));
    this.#sealing.add(job);
  }

  /** {@link saveBlob} with `verify`: checked and sealed in a worker, counted as present only then. */
  async #saveVerified(
    type: BlobType,
    plaintext: Uint8Array,
    id: string,
    options: SaveBlobOptions,
  ): Promise<SavedBlob> {
    const pool = this.#sealPool();
    if (!pool) {
      const actual = sha256Hex(plaintext);
      if (actual !== id) throw mismatch(`the body hashes to ${actual}, not to ${id}: nothing was stored`);
      return this.saveBlob(type, plaintext, id, { ...options, verify: false });
    }
    const length = plaintext.length;
    const added = await this.#sealChecked(
      pool
        .seal(plaintext, this.version === 2, options.handOver, id)
        .then(({ sealed, compressed }) => [
          { id, sealed, uncompressedLength: compressed ? length : undefined },
        ]),
      type,
      options.onSealed,
    );
    return { id, added: added[0]!, storedLength: 0 };
  }

  /**
   * Adds blobs sealed in a worker after checking their ids (`sealing`) to packs, those the
   * repository still lacks; resolves with which were added, once they are in their packs. A
   * mismatch is the caller's error, not the repository's: it fails only this call.
   */
  async #sealChecked(
    sealing: Promise<
      Array<{ id: string; sealed: Buffer | readonly Buffer[]; uncompressedLength: number | undefined }>
    >,
    type: BlobType,
    onSealed: ((storedLength: number) => void) | undefined,
  ): Promise<boolean[]> {
    while (this.#sealing.size >= 2 * this.#sealWorkers + 2) await Promise.race(this.#sealing);
    const job = sealing.then(async (blobs) => {
      const added: boolean[] = [];
      for (const blob of blobs) {
        // Another copy may have come in while this one was checked.
        if (this.hasBlob(type, blob.id)) {
          added.push(false);
          continue;
        }
        this.#pending.add(BlobIndex.key(type, blob.id));
        added.push(true);
        await this.#addToPack(type, blob.id, blob.sealed, blob.uncompressedLength, onSealed);
      }
      return added;
    });
    const tracked: Promise<void> = job
      .then(
        () => undefined,
        (error: unknown) => {
          if ((error as RepositoryError).code !== RepositoryErrorCode.BlobIdMismatch)
            this.#uploadError ??= error;
        },
      )
      .finally(() => this.#sealing.delete(tracked));
    this.#sealing.add(tracked);
    return job;
  }

  /**
   * {@link saveBlob} of several small blobs of one type: those the repository lacks are sealed
   * together in one worker job (a job per blob would cost more than the sealing), and the call
   * resolves once they are in their packs. `added[i]` is false when the repository had blob `i`
   * (or it came earlier in `blobs`). The buffers are copied, never taken. With `verify`, every
   * blob is checked against its id first, and one that does not match fails the call with
   * nothing stored ({@link SaveBlobOptions.verify}).
   */
  async saveBlobs(
    type: BlobType,
    blobs: ReadonlyArray<{ readonly id: string; readonly data: Uint8Array }>,
    options: Pick<SaveBlobOptions, 'onSealed' | 'verify'> = {},
  ): Promise<boolean[]> {
    if (this.#uploadError) throw this.#uploadError;
    const onSealed = options.onSealed ? { onSealed: options.onSealed } : {};
    const pool = this.#sealPool();
    if (!pool) {
      if (options.verify) {
        for (const [i, { id, data }] of blobs.entries()) {
          const actual = sha256Hex(data);
          if (actual !== id)
            throw mismatch(
              `blob ${i + 1} of ${blobs.length} hashes to ${actual}, not to ${id}: nothing was stored`,
            );
        }
      }
      const added: boolean[] = [];
      for (const { id, data } of blobs) added.push((await this.saveBlob(type, data, id, onSealed)).added);
      return added;
    }
    // Blobs already present are not sealed again, but checked when asked to (a request is refused whole).
    const fresh = blobs.map((b) => !this.hasBlob(type, b.id));
    const sealed = options.verify ? blobs : blobs.filter((_, i) => fresh[i]);
    const sealing = pool
      .sealMany(
        sealed.map((b) => b.data),
        this.version === 2,
        options.verify ? sealed.map((b) => b.id) : undefined,
      )
      .then((results) =>
        results.flatMap(({ sealed: bytes, compressed }, i) => {
          const blob = sealed[i]!;
          if (options.verify && !fresh[i]) return [];
          return [
            { id: blob.id, sealed: bytes, uncompressedLength: compressed ? blob.data.length : undefined },
          ];
        }),
      );
    const added = await this.#sealChecked(sealing, type, options.onSealed);
    // In the order of `blobs`: those found present before sealing were not added.
    let next = 0;
    return fresh.map((isFresh) => (isFresh ? added[next++]! : false));
  }

  async #finishPack(type: BlobType): Promise<void> {
    const pack = this.#packers.get(type);
    if (!pack || pack.builder.count === 0) return;
    this.#packers.delete(type);
    while (this.#uploads.size >= this.#uploadConcurrency) await Promise.race(this.#uploads);
    const { id, pieces, blobs } = pack.builder.finish();
    const handle: FileHandle = { type: 'data', name: id };
    const staged = pack.staged;
    const stored = staged
      ? (pack.writing ?? Promise.resolve()).then(() => {
          if (pack.failure) throw pack.failure;
          return staged.commit(handle, pieces);
        })
      : this.backend.save(handle, pieces);
    const upload = stored
      .then(
        () => {
          this.#written.set(id, [...blobs]);
          this.#packsSinceFlush++;
          return this.#indexAhead();
        },
        async (error: unknown) => {
          this.#uploadError ??= error;
          await staged?.discard();
        },
      )
      .finally(() => {
        this.#uploads.delete(upload);
        // Written (or failed for good): nothing reads a pack's pieces again.
        for (const piece of pieces) release(piece);
      });
    this.#uploads.add(upload);
  }

  /**
   * Writes every open pack, waits for all uploads, then writes an index file naming them. After
   * it resolves the blobs are durably in the repository and a snapshot may refer to them. Resolves
   * with the packs written since the last flush (those indexed ahead of it included).
   */
  async flush(): Promise<number> {
    try {
      for (const type of [...this.#batches.keys()]) await this.#sealBatch(type);
      while (this.#sealing.size) await Promise.all(this.#sealing);
      for (const type of [...this.#packers.keys()]) await this.#finishPack(type);
      await Promise.all(this.#uploads);
      if (this.#uploadError) {
        await this.#discardUnindexed(undefined);
        throw this.#uploadError;
      }
      await this.#writeIndex();
      return this.#packsSinceFlush;
    } finally {
      this.#packsSinceFlush = 0;
    }
  }

  /**
   * Writes an index file for the packs written so far once they hold {@link INDEX_MAX_BLOBS} blobs
   * (not while repacking). A failure is the session's, as a failed upload is: the next flush
   * reports it, and the packs no index names are removed.
   */
  async #indexAhead(): Promise<void> {
    if (this.#repacking || this.#uploadError) return;
    let blobs = 0;
    for (const packed of this.#written.values()) blobs += packed.length;
    if (blobs < INDEX_MAX_BLOBS) return;
    await this.#writeIndex().catch((error: unknown) => {
      this.#uploadError ??= error;
    });
  }

  /** Writes one index file naming the packs written and not yet indexed; then their blobs are indexed. */
  async #writeIndex(): Promise<void> {
    if (this.#written.size === 0) return;
    const packs = new Map(this.#written);
    // Packs that land while it is written go into the next index file.
    this.#written.clear();
    const bytes = encodeUnpacked(this.#key, indexFileFor(packs), this.version);
    const indexName = sha256Hex(bytes);
    try {
      await this.backend.save({ type: 'index', name: indexName }, bytes);
    } catch (error) {
      for (const [packId, packed] of packs) this.#written.set(packId, packed);
      await this.#discardUnindexed(indexName);
      throw error;
    }
    for (const [packId, packed] of packs) for (const b of packed) this.index.add({ ...b, packId });
    for (const packed of packs.values())
      for (const b of packed) this.#pending.delete(BlobIndex.key(b.type, b.id));
  }

  /**
   * A flush failed (a pack or the index could not be written: disk full, storage refusing): the
   * packs written since the last index are named by no index, so they are removed now rather than
   * left for the next prune. Not when the index file turns out to exist after all (a write that
   * failed after it landed): then the packs are referenced and must stay. Their blobs count as
   * missing again, so a retried session sends them again.
   */
  async #discardUnindexed(indexName: string | undefined): Promise<void> {
    if (indexName !== undefined) {
      const landed = await this.backend.stat({ type: 'index', name: indexName }).then(
        () => true,
        (error: unknown) =>
          !(error instanceof RepositoryError && error.code === RepositoryErrorCode.FileNotFound),
      );
      if (landed) return; // or unknown: keeping packs is always safe, removing them is not
    }
    for (const [packId, blobs] of this.#written) {
      await this.backend.remove({ type: 'data', name: packId }).catch(() => undefined);
      for (const b of blobs) this.#pending.delete(BlobIndex.key(b.type, b.id));
    }
    this.#written.clear();
  }

  /**
   * Copies blobs into new packs without re-indexing them elsewhere (prune). Returns the new packs
   * and their blobs; the caller writes the index that names them.
   */
  async repack(entries: readonly IndexEntry[]): Promise<Map<string, PackedBlob[]>> {
    this.#repacking = true;
    try {
      return await this.#repack(entries);
    } finally {
      this.#repacking = false;
    }
  }

  async #repack(entries: readonly IndexEntry[]): Promise<Map<string, PackedBlob[]>> {
    const before = new Set(this.#written.keys());
    for (const e of entries) {
      const plain = await this.loadBlob(e.type, e.id);
      this.#pending.delete(BlobIndex.key(e.type, e.id));
      const pack = this.#openPack(e.type);
      const frame = this.version === 2 ? compressBlob(plain) : undefined;
      pack.builder.add(e.id, frame ?? plain, frame ? plain.length : undefined);
      release(frame);
      if (pack.builder.size >= this.#packSize) await this.#finishPack(e.type);
      else await this.#stage(pack);
    }
    for (const type of [...this.#packers.keys()]) await this.#finishPack(type);
    await Promise.all(this.#uploads);
    if (this.#uploadError) throw this.#uploadError;
    const fresh = new Map<string, PackedBlob[]>();
    for (const [packId, blobs] of this.#written) if (!before.has(packId)) fresh.set(packId, blobs);
    for (const packId of fresh.keys()) this.#written.delete(packId);
    return fresh;
  }

  /** Writes one index file naming these packs, superseding the given index files. */
  async saveIndex(
    packs: ReadonlyMap<string, readonly PackedBlob[]>,
    supersedes: readonly string[] = [],
  ): Promise<string> {
    return this.#saveUnpacked('index', indexFileFor(packs, supersedes));
  }

  /** Reads, verifies (MAC and SHA-256) and decompresses one blob. */
  async loadBlob(type: BlobType, id: string): Promise<Buffer> {
    const entry = this.index.get(type, id);
    if (!entry)
      throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${type} blob ${id} is not in the index`);
    const sealed = await this.backend.load(
      { type: 'data', name: entry.packId },
      { offset: entry.offset, length: entry.length },
    );
    if (sealed.length !== entry.length) {
      throw new RepositoryError(
        RepositoryErrorCode.Malformed,
        `pack ${entry.packId} is shorter than its index says`,
      );
    }
    // A small blob (a tree, mostly) is opened here: cheaper than the trip to a worker and back,
    // which a walk would otherwise wait for at every directory.
    const pool = sealed.length > INLINE_BLOB_BYTES ? this.#sealPool() : undefined;
    if (pool)
      return pool.open(sealed, entry.uncompressedLength, id, `${type} blob ${id} in pack ${entry.packId}`);
    return this.#openHere(sealed, entry);
  }

  /** Opens a blob read from its pack on this thread: verified, decrypted, decompressed, checked. */
  #openHere(sealed: Uint8Array, entry: IndexEntry): Buffer {
    const what = `${entry.type} blob ${entry.id} in pack ${entry.packId}`;
    let plain: Buffer;
    try {
      plain = decrypt(this.#key, sealed);
      if (entry.uncompressedLength !== undefined) plain = decompress(plain, entry.uncompressedLength);
    } catch (cause) {
      throw new RepositoryError(RepositoryErrorCode.Authentication, `${what} is damaged`, { cause });
    }
    if (sha256Hex(plain) !== entry.id) {
      throw new RepositoryError(RepositoryErrorCode.Authentication, `${what} does not match its id`);
    }
    return plain;
  }

  /**
   * Reads, verifies and decompresses blobs, yielding them in the order of `ids` (an id may
   * repeat). Neighbouring blobs of one pack are read with one backend read and opened together
   * in a worker; reads run ahead of the consumer within a bounded number of bytes. Throws, after
   * yielding the blobs before it, at the first blob that is missing or damaged (as
   * {@link loadBlob}). Yielded buffers may be views of a larger one: copy what is kept long.
   * (`_bytes` is the hint a blob source may take; reads here are planned from the index.)
   */
  async *loadBlobs(
    type: BlobType,
    ids: readonly string[],
    _bytes?: number,
    options: LoadBlobsOptions = {},
  ): AsyncGenerator<Buffer, void, undefined> {
    const runs = planRuns(this.index, type, ids);
    const cost = (run: BlobRun) => run.end - run.start + run.plainBytes;
    const ahead: Array<{ run: BlobRun; opened: Promise<Array<Buffer | Error>> }> = [];
    let aheadBytes = 0;
    let next = 0;
    try {
      while (ahead.length > 0 || next < runs.length) {
        while (next < runs.length) {
          const bytes = cost(runs[next]!);
          const room = aheadBytes + bytes <= LOAD_AHEAD && this.#loadingBytes + bytes <= LOAD_BUDGET;
          if (ahead.length > 0 && !room) break;
          const run = runs[next++]!;
          const opened = this.#openRun(type, run, options.checkIds !== false);
          opened.catch(() => undefined); // awaited in turn; must not go unhandled meanwhile
          ahead.push({ run, opened });
          aheadBytes += bytes;
          this.#loadingBytes += bytes;
        }
        const { run, opened } = ahead[0]!;
        const blobs = await opened;
        for (const place of run.order) {
          const blob = blobs[place]!;
          if (blob instanceof Error) {
            const entry = run.parts[place]!;
            throw new RepositoryError(
              RepositoryErrorCode.Authentication,
              `${type} blob ${entry.id} in pack ${run.packId} is damaged: ${blob.message}`,
              { cause: blob },
            );
          }
          yield blob;
        }
        ahead.shift();
        aheadBytes -= cost(run);
        this.#loadingBytes -= cost(run);
      }
    } finally {
      this.#loadingBytes -= aheadBytes;
    }
  }

  async #openRun(type: BlobType, run: BlobRun, checkIds: boolean): Promise<Array<Buffer | Error>> {
    if (run.missing !== undefined)
      throw new RepositoryError(
        RepositoryErrorCode.FileNotFound,
        `${type} blob ${run.missing} is not in the index`,
      );
    const sealed = await this.#readRun(run);
    const parts: SealedPart[] = run.parts.map((e) => ({
      offset: e.offset - run.start,
      length: e.length,
      ...(e.uncompressedLength !== undefined ? { uncompressedLength: e.uncompressedLength } : {}),
      id: e.id,
    }));
    const pool = this.#sealPool();
    if (pool instanceof NativeSealer) {
      const opened = await pool.openMany(sealed, parts, checkIds);
      release(sealed); // decrypted in place
      return opened;
    }
    if (pool) return pool.openMany(sealed, parts, checkIds);
    const opened = parts.map((part) => {
      try {
        let plain = decrypt(this.#key, sealed.subarray(part.offset, part.offset + part.length));
        if (part.uncompressedLength !== undefined) plain = decompress(plain, part.uncompressedLength);
        if (checkIds && sha256Hex(plain) !== part.id) return new Error('does not match its id');
        return plain;
      } catch (error) {
        return error as Error;
      }
    });
    release(sealed); // a backend's read is the caller's (Backend.load)
    return opened;
  }

  /** A run's bytes, read with one backend read. */
  async #readRun(run: BlobRun): Promise<Buffer> {
    const sealed = await this.backend.load(
      { type: 'data', name: run.packId },
      { offset: run.start, length: run.end - run.start },
    );
    if (sealed.length !== run.end - run.start) {
      throw new RepositoryError(
        RepositoryErrorCode.Malformed,
        `pack ${run.packId} is shorter than its index says`,
      );
    }
    return sealed;
  }

  /** Saves a tree blob; returns its id. */
  async saveTree(nodes: readonly TreeNode[]): Promise<string> {
    return (await this.saveBlob('tree', encodeTree(nodes))).id;
  }

  /** Loads a tree blob's nodes. */
  async loadTree(id: string): Promise<TreeNode[]> {
    return decodeTree(await this.loadBlob('tree', id), id);
  }

  /**
   * Loads trees as {@link loadTree} does, one promise per id in order, reading trees that lie
   * close together in one pack with one backend read and opening them on this thread: a walk that
   * asked for a directory's subtrees one by one paid a trip through libuv's thread pool (about
   * 25 µs of its own time) for each.
   */
  loadTrees(ids: readonly string[]): Array<Promise<TreeNode[]>> {
    const entries = [...new Set(ids)].flatMap((id) => this.index.get('tree', id) ?? []);
    entries.sort((a, b) => (a.packId === b.packId ? a.offset - b.offset : a.packId < b.packId ? -1 : 1));
    const loading = new Map<string, Promise<TreeNode[]>>();
    const runs = planRuns(
      this.index,
      'tree',
      entries.map((entry) => entry.id),
      TREE_RUN_GAP,
    );
    for (const run of runs) {
      const opened = this.#readRun(run).then((sealed) => {
        const plains = run.parts.map((entry) => {
          try {
            return this.#openHere(
              sealed.subarray(entry.offset - run.start, entry.offset - run.start + entry.length),
              entry,
            );
          } catch (error) {
            return error as Error;
          }
        });
        release(sealed);
        return plains;
      });
      run.parts.forEach((entry, place) => {
        const tree = opened.then((plains) => {
          const plain = plains[place]!;
          if (plain instanceof Error) throw plain;
          return decodeTree(plain, entry.id);
        });
        loading.set(entry.id, tree);
      });
    }
    // One the index does not know fails as loadTree fails.
    return ids.map((id) => loading.get(id) ?? this.loadTree(id));
  }

  // ---- snapshots ----

  /** Saves a snapshot (after {@link flush}); returns its id. */
  async saveSnapshot(snapshot: Snapshot): Promise<string> {
    return this.#saveUnpacked('snapshots', snapshot);
  }

  /**
   * Every snapshot, oldest first. The names are listed each time; only the files this handle has
   * not read before are loaded (a few at once), so a repository of many snapshots costs one
   * listing per call, not a read of every file (the gateway lists them for every commit and
   * forget). The snapshots returned are frozen: they are shared between calls.
   */
  async listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>> {
    const names: string[] = [];
    for await (const { name } of this.backend.list('snapshots')) names.push(name);
    const listed = new Set(names);
    for (const name of this.#snapshotFiles.keys()) if (!listed.has(name)) this.#snapshotFiles.delete(name);
    const unread = names.filter((name) => !this.#snapshotFiles.has(name));
    const load = async (): Promise<void> => {
      for (let name = unread.pop(); name !== undefined; name = unread.pop()) {
        const snapshot = parseSnapshot(await this.#loadUnpacked({ type: 'snapshots', name }), name);
        this.#snapshotFiles.set(name, deepFreeze(snapshot));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SNAPSHOT_LOADS, unread.length) }, load));
    const list = names.flatMap((id) => {
      const snapshot = this.#snapshotFiles.get(id);
      return snapshot ? [{ id, snapshot }] : [];
    });
    return list.sort((a, b) => (parseGoTime(a.snapshot.time) < parseGoTime(b.snapshot.time) ? -1 : 1));
  }

  /** Finds a snapshot by id or unique prefix, or `latest`. */
  async findSnapshot(ref: string): Promise<{ id: string; snapshot: Snapshot }> {
    const all = await this.listSnapshots();
    if (ref === 'latest') {
      const last = all.at(-1);
      if (!last)
        throw new RepositoryError(RepositoryErrorCode.FileNotFound, 'the repository has no snapshots');
      return last;
    }
    if (!/^[0-9a-f]{1,64}$/.test(ref))
      throw new RepositoryError(RepositoryErrorCode.FileNotFound, `not a snapshot id: ${ref}`);
    const found = all.filter((s) => s.id.startsWith(ref));
    if (found.length !== 1) {
      throw new RepositoryError(
        RepositoryErrorCode.FileNotFound,
        found.length ? `snapshot prefix ${ref} is ambiguous` : `no snapshot ${ref}`,
      );
    }
    return found[0]!;
  }

  /** Removes a snapshot file (forget). */
  async removeSnapshot(id: string): Promise<void> {
    if (!isId(id)) throw new RangeError(`not a snapshot id: ${id}`);
    await this.backend.remove({ type: 'snapshots', name: id });
    this.#snapshotFiles.delete(id);
  }

  // ---- locks ----

  get #lockFiles(): LockFiles {
    return {
      backend: this.backend,
      save: (lock) => this.#saveUnpacked('locks', lock),
      load: (name) => this.#loadUnpacked({ type: 'locks', name }),
    };
  }

  /** True when a lock no longer protects anything: too old, or its process is gone from this host. */
  static isStale(lock: LockFile, now = Date.now()): boolean {
    return isStaleLock(lock, now);
  }

  /** Takes a shared or exclusive lock as restic does (see `locks.ts`). */
  lock(exclusive: boolean, options: { confirmLater?: boolean } = {}): Promise<RepositoryLock> {
    return takeLock(this.#lockFiles, exclusive, options);
  }

  /** Removes stale locks (restic unlock); returns how many. */
  removeStaleLocks(): Promise<number> {
    return removeStaleLocks(this.#lockFiles);
  }
}

/** A blob handed in with its id does not hash to it. */
function mismatch(message: string): RepositoryError {
  return new RepositoryError(RepositoryErrorCode.BlobIdMismatch, message);
}
