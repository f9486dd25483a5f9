import { decrypt, encrypt, type CryptoKey } from '../crypto/crypto.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { compress, decompress } from './compression.ts';

/**
 * Encodes an index, snapshot or lock file (design.rst, "Unpacked Data Format"): in repository
 * version 2, `0x02 || zstd(JSON)`, encrypted; in version 1, the encrypted JSON.
 */
export function encodeUnpacked(key: CryptoKey, document: unknown, version: 1 | 2): Buffer {
  const json = Buffer.from(JSON.stringify(document), 'utf8');
  if (version === 1) return encrypt(key, json);
  return encrypt(key, Buffer.concat([Buffer.of(2), compress(json)]));
}

/** Decrypts and decodes an unpacked file of either version into its JSON value. */
export function decodeUnpacked(key: CryptoKey, stored: Uint8Array, what: string): unknown {
  const plain = decrypt(key, stored);
  let json: Buffer;
  const first = plain[0];
  if (first === 0x5b || first === 0x7b) json = plain;
  else if (first === 2) json = decompress(plain.subarray(1));
  else
    throw new RepositoryError(RepositoryErrorCode.Unsupported, `${what}: unknown encoding version ${first}`);
  try {
    return JSON.parse(json.toString('utf8'));
  } catch (cause) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, `${what}: not JSON`, { cause });
  }
}
