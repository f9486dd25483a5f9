import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { decrypt, deriveUserKey, encrypt, type CryptoKey } from '../crypto/crypto.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { currentUsername } from '../os-user.ts';
import { formatGoTime } from './ids.ts';

/** A key file in `keys/` (plain JSON; only `data` is encrypted, with the password-derived key). */
export const keyFileSchema = z.object({
  created: z.string().optional(),
  username: z.string().optional(),
  hostname: z.string().optional(),
  kdf: z.literal('scrypt'),
  N: z.number().int().positive(),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  salt: z.string(),
  data: z.string(),
});
/** A parsed key file. */
export type KeyFile = z.infer<typeof keyFileSchema>;

const masterKeySchema = z.object({
  mac: z.object({ k: z.string(), r: z.string() }),
  encrypt: z.string(),
});

/** scrypt cost for new keys: restic's minimum work factor, about 0.1 s here. */
export const DEFAULT_KDF = { N: 32768, r: 8, p: 1 } as const;

function b64(data: Uint8Array): string {
  return Buffer.from(data).toString('base64');
}

/** Makes a key file that wraps `master` with `password`. */
export async function createKeyFile(
  password: string,
  master: CryptoKey,
  kdf: { N: number; r: number; p: number } = DEFAULT_KDF,
): Promise<KeyFile> {
  const salt = randomBytes(64);
  const userKey = await deriveUserKey(password, { ...kdf, salt });
  const payload = JSON.stringify({
    mac: { k: b64(master.macK), r: b64(master.macR) },
    encrypt: b64(master.encrypt),
  });
  return {
    created: formatGoTime(BigInt(Date.now()) * 1_000_000n),
    username: currentUsername(),
    hostname: hostname(),
    kdf: 'scrypt',
    ...kdf,
    salt: b64(salt),
    data: b64(encrypt(userKey, Buffer.from(payload, 'utf8'))),
  };
}

/** Parses key file bytes; malformed files are `VOLBACK_REPO_MALFORMED`. */
export function parseKeyFile(bytes: Uint8Array): KeyFile {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, 'key file is not JSON', { cause });
  }
  const parsed = keyFileSchema.safeParse(value);
  if (!parsed.success)
    throw new RepositoryError(RepositoryErrorCode.Malformed, `key file: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Unwraps the master key with `password`; throws `VOLBACK_REPO_AUTHENTICATION` when it does not fit. */
export async function openKeyFile(file: KeyFile, password: string): Promise<CryptoKey> {
  if (file.N > 2 ** 22 || file.r * file.p > 1024) {
    throw new RepositoryError(
      RepositoryErrorCode.Unsupported,
      `key file asks for unreasonable scrypt cost N=${file.N} r=${file.r} p=${file.p}`,
    );
  }
  const userKey = await deriveUserKey(password, {
    N: file.N,
    r: file.r,
    p: file.p,
    salt: Buffer.from(file.salt, 'base64'),
  });
  const plain = decrypt(userKey, Buffer.from(file.data, 'base64'));
  const parsed = masterKeySchema.safeParse(JSON.parse(plain.toString('utf8')));
  if (!parsed.success)
    throw new RepositoryError(RepositoryErrorCode.Malformed, 'key file holds no master key');
  const key = {
    encrypt: Buffer.from(parsed.data.encrypt, 'base64'),
    macK: Buffer.from(parsed.data.mac.k, 'base64'),
    macR: Buffer.from(parsed.data.mac.r, 'base64'),
  };
  if (key.encrypt.length !== 32 || key.macK.length !== 16 || key.macR.length !== 16) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, 'master key has the wrong size');
  }
  return key;
}
