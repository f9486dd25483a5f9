import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkPool, ChunkPoolError, ChunkPoolErrorCode, type FileChunk } from './chunk-pool.ts';
import { CHUNKER_MAX_SIZE, CHUNKER_MIN_SIZE, chunkStream } from './chunker.ts';
import { parseChunkerPolynomial } from './polynomial.ts';
import { pseudoRandomBytes, sha256Hex } from './test-data.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const pol = parseChunkerPolynomial('3da3358b4dc173');

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'volback-chunk-pool-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Seen {
  id: string;
  offset: number;
  length: number;
}

/** The chunks the in-thread chunker makes of bytes fed in 64 KiB pieces, with their SHA-256. */
async function expectedChunks(bytes: Buffer): Promise<Seen[]> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 64 * 1024) pieces.push(bytes.subarray(at, at + 64 * 1024));
  const chunks: Seen[] = [];
  for await (const chunk of chunkStream(pieces, pol)) {
    chunks.push({ id: sha256Hex(chunk.data), offset: chunk.offset, length: chunk.length });
  }
  return chunks;
}

/** Every chunk the pool yields, checked against its id, offset and own buffer on the way. */
async function poolChunks(pool: ChunkPool, path: string, bytes?: Buffer): Promise<Seen[]> {
  const chunks: Seen[] = [];
  for await (const chunk of pool.chunkFile(path)) {
    expect(chunk.data.length).toBe(chunk.length);
    expect(chunk.data.byteOffset).toBe(0);
    expect(chunk.data.buffer.byteLength).toBe(chunk.length);
    expect(sha256Hex(chunk.data)).toBe(chunk.id);
    if (bytes)
      expect(chunk.data.equals(bytes.subarray(chunk.offset, chunk.offset + chunk.length))).toBe(true);
    chunks.push({ id: chunk.id, offset: chunk.offset, length: chunk.length });
  }
  return chunks;
}

