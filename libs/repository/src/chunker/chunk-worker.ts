// A worker thread that reads files, cuts them with restic's chunker and hashes the chunks: the
// CPU-heavy half of reading a file, off the main thread. It is dedicated to this, so it reads
// with blocking calls and, when its consumer falls behind, sleeps on the shared control array.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  ChunkControl,
  ChunkPoolErrorCode,
  type ChunkJobRequest,
  type ChunkJobResponse,
  type ChunkWorkerData,
  type ChunkWorkerError,
} from './chunk-pool.ts';
import { CHUNKER_MAX_SIZE, Chunker, type Chunk } from './chunker.ts';

const { pol, control, readAheadBytes } = workerData as ChunkWorkerData;

/** Bytes per read: large enough that the syscalls do not matter, small enough to stay in cache. */
const READ_BYTES = 1024 * 1024;
/** Read buffers kept between files: a chunk being cut may hold views of several. */
const SPARE_BUFFERS = Math.ceil(CHUNKER_MAX_SIZE / READ_BYTES) + 1;

const spare: Buffer[] = [];
const readBuffers = new WeakSet<ArrayBufferLike>();

function takeBuffer(): Buffer {
  const reused = spare.pop();
  if (reused) return reused;
  const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
  readBuffers.add(buffer.buffer);
  return buffer;
}

/**
 * The chunk in an ArrayBuffer of its own, to transfer: a chunk the chunker had to join from
 * several reads already is one; a view of a read buffer (which is reused) is copied, once.
 */
function ownBuffer(data: Buffer): ArrayBuffer {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  if (whole && !readBuffers.has(data.buffer) && data.buffer instanceof ArrayBuffer) return data.buffer;
  const copy = Buffer.allocUnsafeSlow(data.byteLength);
  data.copy(copy);
  return copy.buffer as ArrayBuffer;
}

/** Hashes and sends chunks; returns their bytes. */
function send(job: number, chunks: Chunk[], end: boolean): number {
  const response: ChunkJobResponse = { job, chunks: [], ...(end ? { end } : {}) };
  const transfer: ArrayBuffer[] = [];
  let bytes = 0;
  for (const chunk of chunks) {
    const id = createHash('sha256').update(chunk.data).digest('hex');
    const data = ownBuffer(chunk.data);
    response.chunks.push({ offset: chunk.offset, id, data });
    transfer.push(data);
    bytes += chunk.length;
  }
  if (chunks.length > 0 || end) parentPort!.postMessage(response, transfer);
  return bytes;
}

/** Waits until fewer than readAheadBytes of sent chunks are untaken; false if the job was cancelled. */
function mayRead(sent: number): boolean {
  for (;;) {
    const seq = Atomics.load(control, ChunkControl.Seq);
    if (Atomics.load(control, ChunkControl.Cancel) !== 0) return false;
    if (((sent - Atomics.load(control, ChunkControl.Acked)) | 0) < readAheadBytes) return true;
    Atomics.wait(control, ChunkControl.Seq, seq, 1000);
  }
}

function describe(error: unknown): ChunkWorkerError {
  const e = error as Partial<NodeJS.ErrnoException> | undefined;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
    code: e?.code,
    errno: e?.errno,
    syscall: e?.syscall,
    path: e?.path,
  };
}

function chunkFile({ job, path: requested }: ChunkJobRequest): void {
  const path =
    typeof requested === 'string'
      ? requested
      : Buffer.from(requested.buffer, requested.byteOffset, requested.byteLength);
  let fd: number | undefined;
  // Read buffers the chunk being cut may still view, with the file position after each.
  const live: Array<{ buffer: Buffer; end: number }> = [];
  let sent = 0;
  try {
    // O_NONBLOCK: a file swapped for a FIFO must not block the worker in open().
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stats = fstatSync(fd);
    const chunker = new Chunker(pol);
    const seekable = stats.isFile() || stats.isBlockDevice();
    let position = 0;
    let chunkStart = 0;
    for (;;) {
      if (!mayRead(sent)) {
        send(job, [], true);
        return;
      }
      const buffer = takeBuffer();
      // At a position where there are positions: pipes and character devices have none.
      const n = readSync(fd, buffer, 0, buffer.length, seekable ? position : null);
      if (n === 0) {
        spare.push(buffer);
        break;
      }
      position += n;
      live.push({ buffer, end: position });
      const chunks = chunker.push(buffer.subarray(0, n));
      sent = (sent + send(job, chunks, false)) | 0;
      const last = chunks.at(-1);
      if (last) chunkStart = last.offset + last.length;
      while (live.length > 0 && live[0]!.end <= chunkStart) spare.push(live.shift()!.buffer);
      // A short read at the size fstat gave is the end: spare small files a second read.
      if (n < buffer.length && stats.isFile() && position >= stats.size) break;
    }
    if (stats.isFile() && position < stats.size) {
      const error = new Error(`${path} shrank from ${stats.size} to ${position} bytes while it was read`);
      throw Object.assign(error, { code: ChunkPoolErrorCode.FileShrank });
    }
    const last = chunker.finish();
    send(job, last ? [last] : [], true);
  } catch (error) {
    const response: ChunkJobResponse = { job, chunks: [], error: describe(error) };
    parentPort!.postMessage(response);
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Nothing was written: a failing close loses nothing.
      }
    }
    for (const { buffer } of live) spare.push(buffer);
    spare.length = Math.min(spare.length, SPARE_BUFFERS);
  }
}

parentPort!.on('message', chunkFile);
