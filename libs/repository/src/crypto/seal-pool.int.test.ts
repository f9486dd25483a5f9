import { afterAll, describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { errorOf } from '../test-support/errors.ts';
import { randomKey } from './crypto.ts';
import { NativeSealer, sealsNatively } from './native-blobs.ts';
import { SealPool } from './seal-pool.ts';
import { asRun, blobSamples as samples, sha256 } from '../test-support/sealed-runs.ts';

// The seal workers are what a machine without a C compiler (or VOLBACK_NATIVE=off) uses; where
// the addon is built, nothing else runs them: each side must read what the other wrote.
describe('the seal workers', () => {
  const key = randomKey();
  const pool = new SealPool(key, 1);
  afterAll(() => pool.close());

  it('seal and open blobs, many at once or one by one', async () => {
    const plains = samples();
    const sealed = await pool.sealMany(plains, true);
    const { run, parts } = asRun(sealed, plains);
    const opened = await pool.openMany(run, parts);
    for (const [i, blob] of opened.entries()) expect((blob as Buffer).equals(plains[i]!)).toBe(true);
    for (const plain of plains) {
      const one = await pool.seal(plain, true);
      const stored = Buffer.concat(one.sealed);
      const back = await pool.open(stored, one.compressed ? plain.length : undefined, sha256(plain), 'blob');
      expect(back.equals(plain)).toBe(true);
    }
  });

  it('refuse a plaintext that does not hash to its id, and a damaged blob', async () => {
    const plains = samples();
    const ids = plains.map(sha256);
    ids[1] = sha256(Buffer.from('other'));
    expect((await errorOf(pool.sealMany(plains, true, ids))).code).toBe(RepositoryErrorCode.BlobIdMismatch);
    const { sealed } = await pool.seal(plains[1]!, true);
    const stored = Buffer.concat(sealed);
    stored[stored.length - 1]! ^= 1;
    const damaged = await errorOf(pool.open(stored, plains[1]!.length, sha256(plains[1]!), 'data blob y'));
    expect(damaged.message).toMatch(/^data blob y is damaged: MAC does not verify/);
  });

  describe.skipIf(!sealsNatively)('and the addon', () => {
    const native = new NativeSealer(key);

    it('read what the other sealed, and make the same compression decisions', async () => {
      const plains = samples();
      const byWorkers = await pool.sealMany(plains, true);
      const byAddon = await native.sealMany(plains, true);
      expect(byAddon.map((s) => [s.compressed, s.sealed.length])).toEqual(
        byWorkers.map((s) => [s.compressed, s.sealed.length]),
      );
      for (const [sealed, opener] of [
        [byWorkers, native],
        [byAddon, pool],
      ] as const) {
        const { run, parts } = asRun(sealed, plains);
        const opened = await opener.openMany(run, parts);
        for (const [i, blob] of opened.entries()) expect((blob as Buffer).equals(plains[i]!)).toBe(true);
      }
    });

    it('word a mismatch alike', async () => {
      const plains = samples();
      const ids = plains.map(sha256);
      ids[3] = sha256(Buffer.from('other'));
      const [workers, addon] = await Promise.all([
        errorOf(pool.sealMany(plains, true, ids)),
        errorOf(native.sealMany(plains, true, ids)),
      ]);
      expect(addon.code).toBe(workers.code);
      expect(addon.message).toBe(workers.message);
      const [one, other] = await Promise.all([
        errorOf(pool.seal(plains[0]!, true, false, ids[3])),
        errorOf(native.seal(plains[0]!, true, false, ids[3])),
      ]);
      expect(other.message).toBe(one.message);
    });
  });
});