async function dataFile(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** The error an iteration rejects with. */
async function failureOf(iteration: AsyncIterable<FileChunk>): Promise<unknown> {
  try {
    for await (const _chunk of iteration);
  } catch (error) {
    return error;
  }
  throw new Error('the iteration did not fail');
}

describe('ChunkPool', () => {
  it('makes exactly the chunks and ids of the in-thread chunker, for several files at once', async () => {
    // Given files at the edges of the chunk sizes and the 1 MiB reads, and some of many chunks
    const sizes = [
      0,
      1,
      4095,
      CHUNKER_MIN_SIZE - 1,
      CHUNKER_MIN_SIZE,
      CHUNKER_MIN_SIZE + 1,
      MiB,
      MiB + 1,
      3 * MiB + 17,
      24 * MiB,
    ];
    const files = await Promise.all(
      sizes.map(async (size) => {
        const bytes = pseudoRandomBytes(size, `pool-${size}`);
        return { bytes, path: await dataFile(`random-${size}`, bytes) };
      }),
    );
    const zeros = Buffer.alloc(5 * MiB); // cut at every 512 KiB: chunks end on read boundaries
    files.push({ bytes: zeros, path: await dataFile('zeros', zeros) });

    // When all are chunked at once through a pool of two workers
    const pool = new ChunkPool(pol, { workers: 2 });
    try {
      const results = await Promise.all(files.map(({ path, bytes }) => poolChunks(pool, path, bytes)));

      // Then each file has the in-thread chunker's boundaries and ids
      for (const [i, { bytes }] of files.entries()) {
        expect(results[i]).toEqual(await expectedChunks(bytes));
      }
      expect(results.at(-2)!.length).toBeGreaterThan(10);
      expect(results[0]).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('stops reading while readAheadBytes of chunks wait to be taken', async () => {
    // Given a 64 MiB file and pools that may read 1 MiB ahead, or everything
    const path = await dataFile('backpressure', pseudoRandomBytes(64 * MiB, 'backpressure'));
    /** What the pool holds once the worker has had `ms` to read on, or has buffered `enough`. */
    const buffered = async (readAheadBytes: number, ms: number, enough = Infinity): Promise<number> => {
      const pool = new ChunkPool(pol, { workers: 1, readAheadBytes });
      try {
        // When the consumer takes one chunk and then waits
        const iterator = pool.chunkFile(path);
        await iterator.next();
        const deadline = performance.now() + ms;
        while (performance.now() < deadline && pool.bufferedBytes < enough) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const bytes = pool.bufferedBytes;
        await iterator.return();
        return bytes;
      } finally {
        await pool.close();
      }
    };

    // Then the bounded pool holds at most its read-ahead plus the one chunk that crossed it
    const bounded = await buffered(MiB, 1000);
    expect(bounded).toBeGreaterThan(0);
    expect(bounded).toBeLessThanOrEqual(MiB + CHUNKER_MAX_SIZE);
    // And without the bound the worker reads the whole file (all but the chunk taken)
    expect(await buffered(1024 * MiB, 20_000, 48 * MiB)).toBeGreaterThan(48 * MiB);
  });

  it('rejects with the original error code for a missing file and a directory', async () => {
    const pool = new ChunkPool(pol, { workers: 1 });
    try {
      const missing = (await failureOf(pool.chunkFile(join(dir, 'missing')))) as NodeJS.ErrnoException;
      expect(missing.code).toBe('ENOENT');
      expect(missing.syscall).toBe('open');
      expect(missing.path).toBe(join(dir, 'missing'));
      expect(missing.message).toMatch(/^ENOENT: no such file or directory/);

      await mkdir(join(dir, 'a-directory'));
      const directory = (await failureOf(pool.chunkFile(join(dir, 'a-directory')))) as NodeJS.ErrnoException;
      expect(directory.code).toBe('EISDIR');

      // And the worker goes on with the next file
      expect(await poolChunks(pool, await dataFile('after-errors', Buffer.from('ok')))).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });

  it('rejects with EACCES for an unreadable file', async () => {
    // Given a file no one may read, and a process that is not root (root reads anything)
    await chmod(dir, 0o755);
    const path = await dataFile('unreadable', Buffer.from('secret'));
    await chmod(path, 0);
    const script = `
      if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }
      const { ChunkPool } = await import(${JSON.stringify(new URL('./chunk-pool.ts', import.meta.url).href)});
      const pool = new ChunkPool(${pol}n, { workers: 1 });
      try {
        for await (const _ of pool.chunkFile(${JSON.stringify(path)}));
      } catch (error) {
        console.log(error.code);
      }
      await pool.close();
    `;
    const scriptPath = join(dir, 'unreadable.mjs');
    await writeFile(scriptPath, script);

    // When the pool reads it, then the iteration rejects with EACCES
    const { stdout } = await run(process.execPath, [scriptPath], { timeout: 20_000 });
    expect(stdout.trim()).toBe('EACCES');
  });

  it('rejects a file that shrinks while it is read', async () => {
    // Given a worker paused after the first chunks of a 16 MiB file
    const path = await dataFile('shrinking', pseudoRandomBytes(16 * MiB, 'shrinking'));
    const pool = new ChunkPool(pol, { workers: 1, readAheadBytes: 1 });
    try {
      const iterator = pool.chunkFile(path);
      await iterator.next();

      // When the file is cut to 2 MiB before the worker reads on
      await truncate(path, 2 * MiB);

      // Then the iteration rejects with FileShrank
      const error = await failureOf(iterator);
      expect(error).toBeInstanceOf(ChunkPoolError);
      expect((error as ChunkPoolError).code).toBe(ChunkPoolErrorCode.FileShrank);
    } finally {
      await pool.close();
    }
  });

  it('stops reading on abort and on break, and frees the worker for the next file', async () => {
    const big = await dataFile('big', pseudoRandomBytes(64 * MiB, 'big'));
    const small = await dataFile('small', pseudoRandomBytes(1000, 'small'));
    const pool = new ChunkPool(pol, { workers: 1, readAheadBytes: 4 * MiB });
    try {
      // Given a file being read, when its signal aborts, then the iteration rejects with the reason
      const controller = new AbortController();
      const reason = new Error('stop now');
      const aborted = pool.chunkFile(big, controller.signal);
      await aborted.next();
      controller.abort(reason);
      await expect(aborted.next()).rejects.toBe(reason);
      // And the only worker takes the next file
      expect(await poolChunks(pool, small)).toHaveLength(1);

      // Given a file waiting for the busy worker, when it aborts, then it rejects without a turn
      const busy = pool.chunkFile(big);
      await busy.next();
      const waiting = new AbortController();
      const queued = pool.chunkFile(small, waiting.signal).next();
      waiting.abort();
      await expect(queued).rejects.toMatchObject({ name: 'AbortError' });

      // When the consumer breaks out of the loop, then the worker is free again at once
      for await (const _chunk of busy) break;
      const started = performance.now();
      expect(await poolChunks(pool, small)).toHaveLength(1);
      expect(performance.now() - started).toBeLessThan(1000);

      // And an already aborted signal rejects before anything is read
      await expect(pool.chunkFile(small, AbortSignal.abort()).next()).rejects.toMatchObject({
        name: 'AbortError',
      });
    } finally {
      await pool.close();
    }
  });

  it('replaces a worker that dies and rejects the file it was reading', async () => {
    // Given a pool's only worker in the middle of a file
    const workers: Worker[] = [];
    const onWorker = (worker: Worker): void => void workers.push(worker);
    process.on('worker', onWorker);
    const pool = new ChunkPool(pol, { workers: 1, readAheadBytes: MiB });
    try {
      const path = await dataFile('crash', pseudoRandomBytes(32 * MiB, 'crash'));
      const iterator = pool.chunkFile(path);
      await iterator.next();

      // When the worker dies
      await workers[0]!.terminate();

      // Then that file's iteration rejects with WorkerFailed
      const error = await failureOf(iterator);
      expect(error).toBeInstanceOf(ChunkPoolError);
      expect((error as ChunkPoolError).code).toBe(ChunkPoolErrorCode.WorkerFailed);
      // And a new worker reads the next file
      const bytes = pseudoRandomBytes(3 * MiB, 'after-crash');
      const after = await dataFile('after-crash', bytes);
      expect(await poolChunks(pool, after, bytes)).toEqual(await expectedChunks(bytes));
      expect(workers.length).toBe(2);
    } finally {
      process.off('worker', onWorker);
      await pool.close();
    }
  });

  it('rejects files not read to their end when the pool closes', async () => {
    const path = await dataFile('closing', pseudoRandomBytes(16 * MiB, 'closing'));
    const pool = new ChunkPool(pol, { workers: 1, readAheadBytes: 1 });
    const reading = pool.chunkFile(path);
    await reading.next();
    const waiting = pool
      .chunkFile(path)
      .next()
      .catch((error: unknown) => error);
    await pool.close();
    await expect(reading.next()).rejects.toMatchObject({ code: ChunkPoolErrorCode.Closed });
    expect(await waiting).toMatchObject({ code: ChunkPoolErrorCode.Closed });
    await expect(pool.chunkFile(path).next()).rejects.toMatchObject({ code: ChunkPoolErrorCode.Closed });
  });

  it('never keeps the process alive when idle or when a consumer walks away', async () => {
    // Given a process that chunks a file, leaves a second one half read and never closes the pool
    const path = await dataFile('lifetime', pseudoRandomBytes(16 * MiB, 'lifetime'));
    const script = `
      import { ChunkPool } from ${JSON.stringify(new URL('./chunk-pool.ts', import.meta.url).href)};
      const pool = new ChunkPool(${pol}n, { workers: 1, readAheadBytes: 1 });
      let chunks = 0;
      for await (const _ of pool.chunkFile(${JSON.stringify(path)})) chunks++;
      const walkedAway = pool.chunkFile(${JSON.stringify(path)});
      await walkedAway.next();
      console.log(chunks);
    `;
    const scriptPath = join(dir, 'lifetime.mjs');
    await writeFile(scriptPath, script);
    // When it runs, then it ends by itself
    const { stdout } = await run(process.execPath, [scriptPath], { timeout: 20_000 });
    expect(Number(stdout.trim())).toBeGreaterThan(1);
  });
});
