import { describe, expect, it } from 'vitest';
import { compress } from './compression.ts';
import { detach, release, releaseAfterViews } from './release.ts';

describe('release', () => {
  it('frees a large buffer that is the whole of its ArrayBuffer', () => {
    const own = Buffer.allocUnsafeSlow(1024 * 1024);
    release(own);
    expect(own.buffer.detached).toBe(true);
    expect(own.byteLength).toBe(0);
  });

  it('leaves alone what is not the caller’s alone: slices, pooled and small buffers', () => {
    const whole = Buffer.allocUnsafeSlow(1024 * 1024);
    const slice = whole.subarray(0, 512 * 1024);
    release(slice);
    expect(whole.buffer.detached).toBe(false);
    const offset = whole.subarray(1);
    release(offset);
    expect(whole.buffer.detached).toBe(false);

    const pooled = Buffer.from('a small buffer from Node’s pool');
    release(pooled);
    expect(pooled.buffer.detached).toBe(false);
    const small = Buffer.allocUnsafeSlow(1024);
    release(small);
    expect(small.buffer.detached).toBe(false);
    release(undefined);
  });

  it('frees a buffer handed out as several views when the last of them is released', () => {
    const buffer = new ArrayBuffer(3 * 1000);
    const views = [0, 1, 2].map((i) => Buffer.from(buffer, i * 1000, 1000));
    releaseAfterViews(buffer, views.length);
    release(views[1]);
    release(views[0]);
    expect(buffer.detached).toBe(false);
    expect(views[2]!.byteLength).toBe(1000);
    release(views[2]);
    expect(buffer.detached).toBe(true);

    const kept = new ArrayBuffer(2 * 1000);
    releaseAfterViews(kept, 2);
    release(Buffer.from(kept, 0, 1000));
    expect(kept.detached).toBe(false);
  });

  it('detach frees an ArrayBuffer whatever its views, once', () => {
    const buffer = new ArrayBuffer(256 * 1024);
    const view = new Uint8Array(buffer, 10, 10);
    detach(buffer);
    expect(buffer.detached).toBe(true);
    expect(view.byteLength).toBe(0);
    detach(buffer);
  });
});

describe('compress', () => {
  it('gives a frame in a buffer of its own size (zstd writes into one as large as the input)', () => {
    const data = Buffer.alloc(4 * 1024 * 1024, 'volback ');
    const frame = compress(data);
    expect(frame.byteLength).toBeLessThan(64 * 1024);
    expect(frame.buffer.byteLength).toBe(frame.byteLength);
  });
});
