import { describe, expect, it } from 'vitest';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import {
  formatChunkerPolynomial,
  isIrreducible,
  parseChunkerPolynomial,
  polDegree,
  polDivMod,
  polGcd,
  polMod,
  polMul,
  polMulMod,
  randomIrreduciblePolynomial,
} from './polynomial.ts';

// Vectors from restic/chunker's polynomials_test.go.
const bin = (digits: string): bigint => BigInt(`0b${digits}`);

describe('polynomial arithmetic over GF(2)', () => {
  it.each([
    [1n, 2n, 2n],
    [bin('1101'), bin('10'), bin('11010')],
    [bin('1101'), bin('11'), bin('10111')],
    [0x40000000n, 0x40000000n, 0x1000000000000000n],
    [bin('1010'), bin('100100'), bin('101101000')],
    [bin('100'), bin('11'), bin('1100')],
    [bin('11'), bin('110101'), bin('1011111')],
    [bin('10011'), bin('110101'), bin('1100001111')],
  ])('multiplies %s · %s = %s, either way round', (x, y, product) => {
    expect(polMul(x, y)).toBe(product);
    expect(polMul(y, x)).toBe(product);
  });

  it.each([
    [10n, 50n, 0n],
    [0n, 1n, 0n],
    [bin('101101000'), bin('1010'), bin('100100')],
    [2n, 2n, 1n],
    [0x8000000000000000n, 0x8000000000000000n, 1n],
    [bin('1100'), bin('100'), bin('11')],
    [bin('1100001111'), bin('10011'), bin('110101')],
  ])('divides %s / %s = %s', (x, d, quotient) => {
    expect(polDivMod(x, d).quotient).toBe(quotient);
  });

  it.each([
    [10n, 50n, 10n],
    [0n, 1n, 0n],
    [bin('101101001'), bin('1010'), bin('1')],
    [2n, 2n, 0n],
    [0x8000000000000000n, 0x8000000000000000n, 0n],
    [bin('1100'), bin('100'), 0n],
    [bin('1100001111'), bin('10011'), 0n],
  ])('reduces %s mod %s = %s', (x, d, remainder) => {
    expect(polMod(x, d)).toBe(remainder);
  });

  it.each([
    [10n, 50n, 2n],
    [0n, 1n, 1n],
    [bin('101101001'), bin('1010'), 1n],
    [2n, 2n, 2n],
    [bin('1010'), bin('11'), bin('11')],
    [0x8000000000000000n, 0x8000000000000000n, 0x8000000000000000n],
    [bin('1100'), bin('101'), bin('11')],
    [bin('1100001111'), bin('10011'), bin('10011')],
    [0x3da3358b4dc173n, 0x3da3358b4dc173n, 0x3da3358b4dc173n],
    [0x3da3358b4dc173n, 0x230d2259defdn, 1n],
    [0x230d2259defdn, 0x51b492b3eff2n, bin('10011')],
  ])('finds gcd(%s, %s) = %s, either way round', (x, y, gcd) => {
    expect(polGcd(x, y)).toBe(gcd);
    expect(polGcd(y, x)).toBe(gcd);
  });

  it.each([
    [0x1230n, 0x230n, 0x55n, 0x22n],
    [0x0eae8c07dbbb3026n, 0xd5d6db9de04771den, 0xdd2bda3b77c9n, 0x425ae8595b7an],
  ])('multiplies %s · %s mod %s = %s', (x, y, m, product) => {
    expect(polMulMod(x, y, m)).toBe(product);
  });

  it('gives the degree of the highest term, −1 for zero', () => {
    expect(polDegree(0x3af4b284899n)).toBe(41);
    expect(polDegree(1n)).toBe(0);
    expect(polDegree(0n)).toBe(-1);
  });

  it('refuses to divide by zero', () => {
    expect(() => polDivMod(5n, 0n)).toThrow(RangeError);
  });
});

