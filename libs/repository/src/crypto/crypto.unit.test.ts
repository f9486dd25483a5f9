import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { CRYPTO_OVERHEAD, decrypt, encrypt, encryptPieces, randomKey } from './crypto.ts';

describe('encryption (AES-256-CTR, Poly1305-AES)', () => {
  it('gives every message an IV of its own, and one handed out stays as it was', () => {
    const key = randomKey();
    // More messages than one draw of random bytes holds (256 IVs), kept while later ones are made.
    const messages = Array.from({ length: 1_000 }, (_, i) => randomBytes(i % 50));
    const pieces = messages.map((plain) => encryptPieces(key, plain));
    const ivs = pieces.map(([iv]) => Buffer.from(iv).toString('hex'));
    expect(new Set(ivs).size).toBe(messages.length);
    for (const [i, [iv, ciphertext, mac]] of pieces.entries()) {
      expect(iv.length).toBe(16);
      expect(Buffer.from(iv).toString('hex')).toBe(ivs[i]);
      expect(decrypt(key, Buffer.concat([iv, ciphertext, mac])).equals(messages[i]!)).toBe(true);
    }
  });

  it('refuses a message whose bytes or key changed (VOLBACK_REPO_AUTHENTICATION)', () => {
    const key = randomKey();
    const message = encrypt(key, Buffer.from('volume data'));
    expect(message.length).toBe(11 + CRYPTO_OVERHEAD);
    const changed = Buffer.from(message);
    changed[20]! ^= 1;
    for (const [k, m] of [
      [key, changed],
      [randomKey(), message],
    ] as const) {
      expect(() => decrypt(k, m)).toThrow(
        expect.objectContaining({ code: RepositoryErrorCode.Authentication }),
      );
    }
  });
});
