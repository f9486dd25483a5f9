import { createCipheriv, createHash } from 'node:crypto';

/*
 * Test inputs, for tests and the benchmark only (not exported by the library).
 *
 * restic's chunker vectors are made from Go's `math/rand`, seeded with 23. Its source is an
 * additive lagged Fibonacci generator, z[k] = z[k−607] + z[k−273] mod 2^64, whose seeding XORs a
 * table `rngCooked`: the register of that same generator after 7.8e12 steps from seed 1 (Go's
 * `gen_cooked.go`). Rather than copy the 607 numbers, the table is derived here: the recurrence
 * is linear, so z[k] is the initial register times the coefficients of x^k mod
 * (x^607 − x^334 − 1), and x^7.8e12 takes 43 squarings. Half a second, once per process.
 */

const RNG_LEN = 607;
const RNG_TAP = 273;
const INT32_MAX = 2 ** 31 - 1;
const COOKED_STEPS = 7_800_000_000_000n;

/** Go's `seedrand`: x ↦ 48271·x mod (2^31 − 1), by Schrage's method to stay within int32. */
function seedrand(x: number): number {
  const hi = Math.trunc(x / 44488);
  const lo = x % 44488;
  const next = 48271 * lo - 3399 * hi;
  return next < 0 ? next + INT32_MAX : next;
}

/** Reduces a product polynomial modulo x^607 − x^334 − 1, coefficients mod 2^64. */
function reduceLagged(coefficients: bigint[]): bigint[] {
  for (let d = coefficients.length - 1; d >= RNG_LEN; d--) {
    const c = coefficients[d]!;
    if (c === 0n) continue;
    coefficients[d - RNG_LEN]! += c;
    coefficients[d - RNG_TAP]! += c;
  }
  return coefficients.slice(0, RNG_LEN).map((c) => BigInt.asUintN(64, c));
}

function squareLagged(a: bigint[]): bigint[] {
  const product = new Array<bigint>(2 * RNG_LEN - 1).fill(0n);
  for (let i = 0; i < RNG_LEN; i++) {
    const ai = a[i]!;
    if (ai === 0n) continue;
    product[2 * i]! += ai * ai;
    const twice = 2n * ai;
    for (let j = i + 1; j < RNG_LEN; j++) product[i + j]! += twice * a[j]!;
  }
  return reduceLagged(product);
}

function timesXLagged(a: bigint[]): bigint[] {
  return reduceLagged([0n, ...a]);
}

let cooked: BigUint64Array | undefined;

/** Go's `rngCooked` (as uint64), derived from `gen_cooked.go`'s definition. */
export function goRngCooked(): BigUint64Array {
  if (cooked) return cooked;
  // gen_cooked's srand(1): the register before the 7.8e12 steps.
  const register: bigint[] = [];
  let x = 1;
  for (let i = -20; i < RNG_LEN; i++) {
    x = seedrand(x);
    if (i < 0) continue;
    let u = BigInt(x) << 20n;
    x = seedrand(x);
    u ^= BigInt(x) << 10n;
    x = seedrand(x);
    u ^= BigInt(x);
    register[i] = u;
  }
  // Step k (from 1) writes z[k] into slot (334 − k) mod 607; z[j] for −606 ≤ j ≤ 0 is the
  // register's slot (334 − j) mod 607. Coefficient i of a polynomial stands for z[i − 606].
  const slot = (k: bigint): number => Number((((334n - k) % 607n) + 607n) % 607n);
  const basis = Array.from({ length: RNG_LEN }, (_, i) => register[slot(BigInt(i - 606))]!);
  let power = new Array<bigint>(RNG_LEN).fill(0n);
  power[0] = 1n;
  for (const bit of COOKED_STEPS.toString(2)) {
    power = squareLagged(power);
    if (bit === '1') power = timesXLagged(power);
  }
  // power is now x^(k+606) for k = steps − 606, the oldest value still in the register.
  const table = new BigUint64Array(RNG_LEN);
  for (let k = COOKED_STEPS - 606n; k <= COOKED_STEPS; k++) {
    let value = 0n;
    for (let i = 0; i < RNG_LEN; i++) value += power[i]! * basis[i]!;
    table[slot(k)] = BigInt.asUintN(64, value);
    power = timesXLagged(power);
  }
  cooked = table;
  return table;
}

/**
 * The bytes restic's chunker tests use: `getRandom(seed, count)`, i.e. Go's
 * `rand.New(rand.NewSource(seed)).Uint32()` written little-endian, four bytes at a time.
 */
export function goMathRandBytes(seed: number, count: number): Buffer {
  const table = goRngCooked();
  // The register as two uint32 halves, so the 8 million steps need no bigint.
  const hi = new Uint32Array(RNG_LEN);
  const lo = new Uint32Array(RNG_LEN);
  let s = seed % INT32_MAX;
  if (s < 0) s += INT32_MAX;
  if (s === 0) s = 89482311;
  let x = s;
  for (let i = -20; i < RNG_LEN; i++) {
    x = seedrand(x);
    if (i < 0) continue;
    let u = BigInt(x) << 40n;
    x = seedrand(x);
    u ^= BigInt(x) << 20n;
    x = seedrand(x);
    u ^= BigInt(x);
    u = BigInt.asUintN(64, u) ^ table[i]!;
    hi[i] = Number(u >> 32n);
    lo[i] = Number(u & 0xffffffffn);
  }
  let tap = 0;
  let feed = RNG_LEN - RNG_TAP;
  const out = Buffer.alloc(count);
  for (let pos = 0; pos < count; pos += 4) {
    tap = tap === 0 ? RNG_LEN - 1 : tap - 1;
    feed = feed === 0 ? RNG_LEN - 1 : feed - 1;
    const sumLo = lo[feed]! + lo[tap]!;
    const sumHi = (hi[feed]! + hi[tap]! + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
    hi[feed] = sumHi;
    lo[feed] = sumLo >>> 0;
    // Uint32() is bits 31–62 of the 64-bit step.
    const value = ((sumHi << 1) | (sumLo >>> 31)) >>> 0;
    for (let b = 0; b < 4 && pos + b < count; b++) out[pos + b] = (value >>> (8 * b)) & 0xff;
  }
  return out;
}

/** Deterministic pseudo-random bytes: AES-256-CTR keystream under a key derived from `seed`. */
export function pseudoRandomBytes(count: number, seed = 'volback'): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(count));
}

/** Hex SHA-256, as restic names blobs. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
