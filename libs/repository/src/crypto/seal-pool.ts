import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import type { CryptoKey } from './crypto.ts';

/** A job for a seal worker. */
export type SealRequest =
  | { seq: number; op: 'seal'; data: ArrayBuffer; compress: boolean }
  | { seq: number; op: 'open'; data: ArrayBuffer; uncompressedLength?: number; expectId?: string };

/** A worker's answer: the output bytes, or why it failed. */
export type SealResponse =
  { seq: number; data: ArrayBuffer; error?: undefined } | { seq: number; error: string };

type Job = SealRequest extends infer R ? (R extends unknown ? Omit<R, 'seq'> : never) : never;

interface Pending {
  resolve: (data: Buffer) => void;
  reject: (error: Error) => void;
}

/** Copies a view into an ArrayBuffer of its own, which can then be transferred to a worker. */
function ownBuffer(data: Uint8Array): ArrayBuffer {
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

  #spawn(slot: number): Worker {
    const worker = new Worker(new URL('./seal-worker.ts', import.meta.url), { workerData: this.#key });
    const jobs = this.#jobs[slot]!;
    worker.on('message', (response: SealResponse) => {
      const pending = jobs.get(response.seq);
      jobs.delete(response.seq);
      if (jobs.size === 0) worker.unref(); // idle: do not keep the process alive
      if (!pending) return;
      if (response.error !== undefined) pending.reject(new Error(response.error));
      else pending.resolve(Buffer.from(response.data));
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

  #submit(request: Job): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('seal pool is closed'));
    const seq = ++this.#seq;
    let target = 0;
    for (let i = 1; i < this.#workers.length; i++)
      if (this.#jobs[i]!.size < this.#jobs[target]!.size) target = i;
    const jobs = this.#jobs[target]!;
    return new Promise<Buffer>((resolve, reject) => {
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

  /** `encrypt(compress ? zstd(plain) : plain)`, in a worker. */
  seal(plaintext: Uint8Array, compress: boolean): Promise<Buffer> {
    return this.#submit({ op: 'seal', data: ownBuffer(plaintext), compress });
  }

  /** Verifies, decrypts, decompresses and checks the id of a stored blob, in a worker. */
  async open(
    sealed: Uint8Array,
    uncompressedLength: number | undefined,
    expectId: string,
    what: string,
  ): Promise<Buffer> {
    try {
      return await this.#submit({
        op: 'open',
        data: ownBuffer(sealed),
        ...(uncompressedLength !== undefined ? { uncompressedLength } : {}),
        expectId,
      });
    } catch (cause) {
      throw new RepositoryError(
        RepositoryErrorCode.Authentication,
        `${what} is damaged: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
