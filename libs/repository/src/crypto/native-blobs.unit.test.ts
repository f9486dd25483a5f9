import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { compress, compressBlob, decompress } from '../format/compression.ts';
import { release } from '../format/release.ts';
import { decrypt, encrypt, randomKey } from './crypto.ts';
import { NativeSealer, openRunNatively, sealsNatively } from './native-blobs.ts';
import type { SealedPart } from './seal-pool.ts';
import { errorOf } from '../test-support/errors.ts';
import { asRun, blobSamples as samples } from '../test-support/sealed-runs.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Blobs sealed as a pack holds them, one after the other with a few bytes between. */
function sealRun(key = randomKey()) {
  const plains = [
    Buffer.from('a small tree or file'),
    randomBytes(300_000), // incompressible: stored as it is
    Buffer.alloc(2_000_000, 'database page '), // compressed
    Buffer.alloc(0), // empty
    Buffer.from('x'.repeat(70_000)), // compressed
  ];
  const pieces: Buffer[] = [];
  const parts: SealedPart[] = [];
  let offset = 0;
  for (const [i, plain] of plains.entries()) {
    const compressed = i === 2 || i === 4;
    const sealed = encrypt(key, compressed ? compress(plain) : plain);
    const gap = randomBytes(i);
    pieces.push(gap, sealed);
    offset += gap.length;
    parts.push({
      offset,
      length: sealed.length,
      ...(compressed ? { uncompressedLength: plain.length } : {}),
      id: sha256(plain),
    });
    offset += sealed.length;
  }
  return { key, plains, parts, sealed: Buffer.concat(pieces) };
}

