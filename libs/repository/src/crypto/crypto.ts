import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  timingSafeEqual,
  type Cipheriv,
  type KeyObject,
} from 'node:crypto';
// libsodium's native Poly1305 (prebuilt binaries in the package): about 1.6 GB/s here, three
// times its WebAssembly build, without that build's memory in every worker thread.
import sodium from 'sodium-native';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { passwordKey, type KdfParams } from './key-ahead.ts';

/** Bytes added to every encrypted message: a 16-byte IV before, a 16-byte MAC after. */
export const CRYPTO_OVERHEAD = 32;
const IV_SIZE = 16;
const MAC_SIZE = 16;

/**
 * A restic key: AES-256 for encryption, and Poly1305-AES for authentication (a 16-byte AES-128
 * key `k` that encrypts the nonce, and the 16-byte Poly1305 `r`). Design.rst, "Keys, Encryption and MAC".
 */
export interface CryptoKey {
  readonly encrypt: Uint8Array;
  readonly macK: Uint8Array;
  readonly macR: Uint8Array;
}

/** A fresh random key (a repository's master key). */
export function randomKey(): CryptoKey {
  return { encrypt: randomBytes(32), macK: randomBytes(16), macR: randomBytes(16) };
}

interface PreparedKey {
  readonly encrypt: KeyObject;
  /** AES-128-ECB with `k`: stateless block by block, so one cipher serves every nonce. */
  readonly macAes: Cipheriv;
}

/** Key objects made once per key: building them for every blob costs more than a small blob's AES. */
const prepared = new WeakMap<CryptoKey, PreparedKey>();

function prepare(key: CryptoKey): PreparedKey {
  let keys = prepared.get(key);
  if (!keys) {
    keys = {
      encrypt: createSecretKey(key.encrypt),
      macAes: createCipheriv('aes-128-ecb', key.macK, null).setAutoPadding(false),
    };
    prepared.set(key, keys);
  }
  return keys;
}

function mac(key: CryptoKey, iv: Uint8Array, ciphertext: Uint8Array): Buffer {
  // Poly1305-AES: the one-time key is r || AES_k(nonce).
  const s = prepare(key).macAes.update(iv);
  const oneTime = Buffer.allocUnsafe(32);
  oneTime.set(key.macR, 0);
  oneTime.set(s, 16);
  const tag = Buffer.allocUnsafe(MAC_SIZE);
  sodium.crypto_onetimeauth(
    tag,
    Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength),
    oneTime,
  );
  return tag;
}

/** Random bytes drawn at once for {@link freshIv}: one call to the generator per 256 IVs. */
const IV_POOL_BYTES = 4096;
let ivPool = Buffer.alloc(0);
let ivTaken = 0;

/**
 * 16 bytes of the system's CSPRNG for one message. Drawn 4 KiB at a time: a call per blob cost
 * more than sealing a small blob's bytes (restores and backups of many small files seal tens of
 * thousands). A used pool is never refilled, only replaced: an IV handed out stays as it was.
 */
function freshIv(): Buffer {
  if (ivTaken + IV_SIZE > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivTaken = 0;
  }
  ivTaken += IV_SIZE;
  return ivPool.subarray(ivTaken - IV_SIZE, ivTaken);
}

/**
 * The three pieces of an encrypted message, in order: IV, AES-256-CTR(plaintext), MAC. Kept
 * apart for whoever can store them apart (a pack's pieces): joining them copies every byte.
 */
export function encryptPieces(
  key: CryptoKey,
  plaintext: Uint8Array,
): [iv: Buffer, ciphertext: Buffer, mac: Buffer] {
  const iv = freshIv();
  const cipher = createCipheriv('aes-256-ctr', prepare(key).encrypt, iv);
  // CTR is a stream mode: update() returns every byte and final() none.
  const ciphertext = cipher.update(plaintext);
  const tail = cipher.final();
  const whole = tail.length ? Buffer.concat([ciphertext, tail]) : ciphertext;
  return [iv, whole, mac(key, iv, whole)];
}

/** IV || AES-256-CTR(plaintext) || MAC, as restic stores every encrypted file and blob. */
export function encrypt(key: CryptoKey, plaintext: Uint8Array): Buffer {
  return Buffer.concat(encryptPieces(key, plaintext));
}

/** Verifies the MAC, then decrypts; throws `VOLBACK_REPO_AUTHENTICATION` when it does not verify. */
export function decrypt(key: CryptoKey, message: Uint8Array): Buffer {
  if (message.length < CRYPTO_OVERHEAD) {
    throw new RepositoryError(
      RepositoryErrorCode.Authentication,
      `ciphertext of ${message.length} bytes is too short`,
    );
  }
  const iv = message.subarray(0, IV_SIZE);
  const ciphertext = message.subarray(IV_SIZE, message.length - MAC_SIZE);
  const expected = message.subarray(message.length - MAC_SIZE);
  if (!timingSafeEqual(mac(key, iv, ciphertext), expected)) {
    throw new RepositoryError(
      RepositoryErrorCode.Authentication,
      'MAC does not verify: wrong key or damaged data',
    );
  }
  const decipher = createDecipheriv('aes-256-ctr', prepare(key).encrypt, iv);
  const plain = decipher.update(ciphertext);
  const tail = decipher.final();
  return tail.length ? Buffer.concat([plain, tail]) : plain;
}

export type { KdfParams } from './key-ahead.ts';

/**
 * Derives the user key that unwraps a key file's master key: scrypt → 64 bytes → AES key, k, r
 * (a derivation the command line started ahead, for the same password and key file, counts).
 */
export async function deriveUserKey(password: string, params: KdfParams): Promise<CryptoKey> {
  const derived = await passwordKey(password, params);
  return { encrypt: derived.subarray(0, 32), macK: derived.subarray(32, 48), macR: derived.subarray(48, 64) };
}
