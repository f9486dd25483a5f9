import type { Backend } from './backend/backend.ts';
import type { CryptoKey } from './crypto/crypto.ts';
import { RepositoryError, RepositoryErrorCode } from './errors.ts';
import { sha256Hex } from './format/ids.ts';
import { createKeyFile, openKeyFile, parseKeyFile } from './format/key-file.ts';

/** How many key files {@link unlockWithPassword} tries before giving up (restic: 20). */
const MAX_KEYS_TRIED = 20;

/** A key file's id and the metadata it records in plain text. */
export interface KeyInfo {
  readonly id: string;
  readonly username?: string;
  readonly hostname?: string;
  readonly created?: string;
}

/** Writes a key file that wraps `master` with `password`; returns its id. */
export async function saveKey(
  backend: Backend,
  master: CryptoKey,
  password: string,
  kdf?: { N: number; r: number; p: number },
): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(await createKeyFile(password, master, kdf)), 'utf8');
  const id = sha256Hex(bytes);
  await backend.save({ type: 'keys', name: id }, bytes);
  return id;
}

/**
 * Finds the key file `password` opens and hands its master key to `open`. A key file the password
 * does not open, or whose master key `open` rejects as not authentic or malformed, is passed over.
 */
export async function unlockWithPassword<T>(
  backend: Backend,
  password: string,
  open: (master: CryptoKey) => T,
): Promise<T> {
  let tried = 0;
  for await (const { name } of backend.list('keys')) {
    if (++tried > MAX_KEYS_TRIED) break;
    try {
      return open(await openKeyFile(parseKeyFile(await backend.load({ type: 'keys', name })), password));
    } catch (error) {
      const code = (error as RepositoryError).code;
      if (code === RepositoryErrorCode.Authentication || code === RepositoryErrorCode.Malformed) continue;
      throw error;
    }
  }
  throw new RepositoryError(
    RepositoryErrorCode.WrongPassword,
    `wrong password or no key found for ${backend.location}`,
  );
}

/** Key files with their metadata. */
export async function listKeys(backend: Backend): Promise<KeyInfo[]> {
  const keys = [];
  for await (const { name } of backend.list('keys')) {
    const file = parseKeyFile(await backend.load({ type: 'keys', name }));
    keys.push({ id: name, username: file.username, hostname: file.hostname, created: file.created });
  }
  return keys;
}

/** Removes a key file; refuses to remove the last one. */
export async function removeKey(backend: Backend, id: string): Promise<void> {
  const keys = await listKeys(backend);
  if (!keys.some((k) => k.id === id))
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `no key ${id}`);
  if (keys.length === 1)
    throw new RepositoryError(RepositoryErrorCode.Locked, 'refusing to remove the last key');
  await backend.remove({ type: 'keys', name: id });
}
