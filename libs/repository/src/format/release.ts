/** Smaller buffers are left to the garbage collector (they may sit in Node's shared pool). */
export const RELEASE_FROM = 64 * 1024;

/** ArrayBuffers handed out as several views ({@link releaseAfterViews}): how many are still held. */
const sharedViews = new WeakMap<ArrayBufferLike, number>();

/**
 * Frees a large buffer's memory now instead of at the next garbage collection, by detaching its
 * ArrayBuffer. V8 collects only after tens of MiB of such memory have piled up, and a backup or
 * restore moves hundreds of MiB through chunks and packs: without this the dead ones, not the live
 * ones, set the peak RSS. Only for a buffer its caller owns outright (a chunk handed over, a sealed
 * blob written to its pack): every view of the ArrayBuffer reads as empty afterwards. A buffer that
 * is part of a larger ArrayBuffer (a slice, Node's pool), shared or not detachable is left alone.
 * `from`: the smallest buffer worth it (a caller that frees many small buffers of its own passes 0;
 * Node's pooled ones never span their ArrayBuffer, so they stay untouched either way).
 */
export function release(data: Uint8Array | undefined, from = RELEASE_FROM): void {
  if (!data) return;
  const views = sharedViews.get(data.buffer);
  if (views === undefined) {
    if (spansItsBuffer(data, from)) detach(data.buffer);
  } else if (views > 1) {
    sharedViews.set(data.buffer, views - 1);
  } else {
    sharedViews.delete(data.buffer);
    detach(data.buffer);
  }
}

/**
 * Lets {@link release} free `buffer`, which its caller owns outright but hands out as `views`
 * separate views (blobs sealed together, each written to a pack on its own): each view is then
 * released once, when done with, and the last one frees the buffer. A view never released leaves
 * the buffer to the garbage collector.
 */
export function releaseAfterViews(buffer: ArrayBuffer, views: number): void {
  if (views > 0) sharedViews.set(buffer, views);
}

/**
 * True when `data` has at least `from` bytes and is the whole of its own ArrayBuffer (but for
 * 64 bytes of slack): whoever owns it may free it or move it to another thread without touching
 * anyone else's bytes. Never true of a slice, nor of Node's pooled small buffers.
 */
export function spansItsBuffer(data: Uint8Array, from: number): boolean {
  return (
    data.byteOffset === 0 &&
    data.byteLength >= from &&
    data.buffer instanceof ArrayBuffer &&
    data.buffer.byteLength - data.byteLength <= 64
  );
}

/** Frees an ArrayBuffer its caller owns outright, whatever views of it exist ({@link release}). */
export function detach(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.detached) return;
  try {
    buffer.transfer(0);
  } catch {
    // Not detachable (an ArrayBuffer Node or an addon keeps): the collector frees it.
  }
}
