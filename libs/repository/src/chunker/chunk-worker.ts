// A worker thread that reads files, cuts them with restic's chunker and hashes the chunks: the
// CPU-heavy half of reading a file, off the main thread. It is dedicated to this, so it reads
// with blocking calls and, when its consumer falls behind, sleeps on the shared control array.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { changedSpan, fastDigest } from './fast-digest.ts';
import {
  ChunkControl,
  ChunkPoolErrorCode,
  type ChunkJobRequest,
  type ChunkJobResponse,
  type ChunkWorkerData,
  type ChunkWorkerError,
  type PreviousChunk,
} from './chunk-pool.ts';
import { CHUNKER_MAX_SIZE, CHUNKER_WINDOW_SIZE, Chunker } from './chunker.ts';

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

/** A chunk to send: where it lies from the position it was cut from, and its fast digest if known. */
interface Cut {
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer;
  readonly digest?: string;
}

/**
 * Hashes and sends chunks cut from file position `base` on; returns their bytes. With `seed`,
 * each also gets its fast digest (the chunk cache's).
 */
function send(job: number, chunks: readonly Cut[], end: boolean, seed?: bigint, base = 0): number {
  const response: ChunkJobResponse = { job, chunks: [], ...(end ? { end } : {}) };
  const transfer: ArrayBuffer[] = [];
  let bytes = 0;
  for (const chunk of chunks) {
    const id = createHash('sha256').update(chunk.data).digest('hex');
    const digest = seed === undefined ? undefined : (chunk.digest ?? fastDigest(chunk.data, seed));
    const data = ownBuffer(chunk.data);
    response.chunks.push({ offset: base + chunk.offset, length: chunk.length, id, data, digest });
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

// O_NOATIME (Linux; the file's owner or root): reading for a backup leaves the access time alone,
// as restic does, so the next backup records the same node and keeps the same tree.
const NOATIME = constants.O_NOATIME ?? 0;

/** Opens a file to read; O_NONBLOCK: a file swapped for a FIFO must not block the worker in open(). */
function openForReading(path: string | Buffer): number {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK;
  if (NOATIME !== 0) {
    try {
      return openSync(path, flags | NOATIME);
    } catch (error) {
      // Not the owner (and not root): this file can only be read with its atime.
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    }
  }
  return openSync(path, flags);
}

function chunkFile({ job, path: requested, digestSeed, previous }: ChunkJobRequest): void {
  const path =
    typeof requested === 'string'
      ? requested
      : Buffer.from(requested.buffer, requested.byteOffset, requested.byteLength);
  let fd: number | undefined;
  // Read buffers the chunk being cut may still view, with the file position after each.
  const live: Array<{ buffer: Buffer; end: number }> = [];
  let sent = 0;
  try {
    fd = openForReading(path);
    const stats = fstatSync(fd);
    if (previous && digestSeed !== undefined && stats.isFile()) {
      chunkAgainst(job, fd, path, stats.size, digestSeed, previous);
      return;
    }
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
      sent = (sent + send(job, chunks, false, digestSeed)) | 0;
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
    send(job, last ? [last] : [], true, digestSeed);
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

/** Where the previous chunks are read to be compared: one buffer, reused (chunks reach 8 MiB). */
let scratch: Buffer | undefined;

/**
 * `length` bytes at `position`, fewer only at the end of the file: in `into` (which the next
 * call may overwrite), or in a buffer of their own.
 */
function readAt(fd: number, position: number, length: number, into?: Buffer): Buffer {
  let buffer: Buffer;
  if (into && into.length >= length) buffer = into.subarray(0, length);
  else {
    buffer = Buffer.allocUnsafeSlow(length);
    readBuffers.add(buffer.buffer); // chunks cut from it are views: copied before they are sent
  }
  let filled = 0;
  while (filled < length) {
    const n = readSync(fd, buffer, filled, length - filled, position + filled);
    if (n === 0) break;
    filled += n;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

function shrank(path: string | Buffer, size: number, position: number): Error {
  const error = new Error(`${String(path)} shrank from ${size} to ${position} bytes while it was read`);
  return Object.assign(error, { code: ChunkPoolErrorCode.FileShrank });
}

/** The chunker {@link cutWhereItWas} probes with (it leaves it as new). */
let probe: Chunker | undefined;

/**
 * True when a chunk of a file's last backup whose bytes changed (`bytes`, fast digests `now` and
 * `before`) is still cut where it was: no window over its changed blocks, or within 63 bytes after
 * them, makes a cut before its end, and its end, if it was a cut, is not among them (or cuts
 * still). `last`: the file's last chunk, which ended with the file and still does. Only those
 * windows are rolled ({@link Chunker.firstCutIn}): a page rewritten in a database file costs the
 * Rabin roll of its block, not of its whole chunk.
 */
function cutWhereItWas(bytes: Buffer, now: string, before: string, last: boolean): boolean {
  const span = changedSpan(now, before, bytes.length);
  if (!span) return false;
  const to = span.to + CHUNKER_WINDOW_SIZE;
  probe ??= new Chunker(pol);
  const cut = probe.firstCutIn(bytes, span.from, to);
  if (cut >= 0) return cut === bytes.length;
  return last || to < bytes.length;
}

/**
 * Chunks a file against its chunks at its last backup (the chunk cache). restic's chunker starts
 * afresh at every cut, so the same bytes from the same boundary give the same cut: a previous
 * chunk whose bytes at the same offset still have the same fast digest is sent back as reused
 * (its id, no data, no Rabin roll, no SHA-256); one that changed but is still cut where it was
 * ({@link cutWhereItWas}) is sent whole, without a full roll. Elsewhere the chunker runs from that boundary
 * until one of its cuts meets a previous boundary again. The file's last previous chunk ended
 * with the file, not with a cut: it is reused only where the file still ends with it.
 */
function chunkAgainst(
  job: number,
  fd: number,
  path: string | Buffer,
  size: number,
  seed: bigint,
  previous: readonly PreviousChunk[],
): void {
  const starts = new Map<number, number>();
  previous.forEach((chunk, i) => starts.set(chunk.offset, i));
  let sent = 0;
  let position = 0;
  while (position < size) {
    if (!mayRead(sent)) break;
    let pending: Buffer | undefined;
    const i = starts.get(position);
    const old = i === undefined ? undefined : previous[i]!;
    const end = old ? position + old.length : 0;
    if (old && end <= size && (i! < previous.length - 1 || end === size)) {
      scratch ??= Buffer.allocUnsafeSlow(CHUNKER_MAX_SIZE);
      const bytes = readAt(fd, position, old.length, scratch);
      if (bytes.length < old.length) throw shrank(path, size, position + bytes.length);
      const digest = fastDigest(bytes, seed);
      if (digest === old.digest) {
        const response: ChunkJobResponse = {
          job,
          chunks: [{ offset: position, length: old.length, id: old.id, digest, reused: true }],
        };
        parentPort!.postMessage(response);
        sent = (sent + old.length) | 0;
        position = end;
        continue;
      }
      if (cutWhereItWas(bytes, digest, old.digest, i === previous.length - 1)) {
        // Changed within, cut where it was: one new chunk (sent as a copy: scratch is reused).
        const chunk = { offset: 0, length: bytes.length, data: bytes, digest };
        sent = (sent + send(job, [chunk], false, seed, position)) | 0;
        position = end;
        continue;
      }
      // Cut elsewhere: cut it, from a copy (the chunker may keep views of its input; scratch is reused).
      pending = Buffer.allocUnsafeSlow(bytes.length);
      readBuffers.add(pending.buffer);
      bytes.copy(pending);
    }
    // Cut from this boundary until a cut meets a previous one (or the file ends).
    const chunker = new Chunker(pol);
    const base = position;
    let readTo = position;
    let met = false;
    while (!met) {
      let bytes = pending;
      pending = undefined;
      if (!bytes) {
        if (readTo >= size) break;
        if (!mayRead(sent)) {
          send(job, [], true);
          return;
        }
        bytes = readAt(fd, readTo, Math.min(READ_BYTES, size - readTo));
        if (bytes.length === 0) throw shrank(path, size, readTo);
      }
      readTo += bytes.length;
      const chunks = chunker.push(bytes);
      const taken: Cut[] = [];
      for (const chunk of chunks) {
        taken.push(chunk);
        position = base + chunk.offset + chunk.length;
        if (starts.has(position)) {
          met = true;
          break;
        }
      }
      sent = (sent + send(job, taken, false, seed, base)) | 0;
    }
    if (!met) {
      const last = chunker.finish();
      if (last) sent = (sent + send(job, [last], false, seed, base)) | 0;
      position = size;
    }
  }
  send(job, [], true);
}

parentPort!.on('message', chunkFile);
