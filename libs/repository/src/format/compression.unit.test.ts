import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compressBlob, decompress } from './compression.ts';

const text = (bytes: number) =>
  Buffer.from('volume backup restore snapshot\n'.repeat(Math.ceil(bytes / 31))).subarray(0, bytes);

describe('compressBlob', () => {
  it('compresses data that zstd shrinks, to a frame that decompresses to it', () => {
    const blob = text(1024 * 1024);
    const frame = compressBlob(blob);

    expect(frame).toBeDefined();
    expect(frame!.length).toBeLessThan(blob.length / 10);
    expect(decompress(frame!, blob.length).equals(blob)).toBe(true);
  });

  it('leaves random data uncompressed, large or small', () => {
    expect(compressBlob(randomBytes(1024 * 1024))).toBeUndefined();
    expect(compressBlob(randomBytes(1000))).toBeUndefined();
  });

  it('compresses a blob whose samples are compressible even if parts of it are random', () => {
    // Half random, half text, in 64 KiB stripes: the samples see both
    const stripes = Array.from({ length: 32 }, (_, i) => (i % 2 ? randomBytes(65536) : text(65536)));
    const blob = Buffer.concat(stripes);
    const frame = compressBlob(blob);

    expect(frame).toBeDefined();
    expect(frame!.length).toBeLessThan(blob.length * 0.6);
    expect(decompress(frame!, blob.length).equals(blob)).toBe(true);
  });

  it('compresses small and empty blobs without sampling', () => {
    expect(compressBlob(text(4000))).toBeDefined();
    expect(compressBlob(Buffer.alloc(0))).toBeUndefined();
  });
});
