// A key derived ahead (as the command line starts it before it loads) on a real repository in a
// directory: taken once, only for the same password and key file; opening the repository works
// with it, a wrong password is still refused, and a directory without a usable key file starts
// nothing.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/polynomial.ts';
import { RepositoryErrorCode } from '../errors.ts';
import { parseKeyFile } from '../format/key-file.ts';
import { Repository } from '../repository.ts';
import { deriveKeyAhead, passwordKey } from './key-ahead.ts';

const PASSWORD = 'correct horse';

async function repository(): Promise<{ root: string; params: Parameters<typeof passwordKey>[1] }> {
  const root = join(mkdtempSync(join(tmpdir(), 'volback-key-ahead-')), 'repo');
  await Repository.init(new LocalBackend(root), PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
  const [name] = readdirSync(join(root, 'keys'));
  const file = parseKeyFile(readFileSync(join(root, 'keys', name!)));
  return { root, params: { N: file.N, r: file.r, p: file.p, salt: Buffer.from(file.salt, 'base64') } };
}

describe('deriveKeyAhead', () => {
  it('derives the key opening the repository takes, once, for the same password only', async () => {
    const { root, params } = await repository();
    const ahead = deriveKeyAhead(root, PASSWORD);
    expect(ahead).toBeDefined();
    expect(passwordKey(PASSWORD, params)).toBe(ahead);
    const again = passwordKey(PASSWORD, params);
    expect(again).not.toBe(ahead);
    expect(await again).toEqual(await ahead);

    const other = deriveKeyAhead(root, 'another password');
    expect(passwordKey(PASSWORD, params)).not.toBe(other);
    expect(passwordKey('another password', params)).not.toBe(other); // dropped by the miss before
  });

  it('opens the repository with the key derived ahead; a wrong password is still refused', async () => {
    const { root } = await repository();
    deriveKeyAhead(root, PASSWORD);
    const repo = await Repository.open(new LocalBackend(root), PASSWORD);
    expect(repo.config.id).toMatch(/^[0-9a-f]{64}$/);

    deriveKeyAhead(root, PASSWORD);
    await expect(Repository.open(new LocalBackend(root), 'wrong')).rejects.toMatchObject({
      code: RepositoryErrorCode.WrongPassword,
    });
    deriveKeyAhead(root, 'wrong');
    await expect(Repository.open(new LocalBackend(root), 'wrong')).rejects.toMatchObject({
      code: RepositoryErrorCode.WrongPassword,
    });
  });

  it('starts nothing without a key file that reads as one, and never throws', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-key-ahead-'));
    expect(deriveKeyAhead(join(dir, 'missing'), PASSWORD)).toBeUndefined();
    mkdirSync(join(dir, 'keys'));
    expect(deriveKeyAhead(dir, PASSWORD)).toBeUndefined();
    const name = 'a'.repeat(64);
    writeFileSync(join(dir, 'keys', name), 'not json');
    expect(deriveKeyAhead(dir, PASSWORD)).toBeUndefined();
    writeFileSync(
      join(dir, 'keys', name),
      JSON.stringify({ kdf: 'scrypt', N: -1, r: 8, p: 1, salt: 'AA==' }),
    );
    expect(deriveKeyAhead(dir, PASSWORD)).toBeUndefined();
    writeFileSync(join(dir, 'keys', name), JSON.stringify({ kdf: 'argon2', N: 2, r: 8, p: 1, salt: 'AA==' }));
    expect(deriveKeyAhead(dir, PASSWORD)).toBeUndefined();
  });
});
