import { z } from 'zod';
import { decrypt, encrypt, type CryptoKey } from '../crypto/crypto.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

/** The repository's `config` file (encrypted, never compressed: it says which version to use). */
export const repoConfigSchema = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  id: z.string().regex(/^[0-9a-f]{64}$/),
  /** The chunker's irreducible polynomial, hex without prefix. */
  chunker_polynomial: z.string().regex(/^[0-9a-f]{1,16}$/),
});
/** A parsed config file. */
export type RepoConfig = z.infer<typeof repoConfigSchema>;

/** Encrypts a config for storing. */
export function encodeConfig(key: CryptoKey, config: RepoConfig): Buffer {
  return encrypt(key, Buffer.from(JSON.stringify(config), 'utf8'));
}

/** Decrypts and validates a stored config. */
export function decodeConfig(key: CryptoKey, stored: Uint8Array): RepoConfig {
  const plain = decrypt(key, stored);
  let value: unknown;
  try {
    value = JSON.parse(plain.toString('utf8'));
  } catch (cause) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, 'config: not JSON', { cause });
  }
  const version = (value as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== 1 && version !== 2) {
    throw new RepositoryError(
      RepositoryErrorCode.Unsupported,
      `repository format version ${version} is not supported (1 or 2)`,
    );
  }
  const parsed = repoConfigSchema.safeParse(value);
  if (!parsed.success) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, `config: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
