import { randomBytes } from 'node:crypto';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

/**
 * A polynomial over GF(2), as restic's `chunker.Pol`: bit i is the coefficient of x^i, addition
 * is XOR. A bigint, because restic's polynomials need 54 bits and their products more; only the
 * chunker's precomputed tables ever leave bigint land.
 */
export type Pol = bigint;

/** restic draws degree-53 polynomials: the largest prime below 64 − 8, so a digest fits 64 bits. */
export const CHUNKER_POLYNOMIAL_DEGREE = 53;

/** restic gives up drawing a random irreducible polynomial after this many candidates. */
const RANDOM_POLYNOMIAL_MAX_TRIES = 1_000_000;

/** Degree of x (the index of its highest set bit); −1 for the zero polynomial. */
export function polDegree(x: Pol): number {
  if (x < 0n) throw new RangeError(`not a polynomial: ${x}`);
  if (x === 0n) return -1;
  // 32 bits at a time, then the top word's leading zeros (no string conversion: this runs in
  // every step of polynomial division).
  let degree = 0;
  while (x > 0xffff_ffffn) {
    x >>= 32n;
    degree += 32;
  }
  return degree + 31 - Math.clz32(Number(x));
}

/** x · y (carry-less product). */
export function polMul(x: Pol, y: Pol): Pol {
  let product = 0n;
  for (let shifted = x; y !== 0n; y >>= 1n, shifted <<= 1n) {
    if (y & 1n) product ^= shifted;
  }
  return product;
}

/** Quotient and remainder of x / d. */
export function polDivMod(x: Pol, d: Pol): { quotient: Pol; remainder: Pol } {
  if (d === 0n) throw new RangeError('polynomial division by zero');
  const dDeg = polDegree(d);
  let quotient = 0n;
  let remainder = x;
  for (let diff = polDegree(remainder) - dDeg; diff >= 0; diff = polDegree(remainder) - dDeg) {
    quotient |= 1n << BigInt(diff);
    remainder ^= d << BigInt(diff);
  }
  return { quotient, remainder };
}

/** x mod d. */
export function polMod(x: Pol, d: Pol): Pol {
  return polDivMod(x, d).remainder;
}

/** Greatest common divisor of x and y. */
export function polGcd(x: Pol, y: Pol): Pol {
  while (y !== 0n) [x, y] = [y, polMod(x, y)];
  return x;
}

/** x · y mod m. */
export function polMulMod(x: Pol, y: Pol, m: Pol): Pol {
  return polMod(polMul(polMod(x, m), polMod(y, m)), m);
}

/**
 * Whether f is irreducible over GF(2), by Ben-Or's test as restic runs it: f is reducible iff
 * gcd(f, x^(2^i) − x mod f) ≠ 1 for some 1 ≤ i ≤ deg(f)/2.
 */
export function isIrreducible(f: Pol): boolean {
  const x = 2n;
  let power = x; // x^(2^i) mod f, squared once per round
  for (let i = 1; i <= polDegree(f) / 2; i++) {
    power = polMulMod(power, power, f);
    if (polGcd(f, polMod(power ^ x, f)) !== 1n) return false;
  }
  return true;
}

/**
 * A fresh random irreducible polynomial of degree 53 for `init`, drawn as restic's
 * `RandomPolynomial` draws it: 8 little-endian random bytes, bits above 53 cleared, bits 53 and 0
 * set, tried until irreducible (about one draw in 27 is).
 */
export function randomIrreduciblePolynomial(random: (size: number) => Uint8Array = randomBytes): Pol {
  const degreeBit = 1n << BigInt(CHUNKER_POLYNOMIAL_DEGREE);
  for (let tries = 0; tries < RANDOM_POLYNOMIAL_MAX_TRIES; tries++) {
    const bytes = random(8);
    const candidate =
      (Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE() & ((degreeBit << 1n) - 1n)) |
      degreeBit |
      1n;
    if (isIrreducible(candidate)) return candidate;
  }
  throw new Error(`no irreducible polynomial in ${RANDOM_POLYNOMIAL_MAX_TRIES} random draws`);
}

/** Polynomials already parsed and found irreducible, by their text. */
const parsedPolynomials = new Map<string, Pol>();

/**
 * Parses the config's `chunker_polynomial` (hex digits without prefix, as restic writes it) and
 * checks what restic checks when it opens a repository: the polynomial must be irreducible.
 */
export function parseChunkerPolynomial(text: string): Pol {
  const known = parsedPolynomials.get(text);
  if (known !== undefined) return known;
  if (!/^[0-9a-fA-F]{1,16}$/.test(text)) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `chunker_polynomial: expected 1 to 16 hex digits, got ${JSON.stringify(text)}`,
    );
  }
  const pol = BigInt(`0x${text}`);
  if (pol < 2n || !isIrreducible(pol)) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `chunker_polynomial ${formatChunkerPolynomial(pol)} is not irreducible`,
    );
  }
  parsedPolynomials.set(text, pol);
  return pol;
}

/** The config's `chunker_polynomial` text: lowercase hex without prefix, as restic writes it. */
export function formatChunkerPolynomial(pol: Pol): string {
  if (pol < 0n || pol >= 1n << 64n) throw new RangeError(`polynomial does not fit 64 bits: ${pol}`);
  return pol.toString(16);
}