describe('the blob sealing and opening addon', () => {
  it('is built, unless VOLBACK_NATIVE=off', () => {
    if (process.env['VOLBACK_NATIVE'] === 'off') expect(sealsNatively).toBe(false);
    else expect(sealsNatively, 'run scripts/build-native.sh (needs a C compiler)').toBe(true);
  });

  describe.skipIf(!sealsNatively)('with it', () => {
    it('opens each blob of a run to the plaintext decrypt() gives, compressed or not', async () => {
      const { key, plains, parts, sealed } = sealRun();
      const expected = parts.map((part) => {
        const message = sealed.subarray(part.offset, part.offset + part.length);
        return decrypt(key, message);
      });
      const opened = await openRunNatively(key, Buffer.from(sealed), parts, true);
      expect(opened).toHaveLength(plains.length);
      for (const [i, blob] of opened.entries()) {
        expect(blob).toBeInstanceOf(Buffer);
        expect((blob as Buffer).equals(plains[i]!)).toBe(true);
        if (parts[i]!.uncompressedLength === undefined)
          expect((blob as Buffer).equals(expected[i]!)).toBe(true);
      }
    });

    it('gives the Error of a damaged blob in its place, and still opens the others', async () => {
      const { key, plains, parts, sealed } = sealRun();
      const damaged = Buffer.from(sealed);
      damaged[parts[1]!.offset + 40]! ^= 1; // ciphertext of the second
      damaged[parts[2]!.offset + parts[2]!.length - 1]! ^= 0x80; // MAC of the third
      const opened = await openRunNatively(key, damaged, parts, true);
      for (const i of [1, 2])
        expect((opened[i] as Error).message).toBe('MAC does not verify: wrong key or damaged data');
      for (const i of [0, 3, 4]) expect((opened[i] as Buffer).equals(plains[i]!)).toBe(true);
    });

    it('refuses every blob under another key', async () => {
      const { parts, sealed } = sealRun();
      const opened = await openRunNatively(randomKey(), sealed, parts, true);
      expect(opened.every((blob) => blob instanceof Error && /MAC does not verify/.test(blob.message))).toBe(
        true,
      );
    });

    it('checks each plaintext against its id, unless told not to', async () => {
      const { key, plains, parts, sealed } = sealRun();
      const wrong = parts.map((part, i) => (i === 4 ? { ...part, id: sha256(Buffer.from('other')) } : part));
      const checked = await openRunNatively(key, Buffer.from(sealed), wrong, true);
      expect((checked[4] as Error).message).toBe('does not match its id');
      expect((checked[0] as Buffer).equals(plains[0]!)).toBe(true);
      const unchecked = await openRunNatively(key, Buffer.from(sealed), wrong, false);
      expect((unchecked[4] as Buffer).equals(plains[4]!)).toBe(true);
    });

    it('says what is wrong with a part that does not fit its run or its lengths', async () => {
      const { key, parts, sealed } = sealRun();
      const bad: SealedPart[] = [
        { ...parts[0]!, offset: sealed.length - 10 }, // runs past the end
        { ...parts[1]!, length: 20 }, // shorter than IV and MAC
        { ...parts[2]!, uncompressedLength: 1_000 }, // decompresses to more
        { ...parts[4]!, uncompressedLength: 80_000 }, // to less
      ];
      const opened = await openRunNatively(key, Buffer.from(sealed), bad, true);
      expect(opened.map((blob) => (blob as Error).message)).toEqual([
        'is cut short',
        'ciphertext of 20 bytes is too short',
        expect.stringMatching(/^zstd data does not decompress: /),
        'decompressed to 70000 bytes, expected 80000',
      ]);
    });

    it('refuses arguments of the wrong shape before any work starts', async () => {
      const { key, parts, sealed } = sealRun();
      await expect(openRunNatively(key, sealed, [{ ...parts[0]!, id: 'not hex' }], true)).rejects.toThrow(
        /is not 64 hex digits/,
      );
      await expect(openRunNatively(key, sealed, [{ ...parts[0]!, offset: -5 }], true)).rejects.toThrow(
        /whole numbers/,
      );
    });

    it('frees the plaintexts once every blob of the run is released', async () => {
      const { key, parts, sealed } = sealRun();
      const opened = (await openRunNatively(key, sealed, parts, true)) as Buffer[];
      const whole = opened[1]!.buffer;
      for (const blob of opened.slice(1)) release(blob);
      expect(whole.byteLength).toBeGreaterThan(0); // one view still held
      expect(opened[0]!.toString()).toBe('a small tree or file');
      release(opened[0]);
      expect(whole.byteLength).toBe(0);
    });
    /** What a stored blob holds: its plaintext, decompressed when it was compressed. */
    const plainOf = (
      key: ReturnType<typeof randomKey>,
      sealed: Uint8Array,
      length: number,
      compressed: boolean,
    ) => {
      const clear = decrypt(key, sealed);
      return compressed ? decompress(clear, length) : clear;
    };
    it('seals a blob as the seal workers do: compressed where compressBlob would, and opened back', async () => {
      const key = randomKey();
      const sealer = new NativeSealer(key);
      for (const plain of samples()) {
        const { sealed, compressed } = await sealer.seal(plain, true);
        const stored = Buffer.concat(sealed);
        expect(compressed).toBe(compressBlob(plain) !== undefined);
        expect(stored.length).toBe(compressed ? compressBlob(plain)!.length + 32 : plain.length + 32);
        expect(plainOf(key, stored, plain.length, compressed).equals(plain)).toBe(true);
        const uncompressed = await sealer.seal(plain, false);
        expect(uncompressed.compressed).toBe(false);
        expect(plainOf(key, Buffer.concat(uncompressed.sealed), plain.length, false).equals(plain)).toBe(
          true,
        );
      }
    });

    it('seals many blobs in one job, each with an IV of its own, and opens them back as one run', async () => {
      const key = randomKey();
      const sealer = new NativeSealer(key);
      const plains = samples();
      const sealed = await sealer.sealMany(plains, true);
      expect(new Set(sealed.map(({ sealed: s }) => s.subarray(0, 16).toString('hex'))).size).toBe(
        plains.length,
      );
      for (const [i, { sealed: bytes, compressed }] of sealed.entries())
        expect(plainOf(key, bytes, plains[i]!.length, compressed).equals(plains[i]!)).toBe(true);
      const { run, parts } = asRun(sealed, plains);
      const opened = await sealer.openMany(run, parts);
      for (const [i, blob] of opened.entries()) expect((blob as Buffer).equals(plains[i]!)).toBe(true);
    });

    it('seals nothing when a plaintext does not hash to the id it came with (BlobIdMismatch)', async () => {
      const sealer = new NativeSealer(randomKey());
      const plains = samples();
      const ids = plains.map(sha256);
      ids[2] = sha256(Buffer.from('something else'));
      const many = await errorOf(sealer.sealMany(plains, true, ids));
      expect(many.code).toBe(RepositoryErrorCode.BlobIdMismatch);
      expect(many.message).toBe(
        `blob 3 of ${plains.length} hashes to ${sha256(plains[2]!)}, not to ${ids[2]}: nothing was stored`,
      );
      const one = await errorOf(sealer.seal(plains[0]!, true, false, ids[2]));
      expect(one.code).toBe(RepositoryErrorCode.BlobIdMismatch);
      expect(one.message).toBe(
        `the body hashes to ${sha256(plains[0]!)}, not to ${ids[2]}: nothing was stored`,
      );
      const fine = await sealer.sealMany(plains.slice(0, 2), true, ids.slice(0, 2));
      expect(fine).toHaveLength(2);
    });

    it('opens one blob, and names it when it is damaged', async () => {
      const key = randomKey();
      const sealer = new NativeSealer(key);
      const plain = Buffer.alloc(100_000, 'page ');
      const { sealed } = await sealer.seal(plain, true);
      const stored = Buffer.concat(sealed);
      const frame = compressBlob(plain)!;
      expect(
        (await sealer.open(Buffer.from(stored), plain.length, sha256(plain), 'data blob x')).equals(plain),
      ).toBe(true);
      stored[20]! ^= 1;
      const damaged = await errorOf(sealer.open(stored, plain.length, sha256(plain), 'data blob x'));
      expect(damaged.code).toBe(RepositoryErrorCode.Authentication);
      expect(damaged.message).toBe('data blob x is damaged: MAC does not verify: wrong key or damaged data');
      expect(stored.length).toBe(frame.length + 32);
    });
  });
});
