import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { CRYPTO_OVERHEAD, type CryptoKey } from './crypto.ts';
import { releaseAfterViews, spansItsBuffer } from '../format/release.ts';
import { whileAlive, workerModule } from '../worker-module.ts';

/** One stored blob inside a buffer of several (a range read from a pack). */
export interface SealedPart {
  /** Where the blob starts in the buffer. */
  readonly offset: number;
  /** Its stored length (IV, ciphertext, MAC). */
  readonly length: number;
  /** Plaintext length of a compressed blob; absent for uncompressed ones. */
  readonly uncompressedLength?: number;
  /** The blob id its plaintext must hash to. */
  readonly id: string;
}

/** A job for a seal worker. */
export type SealRequest =
  | { seq: number; op: 'seal'; data: ArrayBuffer; compress: boolean; expectId?: string }
  | {
      seq: number;
      op: 'seal-many';
      data: ArrayBuffer;
      lengths: readonly number[];
      compress: boolean;
      /** The ids the plaintexts must hash to, checked before any is sealed. */
      expectIds?: readonly string[];
    }
  | { seq: number; op: 'open'; data: ArrayBuffer; uncompressedLength?: number; expectId?: string }
  | {
      seq: number;
      op: 'open-many';
      data: ArrayBuffer;
      parts: readonly SealedPart[];
      /** False: the MACs are verified, the plaintexts not hashed (the reader checks the ids). */
      checkIds?: boolean;
    };

/**
 * Where an `open-many` part's plaintext is: a buffer of its own (its first `plainLength` bytes),
 * a place in the response's shared `data`, or why it failed.
 */
export type OpenedPart = { buffer: ArrayBuffer } | { at: number } | { error: string };

/**
 * A worker's answer: the output (its first `length` bytes, all of it when absent), or why it
 * failed. For `open-many`, `data` holds the small plaintexts and `parts` says where each is.
 */
export type SealResponse =
  | {
      seq: number;
      data: ArrayBuffer;
      length?: number;
      parts?: OpenedPart[];
      /** For `seal` with `compress`: whether the blob was worth compressing (else stored as it is). */
      compressed?: boolean;
      /** For `seal`: the IV before and the MAC after the ciphertext in `data`. */
      iv?: Uint8Array;
      mac?: Uint8Array;
      /**
       * For `seal-many`: each blob's stored length (IV, ciphertext, MAC, one after the other in
       * `data`), and whether it was compressed.
       */
      sealedParts?: ReadonlyArray<{ length: number; compressed: boolean }>;
      error?: undefined;
    }
  | {
      seq: number;
      error: string;
      /** The plaintext of a `seal` or `seal-many` did not hash to the id it came with. */
      mismatch?: true;
    };

/** The plaintext length of a stored blob, known before opening it. */
export function plainLength(part: Pick<SealedPart, 'length' | 'uncompressedLength'>): number {
  return part.uncompressedLength ?? part.length - CRYPTO_OVERHEAD;
}

/**
 * True when a buffer fresh from crypto or zlib may be transferred as it is: it starts its own
 * ArrayBuffer and covers nearly all of it. Never true of Node's pooled small buffers (under half
 * the pool size), whose ArrayBuffer other buffers share.
 */
export function movable(data: Uint8Array): boolean {
  return spansItsBuffer(data, Buffer.poolSize >>> 1);
}

type Job = SealRequest extends infer R ? (R extends unknown ? Omit<R, 'seq'> : never) : never;

type Answer = Extract<SealResponse, { data: ArrayBuffer }>;

interface Pending {
  resolve: (response: Answer) => void;
  reject: (error: Error) => void;
}

/**
 * An ArrayBuffer holding exactly `data`, to transfer to a worker: with `take`, the caller's own
 * buffer when the view spans all of it (the caller's view is then detached), else a copy.
 */
function ownBuffer(data: Uint8Array, take = false): ArrayBuffer {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  if (take && whole && data.buffer instanceof ArrayBuffer) return data.buffer;
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy.buffer;
}

/**
 * Worker threads that seal and open blobs with the repository key, so that reading and chunking
 * (one core) and compressing and encrypting (the other) overlap. A worker keeps the process
 * alive only while it holds jobs: an idle pool never does.
 */
export class SealPool {
  readonly #key: { encrypt: Buffer; macK: Buffer; macR: Buffer };
  readonly #workers: Worker[] = [];
  /** Jobs each worker holds, so a worker that dies fails exactly its own jobs. */
  readonly #jobs: Array<Map<number, Pending>> = [];
  #seq = 0;
  #closed = false;

