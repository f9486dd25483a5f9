import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Pol } from './polynomial.ts';
import { whileAlive, workerModule } from '../worker-module.ts';

/** Stable codes of {@link ChunkPoolError}. */
export const ChunkPoolErrorCode = {
  /** The file ended before the size it had when it was opened: it shrank while being read. */
  FileShrank: 'VOLBACK_CHUNK_FILE_SHRANK',
  /** The worker reading the file died (crashed, ran out of memory, was terminated). */
  WorkerFailed: 'VOLBACK_CHUNK_WORKER_FAILED',
  /** The pool was closed before the file was read to its end. */
  Closed: 'VOLBACK_CHUNK_POOL_CLOSED',
} as const;
/** One of {@link ChunkPoolErrorCode}. */
export type ChunkPoolErrorCode = (typeof ChunkPoolErrorCode)[keyof typeof ChunkPoolErrorCode];

/**
 * A file could not be chunked for a reason of its own, not the operating system's (those reject
 * with the original `ENOENT`, `EACCES`… error). Not a `RepositoryError`: the source is at fault,
 * so a backup skips the file and goes on.
 */
export class ChunkPoolError extends Error {
  override readonly name: string = 'ChunkPoolError';
  readonly code: ChunkPoolErrorCode;

  constructor(code: ChunkPoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Tuning of a {@link ChunkPool}. */
export interface ChunkPoolOptions {
  /** Worker threads; each reads one file at a time. Default: one less than the cores, at least 1. */
  workers?: number;
  /**
   * How many bytes of chunks a worker may have sent that the consumer has not yet taken before it
   * stops reading (default 8 MiB, at most 1 GiB). The last read before it stops may complete one
   * more chunk (≤ 8 MiB); the worker itself keeps at most 9 MiB of read buffers. Sealing is the
   * slower stage of a full backup, so more only holds more: 256 MiB of `database`, two workers,
   * peak RSS 230–237 MiB with 32, 175–178 with 8, in the same time, warm or cold.
   */
  readAheadBytes?: number;
}

/** One chunk of a file, as {@link ChunkPool.chunkFile} yields it. */
export interface FileChunk {
  /** SHA-256 of the chunk in lower-case hex: its blob id. */
  readonly id: string;
  /** The chunk's bytes, in an ArrayBuffer of their own (transferred from the worker, not copied). */
  readonly data: Buffer;
  /** Position of the chunk's first byte in the file. */
  readonly offset: number;
  readonly length: number;
  /** Its fast digest ({@link fastDigest}), when the file was chunked for the chunk cache. */
  readonly digest?: string;
}

/** A chunk of a file's last backup that is still there, byte for byte (its fast digest says so). */
export interface ReusedChunk {
  readonly id: string;
  readonly data?: undefined;
  readonly offset: number;
  readonly length: number;
  readonly digest: string;
  readonly reused: true;
}

/** A chunk of a file's last backup, as the chunk cache keeps it. */
export interface PreviousChunk {
  readonly offset: number;
  readonly length: number;
  /** Its fast digest with the cache's seed. */
  readonly digest: string;
  /** Its blob id. */
  readonly id: string;
}

/** What {@link ChunkPool.chunkFileWithCache} is given: the cache's seed and the file's last chunks. */
export interface ChunkCacheInput {
  /** Seed of the fast digest (the cache's secret). */
  readonly seed: bigint;
  /** The file's chunks at its last backup, in file order from offset 0; none: chunk it all. */
  readonly previous?: readonly PreviousChunk[];
}

/** Indices in the Int32Array the pool shares with each worker. */
export const ChunkControl = {
  /** Bumped on every change below; the worker sleeps on it. */
  Seq: 0,
  /** Chunk bytes the consumer has taken in the current job (wraps at 2^32). */
  Acked: 1,
  /** Non-zero: stop reading the current file. */
  Cancel: 2,
} as const;

/** What a worker is started with. */
export interface ChunkWorkerData {
  pol: Pol;
  control: Int32Array;
  readAheadBytes: number;
}

/** Pool → worker: read and chunk one file. */
export interface ChunkJobRequest {
  job: number;
  /** A path's bytes (a name that is not UTF-8) arrive as a plain Uint8Array. */
  path: string | Uint8Array;
  /** Give each chunk's fast digest with this seed. */
  digestSeed?: bigint;
  /** The file's chunks at its last backup (with `digestSeed`): reuse those still there. */
  previous?: readonly PreviousChunk[];
}

/** An error thrown in the worker, as plain fields (structured clone keeps no `code`). */
export interface ChunkWorkerError {
  name: string;
  message: string;
  code?: string | undefined;
  errno?: number | undefined;
  syscall?: string | undefined;
  path?: string | undefined;
}

/** Worker → pool: the next chunks of a job, in file order; a job's last message has `end` or `error`. */
export interface ChunkJobResponse {
  job: number;
  chunks: Array<{
    offset: number;
    length: number;
    id: string;
    /** Absent for a reused chunk. */
    data?: ArrayBuffer;
    digest?: string | undefined;
    reused?: true;
  }>;
  end?: boolean;
  error?: ChunkWorkerError;
}

const MiB = 1024 * 1024;
const DEFAULT_READ_AHEAD = 8 * MiB;
const MAX_READ_AHEAD = 1024 * MiB;

interface Job {
  readonly seq: number;
  readonly path: string | Buffer;
  readonly cache: ChunkCacheInput | undefined;
  /** Chunks received and not yet taken. */
  readonly chunks: Array<FileChunk | ReusedChunk>;
  slot: Slot | undefined;
  /** The worker is done with the file (or it never started and never will). */
  ended: boolean;
  /** Why the worker failed; thrown after the chunks before it. */
  failure: Error | undefined;
  /** Why the consumer's side stopped (abort, close); thrown at once. */
  stopped: { reason: unknown } | undefined;
  /** Resolves the consumer's wait for news. */
  wake: (() => void) | undefined;
}

interface Slot {
  /** Started again only when a file needs it, so a worker that cannot start fails files, not loops. */
  worker: Worker | undefined;
  readonly control: Int32Array;
  job: Job | undefined;
  crash: Error | undefined;
}

function reviveError(fields: ChunkWorkerError): Error {
  if (Object.values(ChunkPoolErrorCode).includes(fields.code as ChunkPoolErrorCode)) {
    return new ChunkPoolError(fields.code as ChunkPoolErrorCode, fields.message);
  }
  const error = new Error(fields.message) as NodeJS.ErrnoException;
  if (fields.name !== 'Error') error.name = fields.name;
  if (fields.code !== undefined) error.code = fields.code;
  if (fields.errno !== undefined) error.errno = fields.errno;
  if (fields.syscall !== undefined) error.syscall = fields.syscall;
  if (fields.path !== undefined) error.path = fields.path;
  return error;
}

function wake(job: Job): void {
  const resolve = job.wake;
  job.wake = undefined;
  resolve?.();
}

/**
 * Worker threads that read files, cut them with restic's chunker and hash the chunks, so that
 * none of it runs on the main thread. Each worker reads one file at a time with a credit
 * protocol: it stops reading while `readAheadBytes` of its chunks wait to be taken. A worker
 * keeps the process alive only while a consumer awaits its next chunk: an idle pool, or one whose
 * consumers wander off, never does.
 */
export class ChunkPool {
  readonly #pol: Pol;
  readonly #readAheadBytes: number;
  readonly #slots: Slot[] = [];
  /** Files whose iteration has begun, waiting for a free worker. */
  #queue: Job[] = [];
  /** Files whose iteration has begun and not ended. */
  readonly #active = new Set<Job>();
  #seq = 0;
  #closed = false;
  /** An iterator dropped without `return()` still frees its worker. */
  readonly #abandoned = new FinalizationRegistry<Job>((job) => {
    this.#active.delete(job);
    this.#cancel(job);
  });

