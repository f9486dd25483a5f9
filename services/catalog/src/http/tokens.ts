import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** `read`: GET and HEAD; `write`: every other method, and reads too. */
export type TokenScope = 'read' | 'write';

/** A bearer token the API accepts, kept only as the SHA-256 of the token. */
export interface AccessToken {
  /** Who holds it (the tokens file's `name`, or the env variable it came from); never the token. */
  readonly name: string;
  readonly scope: TokenScope;
  /** Lower-case hex SHA-256 of the token's UTF-8 bytes. */
  readonly sha256: string;
}

/** Hex SHA-256 of a token, as the tokens file holds it (`printf %s "$TOKEN" | sha256sum`). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** An {@link AccessToken} from a token in plain text (the env tokens, tests). */
export function accessToken(name: string, scope: TokenScope, token: string): AccessToken {
  return { name, scope, sha256: hashToken(token) };
}

/** `VOLBACK_CATALOG_TOKENS_FILE`: `{"tokens":[{"name","scope":"read"|"write","sha256"}]}`. */
export const tokensFileSchema = z.strictObject({
  tokens: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[\w.@:-]{1,64}$/, 'letters, digits, _ . @ : -, at most 64'),
        scope: z.enum(['read', 'write']),
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'the hex SHA-256 of the token (64 hex digits)'),
      }),
    )
    .min(1, 'lists no token'),
});

/**
 * Parses a tokens file. The error says where the file is wrong and never quotes it (a token
 * pasted in place of its hash must not reach the log).
 */
export function parseTokensFile(text: string): AccessToken[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault.
    throw new Error('is not valid JSON');
  }
  const parsed = tokensFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${issue.path.join('.') || 'the document'}: ${issue.message}`);
  }
  const tokens = parsed.data.tokens.map((t) => ({ ...t, sha256: t.sha256.toLowerCase() }));
  const seen = new Set<string>();
  for (const [i, token] of tokens.entries()) {
    if (seen.has(token.sha256)) throw new Error(`tokens.${i}.sha256: the same token is listed twice`);
    seen.add(token.sha256);
  }
  return tokens;
}

/** The tokens the API accepts; a presented token is compared with every one in constant time. */
export class TokenSet {
  readonly #tokens: ReadonlyArray<{ scope: TokenScope; digest: Buffer }>;
  /** True when some token has the write scope (then loopback writes need one too). */
  readonly hasWrite: boolean;

  constructor(tokens: readonly AccessToken[]) {
    this.#tokens = tokens.map((t) => ({ scope: t.scope, digest: Buffer.from(t.sha256, 'hex') }));
    this.hasWrite = tokens.some((t) => t.scope === 'write');
  }

  /** The scope of a presented token, undefined when it is none of ours. */
  scopeOf(token: string): TokenScope | undefined {
    const given = createHash('sha256').update(token, 'utf8').digest();
    let scope: TokenScope | undefined;
    // No early exit: the time taken does not tell which token (or how many) matched.
    for (const candidate of this.#tokens) {
      if (timingSafeEqual(given, candidate.digest) && scope !== 'write') scope = candidate.scope;
    }
    return scope;
  }
}
