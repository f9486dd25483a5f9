import { describe, expect, it } from 'vitest';
import { goMathRandBytes, goRngCooked } from './test-data.ts';

describe("Go's math/rand, rebuilt for restic's chunker vectors", () => {
  it('derives the seeding table rngCooked of Go’s math/rand/rng.go', () => {
    const cooked = goRngCooked();

    // Spot checks against the table as printed in rng.go (int64 there, uint64 here)
    expect(BigInt.asIntN(64, cooked[0]!)).toBe(-4181792142133755926n);
    expect(BigInt.asIntN(64, cooked[1]!)).toBe(-4576982950128230565n);
    expect(BigInt.asIntN(64, cooked[2]!)).toBe(1395769623340756751n);
    expect(BigInt.asIntN(64, cooked[606]!)).toBe(4152330101494654406n);
  });

  it('yields Uint32() little-endian, so any prefix of a longer draw is the shorter draw', () => {
    const long = goMathRandBytes(23, 4096);
    const short = goMathRandBytes(23, 64);

    expect(long.subarray(0, 64)).toEqual(short);
    expect(goMathRandBytes(24, 64)).not.toEqual(short);
  });
});
