// The password's key for a key file, derived once (scrypt: about 0.08 s of one core, on libuv's
// thread pool), possibly ahead of the repository that will want it: the `volback` command starts
// deriving the key of a local repository's key file before it loads its own modules (about 0.06
// s), and opening the repository takes the result instead of deriving it again. This module loads
// alone (the package's `./key-ahead` entry), with nothing but Node's own modules.
import { scrypt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isId } from '../format/ids.ts';

/** scrypt's cost parameters and salt, as a key file stores them. */
export interface KdfParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Uint8Array;
}

/** Derivations started ahead, by cost and salt; each is taken at most once. */
const ahead = new Map<string, { password: string; derived: Promise<Buffer> }>();

const aheadKey = ({ N, r, p, salt }: KdfParams) => `${N}:${r}:${p}:${Buffer.from(salt).toString('base64')}`;

function derive(password: string, { N, r, p, salt }: KdfParams): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(
      Buffer.from(password, 'utf8'),
      salt,
      64,
      { N, r, p, maxmem: 256 * N * r + 64 * 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    ),
  );
}

/**
 * scrypt of `password` under a key file's parameters, 64 bytes: the derivation started ahead for
 * the same password and parameters ({@link deriveKeyAhead}), else a new one.
 */
export function passwordKey(password: string, params: KdfParams): Promise<Buffer> {
  const key = aheadKey(params);
  const started = ahead.get(key);
  ahead.delete(key);
  return started?.password === password ? started.derived : derive(password, params);
}

/**
 * Starts deriving `password`'s key for the first key file of the repository in directory `root`
 * (the one opening it tries first) and returns that derivation, when there is a file that reads
 * as a key file; otherwise does nothing, and opening the repository reports what is wrong.
 * Never throws.
 */
export function deriveKeyAhead(root: string, password: string): Promise<Buffer> | undefined {
  try {
    const name = readdirSync(join(root, 'keys')).find(isId);
    if (!name) return undefined;
    const file = JSON.parse(readFileSync(join(root, 'keys', name), 'utf8')) as Record<string, unknown>;
    const { kdf, N, r, p, salt } = file;
    if (kdf !== 'scrypt' || typeof salt !== 'string') return undefined;
    if (![N, r, p].every((n) => Number.isSafeInteger(n) && (n as number) > 0)) return undefined;
    const params = { N: N as number, r: r as number, p: p as number, salt: Buffer.from(salt, 'base64') };
    const derived = derive(password, params);
    derived.catch(() => undefined); // a failure is the opening's to report, when it takes this
    ahead.set(aheadKey(params), { password, derived });
    return derived;
  } catch {
    return undefined; // no such directory, unreadable, not JSON: opening the repository says so
  }
}
