import { randomBytes } from 'node:crypto';
import { constants, zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { compressBlob, decompress, frameContentSize, loadSmallFrameDecoder } from './compression.ts';

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

describe('decompress', () => {
  const frame = (bytes: number, declareSize = true) =>
    zstdCompressSync(text(bytes), { params: { [constants.ZSTD_c_contentSizeFlag]: declareSize ? 1 : 0 } });

  it('reads the content size a frame header declares, in 1, 2, 4 or 8 bytes, or none', () => {
    for (const bytes of [0, 1, 255, 256, 300, 65_535, 65_791, 70_000, 1_000_000]) {
      expect(frameContentSize(frame(bytes)), `${bytes} bytes`).toBe(bytes);
      expect(frameContentSize(frame(bytes, false)), `${bytes} bytes, not declared`).toBeUndefined();
    }
    expect(frameContentSize(Buffer.from('not a zstd frame'))).toBeUndefined();
    expect(frameContentSize(frame(300).subarray(0, 5))).toBeUndefined();
  });

  it('gives every frame back byte for byte, small ones through the WebAssembly decoder once loaded', async () => {
    expect(await loadSmallFrameDecoder()).toBe(true);
    for (const bytes of [0, 1, 255, 256, 4000, 65_536, 65_537, 300_000]) {
      for (const declareSize of [true, false]) {
        expect(decompress(frame(bytes, declareSize), bytes).equals(text(bytes)), `${bytes} bytes`).toBe(true);
      }
    }
  });

  it('a damaged frame, or one of another length than expected, is MALFORMED as before', async () => {
    await loadSmallFrameDecoder();
    const whole = frame(4000);
    const damaged = whole.subarray(0, whole.length - 8); // cut short
    expect(() => decompress(damaged, 4000)).toThrow(
      expect.objectContaining({
        code: RepositoryErrorCode.Malformed,
        message: expect.stringMatching(/does not decompress/),
      }),
    );
    for (const declareSize of [true, false]) {
      expect(() => decompress(frame(300, declareSize), 200)).toThrow(
        expect.objectContaining({
          code: RepositoryErrorCode.Malformed,
          message: 'decompressed to 300 bytes, expected 200',
        }),
      );
      expect(() => decompress(frame(300, declareSize), 400)).toThrow(
        expect.objectContaining({
          code: RepositoryErrorCode.Malformed,
          message: 'decompressed to 300 bytes, expected 400',
        }),
      );
    }
  });
});