describe('irreducibility', () => {
  it.each([
    [0x38f1e565e288dfn, false],
    [0x3da3358b4dc173n, true],
    [0x30a8295b9d5c91n, false],
    [0x255f4350b962cbn, false],
    [0x267f776110a235n, false],
    [0x2f4dae10d41227n, false],
    [0x2482734cacca49n, true],
    [0x312daf4b284899n, false],
    [0x29dfb6553d01d1n, false],
    [0x3548245eb26257n, false],
    [0x3199e7ef4211b3n, false],
    [0x362f39017dae8bn, false],
    [0x200d57aa6fdacbn, false],
    [0x35e0a4efa1d275n, false],
    [0x2ced55b026577fn, false],
    [0x260b012010893dn, false],
    [0x2df29cbcd59e9dn, false],
    [0x3f2ac7488bd429n, false],
    [0x3e5cb1711669fbn, false],
    [0x226d8de57a9959n, false],
    [0x3c8de80aaf5835n, false],
    [0x2026a59efb219bn, false],
    [0x39dfa4d13fb231n, false],
    [0x3143d0464b3299n, false],
  ])('tells whether %s is irreducible (%s), as restic does', (pol, irreducible) => {
    expect(isIrreducible(pol)).toBe(irreducible);
  });

  it('knows small cases: x²+x+1 is irreducible, x²+1 = (x+1)² is not', () => {
    expect(isIrreducible(0b111n)).toBe(true);
    expect(isIrreducible(0b101n)).toBe(false);
    // (x²+x+1)·(x³+x+1): no factor of degree 1, yet reducible.
    expect(isIrreducible(polMul(0b111n, 0b1011n))).toBe(false);
  });

  it('draws random polynomials of degree 53 that are irreducible and differ', () => {
    const drawn = Array.from({ length: 5 }, () => randomIrreduciblePolynomial());

    for (const pol of drawn) {
      expect(polDegree(pol)).toBe(53);
      expect(isIrreducible(pol)).toBe(true);
    }
    expect(new Set(drawn).size).toBe(drawn.length);
  });

  it('draws as restic does: 8 little-endian bytes, bits above 53 cleared, bits 53 and 0 set', () => {
    // Given a source that first yields all ones (x^53 + … + x + 1: reducible), then 0x3da3358b4dc173
    const draws = [Buffer.alloc(8, 0xff), Buffer.from('73c14d8b35a33d00', 'hex')];
    const source = (size: number): Uint8Array => draws.shift()!.subarray(0, size);

    // When a polynomial is drawn from it
    const pol = randomIrreduciblePolynomial(source);

    // Then the reducible candidate is skipped and the known irreducible one taken
    expect(pol).toBe(0x3da3358b4dc173n);
    expect(draws).toHaveLength(0);
  });
});

describe('the config text of the polynomial', () => {
  it('parses and formats hex without prefix, as restic writes it', () => {
    expect(parseChunkerPolynomial('3da3358b4dc173')).toBe(0x3da3358b4dc173n);
    expect(parseChunkerPolynomial('3DA3358B4DC173')).toBe(0x3da3358b4dc173n);
    expect(formatChunkerPolynomial(0x3da3358b4dc173n)).toBe('3da3358b4dc173');
  });

  it.each(['', '0x3da3358b4dc173', '3da3358b4dc17g', '1'.repeat(17), ' 3da3358b4dc173'])(
    'rejects %j as malformed',
    (text) => {
      expect(() => parseChunkerPolynomial(text)).toThrow(
        expect.objectContaining({ code: RepositoryErrorCode.Malformed }),
      );
    },
  );

  it('rejects a reducible polynomial, as restic does when it opens a repository', () => {
    const error = (() => {
      try {
        parseChunkerPolynomial('38f1e565e288df');
      } catch (caught) {
        return caught;
      }
    })();

    expect(error).toBeInstanceOf(RepositoryError);
    expect(error).toMatchObject({ code: RepositoryErrorCode.Malformed, message: /not irreducible/ });
  });
});
