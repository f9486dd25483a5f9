import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import * as withAddon from './compression.ts';

const text = (bytes: number) =>
  Buffer.from('volume backup restore snapshot\n'.repeat(Math.ceil(bytes / 31))).subarray(0, bytes);

/** The module as it is without the zstd addon (no C compiler, or VOLBACK_NATIVE=off): node:zlib and WebAssembly. */
async function withoutAddon(): Promise<typeof withAddon> {
  vi.stubEnv('VOLBACK_NATIVE', 'off');
  vi.resetModules();
  try {
    return await import('./compression.ts');
  } finally {
    vi.unstubAllEnvs();
  }
}

describe('the zstd addon', () => {
  const { nativeZstd } = withAddon;

  it('is built, unless VOLBACK_NATIVE=off', () => {
    if (process.env['VOLBACK_NATIVE'] === 'off') expect(nativeZstd).toBeUndefined();
    else expect(nativeZstd, 'run scripts/build-native.sh (needs a C compiler)').toBeDefined();
  });

  describe.skipIf(!nativeZstd)('with it', () => {
    const zstd = nativeZstd!;

    it('makes frames node:zlib reads, with their content size, of the length compressedSize says', () => {
      for (const bytes of [0, 1, 4000, 65_536, 1_000_000, 3_000_000]) {
        const plain = bytes % 2 ? text(bytes) : randomBytes(bytes);
        const frame = zstd.compress(plain, 3);
        expect(zstdDecompressSync(frame).equals(plain), `${bytes} bytes`).toBe(true);
        expect(withAddon.frameContentSize(frame)).toBe(bytes);
        expect(zstd.compressedSize(plain, 3)).toBe(frame.length);
        expect(
          frame.buffer.byteLength,
          'a buffer of its own size, or from the small-buffer pool',
        ).toBeLessThanOrEqual(Math.max(frame.length, 8192));
      }
    });

    it('decompresses exactly one frame to exactly the length asked, else gives undefined', () => {
      const frame = zstd.compress(text(5000), 3);
      expect(zstd.decompress(frame, 5000)!.equals(text(5000))).toBe(true);
      expect(zstd.decompress(frame, 4999)).toBeUndefined();
      expect(zstd.decompress(frame, 5001)).toBeUndefined();
      expect(zstd.decompress(frame.subarray(0, frame.length - 3), 5000)).toBeUndefined();
      expect(zstd.decompress(Buffer.concat([frame, frame]), 10_000)).toBeUndefined();
      expect(zstd.decompress(Buffer.from('not a zstd frame'), 16)).toBeUndefined();
    });

    it('refuses bad arguments with a TypeError', () => {
      const call = (f: () => unknown) => expect(f).toThrow(TypeError);
      call(() => zstd.compress('text' as unknown as Uint8Array, 3));
      call(() => zstd.compress(new Uint16Array(4) as unknown as Uint8Array, 3));
      call(() => zstd.compress(text(10), 0));
      call(() => zstd.compress(text(10), 23));
      call(() => (zstd.compress as (src: Uint8Array) => Buffer)(text(10)));
      call(() => zstd.decompress(zstd.compress(text(10), 3), -1));
    });

    it('keeps a context per thread: workers and the main thread compress at once', async () => {
      const script = `
        const { parentPort, workerData } = require('node:worker_threads');
        const zstd = require(workerData.addon);
        const plain = Buffer.from('worker ' + workerData.n + ' '.repeat(workerData.n * 100));
        let ok = true;
        for (let i = 0; i < 2000; i++) ok &&= zstd.decompress(zstd.compress(plain, 3), plain.length).equals(plain);
        parentPort.postMessage(ok);`;
      const addon = new URL('../../native/build/zstd.node', import.meta.url).pathname;
      const workers = [1, 2, 3].map(
        (n) =>
          new Promise((resolve, reject) => {
            const worker = new Worker(script, { eval: true, workerData: { addon, n } });
            worker.once('message', resolve).once('error', reject);
          }),
      );
      let ok = true;
      for (let i = 0; i < 2000; i++)
        ok &&= zstd.decompress(zstd.compress(text(3000), 3), 3000)!.equals(text(3000));
      expect([ok, ...(await Promise.all(workers))]).toEqual([true, true, true, true]);
    });
  });
});

