import { createHash, randomBytes } from 'node:crypto';

/** SHA-256 in lower-case hex: blob ids (of the plaintext) and file ids (of the stored bytes). */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** 32 random bytes in hex (repository id, lock nonces). */
export function randomId(): string {
  return randomBytes(32).toString('hex');
}

const FULL_ID = /^[0-9a-f]{64}$/;

/** True for a full id (64 lower-case hex digits). */
export function isId(value: string): boolean {
  return FULL_ID.test(value);
}

/** Nanoseconds since the epoch as whole seconds and 0 to 999,999,999 ns (utimensat's, stat's). */
export function timeParts(nanoseconds: bigint): [bigint, number] {
  let seconds = nanoseconds / 1_000_000_000n;
  let rest = nanoseconds % 1_000_000_000n;
  // Before 1970 the remainder is negative.
  if (rest < 0n) {
    seconds -= 1n;
    rest += 1_000_000_000n;
  }
  return [seconds, Number(rest)];
}

/**
 * Go's RFC 3339 with nanoseconds (`time.RFC3339Nano`): trailing zeros of the fraction dropped,
 * UTC written as `Z`. `ns` is nanoseconds since the epoch.
 */
export function formatGoTime(ns: bigint): string {
  const [seconds, nanos] = timeParts(ns);
  return formatGoTimeParts(Number(seconds), nanos);
}

let lastSeconds = Number.NaN;
let lastBase = '';

/**
 * {@link formatGoTime} of a time given as whole seconds and nanoseconds (0 to 999,999,999), as a
 * stat gives them: no BigInt on the way.
 */
export function formatGoTimeParts(seconds: number, nanos: number): string {
  // A walk formats three times per entry, mostly of the same few seconds.
  if (seconds !== lastSeconds) {
    lastSeconds = seconds;
    lastBase = new Date(seconds * 1000).toISOString().slice(0, 19);
  }
  if (nanos === 0) return `${lastBase}Z`;
  return `${lastBase}.${String(nanos).padStart(9, '0').replace(/0+$/, '')}Z`;
}

let lastParsedBase = '';
let lastParsedNs = 0n;

/** Parses an RFC 3339 time with up to nanosecond precision into nanoseconds since the epoch. */
export function parseGoTime(value: string): bigint {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  if (!match) throw new RangeError(`not an RFC 3339 time: ${value}`);
  // A restore parses two times per entry, mostly of the same few seconds.
  const base = `${match[1]}${match[3]}`;
  if (base !== lastParsedBase) {
    const millis = Date.parse(base);
    if (Number.isNaN(millis)) throw new RangeError(`not an RFC 3339 time: ${value}`);
    lastParsedBase = base;
    lastParsedNs = (BigInt(millis) / 1000n) * 1_000_000_000n;
  }
  return match[2] === undefined ? lastParsedNs : lastParsedNs + BigInt(match[2].padEnd(9, '0'));
}