  constructor(key: CryptoKey, size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    this.#key = {
      encrypt: Buffer.from(key.encrypt),
      macK: Buffer.from(key.macK),
      macR: Buffer.from(key.macR),
    };
    for (let i = 0; i < size; i++) {
      this.#jobs.push(new Map());
      this.#workers.push(this.#spawn(i));
    }
  }

  /** Workers in the pool. */
  get size(): number {
    return this.#workers.length;
  }

  /** Adds workers up to `size` (a caller that leaves the calling thread mostly idle). */
  grow(size: number): void {
    while (!this.#closed && this.#workers.length < size) {
      this.#jobs.push(new Map());
      this.#workers.push(this.#spawn(this.#workers.length));
    }
  }

  #spawn(slot: number): Worker {
    const worker = new Worker(workerModule('seal-worker', import.meta.url), {
      workerData: this.#key,
    });
    const jobs = this.#jobs[slot]!;
    worker.on('message', (response: SealResponse) => {
      const pending = jobs.get(response.seq);
      jobs.delete(response.seq);
      if (jobs.size === 0) worker.unref(); // idle: do not keep the process alive
      if (!pending) return;
      if (response.error !== undefined)
        pending.reject(
          response.mismatch
            ? new RepositoryError(RepositoryErrorCode.BlobIdMismatch, response.error)
            : new Error(response.error),
        );
      else pending.resolve(response);
    });
    const fail = (error: Error) => {
      for (const p of jobs.values()) p.reject(error);
      jobs.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      fail(new Error(`seal worker exited (code ${code})`));
      // Replace a worker that died, so later jobs are not sent into the void.
      if (!this.#closed && this.#workers[slot] === worker) this.#workers[slot] = this.#spawn(slot);
    });
    worker.unref();
    return worker;
  }

  /** Jobs submitted and not yet answered. */
  get inFlight(): number {
    return this.#jobs.reduce((n, jobs) => n + jobs.size, 0);
  }

  #submit(request: Job): Promise<Answer> {
    if (this.#closed) return Promise.reject(new Error('seal pool is closed'));
    const seq = ++this.#seq;
    let target = 0;
    for (let i = 1; i < this.#workers.length; i++)
      if (this.#jobs[i]!.size < this.#jobs[target]!.size) target = i;
    const jobs = this.#jobs[target]!;
    return new Promise((resolve, reject) => {
      if (jobs.size === 0) this.#workers[target]!.ref(); // busy: keep the process alive until answered
      jobs.set(seq, { resolve, reject });
      const full = { ...request, seq } as SealRequest;
      try {
        this.#workers[target]!.postMessage(full, [full.data]);
      } catch (error) {
        jobs.delete(seq);
        reject(error as Error);
      }
    });
  }

  /**
   * The pieces (IV, ciphertext, MAC) of `encrypt(zstd(plain))`, or `encrypt(plain)` when `compress` is false or zstd would not pay
   * (compressBlob in format/compression.ts), in a worker. With `take`, a plaintext that spans its whole ArrayBuffer
   * is moved there, not copied (and detached here).
   */
  async seal(
    plaintext: Uint8Array,
    compress: boolean,
    take = false,
    expectId?: string,
  ): Promise<{ sealed: readonly Buffer[]; compressed: boolean }> {
    const answer = await this.#submit({
      op: 'seal',
      data: ownBuffer(plaintext, take),
      compress,
      ...(expectId !== undefined ? { expectId } : {}),
    });
    if (!answer.iv || !answer.mac) throw new Error('seal worker answered without IV and MAC');
    const ciphertext = Buffer.from(answer.data, 0, answer.length);
    return {
      sealed: [Buffer.from(answer.iv), ciphertext, Buffer.from(answer.mac)],
      compressed: answer.compressed === true,
    };
  }

  /**
   * {@link seal} of several blobs with one message each way (small blobs: the messages would
   * cost more than the sealing). The sealed blobs come back in order, each a view of one shared
   * buffer, which {@link release} of the last of them frees. With `expectIds`, every plaintext is checked against its id first: one that does not
   * match fails the call ({@link RepositoryErrorCode.BlobIdMismatch}) and none is sealed.
   */
  async sealMany(
    plaintexts: readonly Uint8Array[],
    compress: boolean,
    expectIds?: readonly string[],
  ): Promise<Array<{ sealed: Buffer; compressed: boolean }>> {
    let total = 0;
    for (const plain of plaintexts) total += plain.length;
    const joined = new Uint8Array(total);
    let at = 0;
    for (const plain of plaintexts) {
      joined.set(plain, at);
      at += plain.length;
    }
    const answer = await this.#submit({
      op: 'seal-many',
      data: joined.buffer,
      lengths: plaintexts.map((p) => p.length),
      compress,
      ...(expectIds !== undefined ? { expectIds } : {}),
    });
    const parts = answer.sealedParts;
    if (parts?.length !== plaintexts.length) throw new Error('seal worker answered for other blobs');
    const sealed = Buffer.from(answer.data, 0, answer.length);
    releaseAfterViews(answer.data, parts.length);
    let offset = 0;
    return parts.map(({ length, compressed }) => {
      offset += length;
      return { sealed: sealed.subarray(offset - length, offset), compressed };
    });
  }

  /** Verifies, decrypts, decompresses and checks the id of a stored blob, in a worker. */
  async open(
    sealed: Uint8Array,
    uncompressedLength: number | undefined,
    expectId: string,
    what: string,
  ): Promise<Buffer> {
    try {
      const { data, length } = await this.#submit({
        op: 'open',
        data: ownBuffer(sealed),
        ...(uncompressedLength !== undefined ? { uncompressedLength } : {}),
        expectId,
      });
      return Buffer.from(data, 0, length);
    } catch (cause) {
      throw new RepositoryError(
        RepositoryErrorCode.Authentication,
        `${what} is damaged: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /**
   * Opens several blobs stored in one buffer (a range of a pack) with one message each way; the
   * plaintexts come back in the order of `parts`, moved between threads rather than copied where
   * they can be. A part that does not verify is an `Error` in its place (the others are still
   * good). Takes `sealed`: a buffer the caller owns whole is handed over, and unusable after.
   */
  async openMany(
    sealed: Uint8Array,
    parts: readonly SealedPart[],
    checkIds = true,
  ): Promise<Array<Buffer | Error>> {
    const answer = await this.#submit({
      op: 'open-many',
      data: ownBuffer(sealed, true),
      parts,
      ...(checkIds ? {} : { checkIds }),
    });
    return (answer.parts ?? []).map((opened, i) => {
      if ('error' in opened) return new Error(opened.error);
      const length = plainLength(parts[i]!);
      return 'buffer' in opened
        ? Buffer.from(opened.buffer, 0, length)
        : Buffer.from(answer.data, opened.at, length);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await whileAlive(Promise.all(this.#workers.map((worker) => worker.terminate())));
  }
}