describe.each([
  { variant: 'with the zstd addon', load: async () => withAddon, native: withAddon.nativeZstd !== undefined },
  { variant: 'without it (node:zlib, WebAssembly for small frames)', load: withoutAddon, native: false },
])('compression $variant', ({ load, native }) => {
  let codec: typeof withAddon;
  beforeAll(async () => {
    codec = await load();
  });

  it('uses the addon or not, as named', () => {
    expect(codec.nativeZstd !== undefined).toBe(native);
  });

  describe('compressBlob', () => {
    it('compresses data that zstd shrinks, to a frame that decompresses to it', () => {
      const blob = text(1024 * 1024);
      const frame = codec.compressBlob(blob);

      expect(frame).toBeDefined();
      expect(frame!.length).toBeLessThan(blob.length / 10);
      expect(codec.decompress(frame!, blob.length).equals(blob)).toBe(true);
    });

    it('leaves random data uncompressed, large or small', () => {
      expect(codec.compressBlob(randomBytes(1024 * 1024))).toBeUndefined();
      expect(codec.compressBlob(randomBytes(1000))).toBeUndefined();
    });

    it('compresses a blob whose samples are compressible even if parts of it are random', () => {
      // Half random, half text, in 64 KiB stripes: the samples see both
      const stripes = Array.from({ length: 32 }, (_, i) => (i % 2 ? randomBytes(65536) : text(65536)));
      const blob = Buffer.concat(stripes);
      const frame = codec.compressBlob(blob);

      expect(frame).toBeDefined();
      expect(frame!.length).toBeLessThan(blob.length * 0.6);
      expect(codec.decompress(frame!, blob.length).equals(blob)).toBe(true);
    });

    it('compresses small and empty blobs without sampling', () => {
      expect(codec.compressBlob(text(4000))).toBeDefined();
      expect(codec.compressBlob(Buffer.alloc(0))).toBeUndefined();
    });
  });

  describe('decompress', () => {
    const frame = (bytes: number, declareSize = true) =>
      zstdCompressSync(text(bytes), { params: { [constants.ZSTD_c_contentSizeFlag]: declareSize ? 1 : 0 } });

    it('reads the content size a frame header declares, in 1, 2, 4 or 8 bytes, or none', () => {
      for (const bytes of [0, 1, 255, 256, 300, 65_535, 65_791, 70_000, 1_000_000]) {
        expect(codec.frameContentSize(frame(bytes)), `${bytes} bytes`).toBe(bytes);
        expect(codec.frameContentSize(frame(bytes, false)), `${bytes} bytes, not declared`).toBeUndefined();
      }
      expect(codec.frameContentSize(Buffer.from('not a zstd frame'))).toBeUndefined();
      expect(codec.frameContentSize(frame(300).subarray(0, 5))).toBeUndefined();
    });

    it('gives every frame back byte for byte (without the addon, small ones through WebAssembly once it is loaded)', async () => {
      expect(await codec.loadSmallFrameDecoder()).toBe(true);
      for (const bytes of [0, 1, 255, 256, 4000, 65_536, 65_537, 300_000]) {
        for (const declareSize of [true, false]) {
          expect(
            codec.decompress(frame(bytes, declareSize), bytes).equals(text(bytes)),
            `${bytes} bytes`,
          ).toBe(true);
        }
      }
    });

    it('a damaged frame, or one of another length than expected, is MALFORMED as before', async () => {
      await codec.loadSmallFrameDecoder();
      const whole = frame(4000);
      const damaged = whole.subarray(0, whole.length - 8); // cut short
      expect(() => codec.decompress(damaged, 4000)).toThrow(
        expect.objectContaining({
          code: RepositoryErrorCode.Malformed,
          message: expect.stringMatching(/does not decompress/),
        }),
      );
      for (const declareSize of [true, false]) {
        expect(() => codec.decompress(frame(300, declareSize), 200)).toThrow(
          expect.objectContaining({
            code: RepositoryErrorCode.Malformed,
            message: 'decompressed to 300 bytes, expected 200',
          }),
        );
        expect(() => codec.decompress(frame(300, declareSize), 400)).toThrow(
          expect.objectContaining({
            code: RepositoryErrorCode.Malformed,
            message: 'decompressed to 300 bytes, expected 400',
          }),
        );
      }
    });
  });
});