  constructor(pol: Pol, options: ChunkPoolOptions = {}) {
    const workers = options.workers ?? Math.max(1, availableParallelism() - 1);
    const readAheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`chunk pool workers must be an integer ≥ 1, got ${workers}`);
    }
    if (!Number.isInteger(readAheadBytes) || readAheadBytes < 1 || readAheadBytes > MAX_READ_AHEAD) {
      throw new RangeError(
        `chunk pool readAheadBytes must be an integer from 1 to ${MAX_READ_AHEAD}, got ${readAheadBytes}`,
      );
    }
    this.#pol = pol;
    this.#readAheadBytes = readAheadBytes;
    for (let i = 0; i < workers; i++) {
      const slot: Slot = {
        worker: undefined,
        control: new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT)),
        job: undefined,
        crash: undefined,
      };
      // Started with the first file it reads: a backup that finds nothing changed starts none.
      this.#slots.push(slot);
    }
  }

  /** True once a worker thread was started (they start with the first file). */
  get started(): boolean {
    return this.#slots.some((slot) => slot.worker !== undefined);
  }

  /** Worker threads in the pool. */
  get size(): number {
    return this.#slots.length;
  }

  /** Chunk bytes received from the workers and not yet taken by their consumers. */
  get bufferedBytes(): number {
    let bytes = 0;
    for (const job of this.#active) for (const chunk of job.chunks) bytes += chunk.data?.length ?? 0;
    return bytes;
  }

  /**
   * Reads the file in a worker, chunks it with restic's chunker and hashes each chunk; yields the
   * chunks in file order. Reading starts at the first `next()`; leaving the loop early (`break`,
   * a throw, `signal`) stops it and frees the worker. OS errors reject with the original error
   * (`code` `ENOENT`, `EACCES`, …); a file that shrinks while read, or a worker that dies, with a
   * {@link ChunkPoolError}. A file holds its worker until its iteration ends, so iterating more
   * files at once than there are workers makes the extra ones wait. `path` may be bytes (a name
   * that is not UTF-8).
   */
  chunkFile(path: string | Buffer, signal?: AbortSignal): AsyncGenerator<FileChunk, void, undefined> {
    return this.#start(path, undefined, signal) as AsyncGenerator<FileChunk, void, undefined>;
  }

  /**
   * {@link chunkFile} for the chunk cache: every chunk comes with its fast digest, and where
   * `cache.previous` is given, chunks still at their offset with the same bytes come back as
   * {@link ReusedChunk}s (no data: the repository has them) and only the rest is cut and hashed.
   * The chunks are the ones {@link chunkFile} would give, provided `previous` is what the file's
   * last backup cut and hashed.
   */
  chunkFileWithCache(
    path: string | Buffer,
    cache: ChunkCacheInput,
    signal?: AbortSignal,
  ): AsyncGenerator<FileChunk | ReusedChunk, void, undefined> {
    return this.#start(path, cache, signal);
  }

  #start(
    path: string | Buffer,
    cache: ChunkCacheInput | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<FileChunk | ReusedChunk, void, undefined> {
    const job: Job = {
      seq: ++this.#seq,
      path,
      cache,
      chunks: [],
      slot: undefined,
      ended: false,
      failure: undefined,
      stopped: undefined,
      wake: undefined,
    };
    const iterator = this.#iterate(job, signal);
    this.#abandoned.register(iterator, job, job);
    return iterator;
  }

  async *#iterate(
    job: Job,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<FileChunk | ReusedChunk, void, undefined> {
    signal?.throwIfAborted();
    if (this.#closed) throw new ChunkPoolError(ChunkPoolErrorCode.Closed, 'chunk pool is closed');
    const onAbort = (): void => this.#stop(job, signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#active.add(job);
    this.#queue.push(job);
    this.#dispatch();
    try {
      for (;;) {
        if (job.stopped) throw job.stopped.reason;
        const chunk = job.chunks.shift();
        if (chunk) {
          this.#ack(job, chunk.length);
          yield chunk;
          continue;
        }
        if (job.failure) throw job.failure;
        if (job.ended) return;
        await new Promise<void>((resolve) => {
          job.wake = resolve;
          this.#updateRef();
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#abandoned.unregister(job);
      this.#active.delete(job);
      this.#cancel(job);
    }
  }

  #spawn(slot: Slot): Worker {
    const workerData: ChunkWorkerData = {
      pol: this.#pol,
      control: slot.control,
      readAheadBytes: this.#readAheadBytes,
    };
    const worker = new Worker(workerModule('chunk-worker', import.meta.url), { workerData });
    worker.on('message', (response: ChunkJobResponse) => this.#receive(slot, response));
    worker.on('error', (error) => {
      slot.crash = error;
    });
    worker.on('exit', (code) => {
      if (this.#closed || slot.worker !== worker) return;
      const job = slot.job;
      const cause = slot.crash;
      slot.job = undefined;
      slot.crash = undefined;
      slot.worker = undefined;
      if (job) {
        job.slot = undefined;
        job.ended = true;
        job.failure = new ChunkPoolError(
          ChunkPoolErrorCode.WorkerFailed,
          `chunk worker stopped (exit code ${code}) while reading ${job.path}` +
            (cause ? `: ${cause.message}` : ''),
          { cause },
        );
        wake(job);
      }
      this.#dispatch();
    });
    worker.unref();
    return worker;
  }

  #receive(slot: Slot, response: ChunkJobResponse): void {
    const job = slot.job;
    if (!job || job.seq !== response.job) return;
    if (!job.stopped) {
      for (const { offset, length, id, data, digest, reused } of response.chunks) {
        if (reused) job.chunks.push({ id, offset, length, digest: digest!, reused });
        else job.chunks.push({ id, offset, length, data: Buffer.from(data!), ...(digest ? { digest } : {}) });
      }
    }
    if (response.end || response.error) {
      job.ended = true;
      if (response.error) job.failure = reviveError(response.error);
      job.slot = undefined;
      slot.job = undefined;
      wake(job);
      this.#updateRef();
      this.#dispatch();
    } else if (response.chunks.length > 0) {
      wake(job);
      this.#updateRef();
    }
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.job) continue;
      const job = this.#queue.shift();
      if (!job) return;
      slot.job = job;
      job.slot = slot;
      Atomics.store(slot.control, ChunkControl.Acked, 0);
      Atomics.store(slot.control, ChunkControl.Cancel, 0);
      const request: ChunkJobRequest = {
        job: job.seq,
        path: job.path,
        ...(job.cache ? { digestSeed: job.cache.seed } : {}),
        ...(job.cache?.previous ? { previous: job.cache.previous } : {}),
      };
      // Replace a worker that died, so that the file is not sent into the void.
      slot.worker ??= this.#spawn(slot);
      slot.worker.postMessage(request);
      this.#updateRef();
    }
  }

  /**
   * A worker is referenced (keeps the process alive) exactly while a consumer awaits its chunks, or
   * while a consumer awaits a file still queued behind it: that file starts only when a busy
   * worker reports its end (a cancelled file's too). Without it, a consumer waiting for its turn
   * behind a file whose consumer had given up held nothing alive, and Node exited mid-backup with
   * an unsettled await (exit 13, seen under load when a full disk failed the backup).
   */
  #updateRef(): void {
    const queuedWaiter = this.#queue.some((job) => job.wake !== undefined);
    for (const slot of this.#slots) {
      if (slot.job && (slot.job.wake || queuedWaiter)) slot.worker?.ref();
      else slot.worker?.unref();
    }
  }

  #ack(job: Job, bytes: number): void {
    const control = job.slot?.control;
    if (!control) return;
    Atomics.add(control, ChunkControl.Acked, bytes);
    Atomics.add(control, ChunkControl.Seq, 1);
    Atomics.notify(control, ChunkControl.Seq);
  }

  /** The consumer is done with the file: stop its worker (which then reports the end) or its turn. */
  #cancel(job: Job): void {
    job.stopped ??= { reason: undefined };
    job.chunks.length = 0;
    if (job.ended) return;
    const slot = job.slot;
    if (slot) {
      Atomics.store(slot.control, ChunkControl.Cancel, 1);
      Atomics.add(slot.control, ChunkControl.Seq, 1);
      Atomics.notify(slot.control, ChunkControl.Seq);
    } else {
      this.#queue = this.#queue.filter((queued) => queued !== job);
      job.ended = true;
    }
  }

  /** Ends the file's iteration with `reason` at once. */
  #stop(job: Job, reason: unknown): void {
    if (job.stopped) return;
    job.stopped = { reason };
    this.#cancel(job);
    wake(job);
  }

  /** Rejects every file not yet read to its end and stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const closed = new ChunkPoolError(ChunkPoolErrorCode.Closed, 'chunk pool is closed');
    for (const job of [...this.#queue, ...this.#slots.map((slot) => slot.job)]) {
      if (job) this.#stop(job, closed);
    }
    this.#closed = true;
    await whileAlive(Promise.all(this.#slots.map((slot) => slot.worker?.terminate())));
  }
}
