/**
 * One reversible encoding that makes any id safe as a single NATS subject token.
 *
 * NATS splits subjects at `.` and treats `*`, `>` and whitespace specially, but Docker volume names
 * may contain dots. Letters, digits, `-` and `_` pass through unchanged; every other UTF-8 byte
 * becomes `~XX` (upper-case hex), so `~` itself is escaped too and decoding is unambiguous.
 */
export function encodeSubjectToken(id: string): string {
  if (id.length === 0) throw new RangeError('an empty id cannot be a subject token');
  // TextEncoder turns a lone surrogate into U+FFFD, so two different ids would share a token.
  if (!id.isWellFormed())
    throw new RangeError('an id with a lone UTF-16 surrogate cannot be a subject token');
  let out = '';
  for (const byte of new TextEncoder().encode(id)) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(char) ? char : `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of {@link encodeSubjectToken}; throws on a token that encoding could not have produced. */
export function decodeSubjectToken(token: string): string {
  if (!/^(?:[A-Za-z0-9_-]|~[0-9A-F]{2})+$/.test(token)) {
    throw new RangeError(`not an encoded subject token: ${JSON.stringify(token)}`);
  }
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '~') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  let id: string;
  try {
    id = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch (cause) {
    throw new RangeError(`not an encoded subject token (bytes are not UTF-8): ${JSON.stringify(token)}`, {
      cause,
    });
  }
  // `~41` decodes to `A`, which encodes as `A`: one id must have exactly one token.
  if (encodeSubjectToken(id) !== token) {
    throw new RangeError(
      `not an encoded subject token (escapes a character that passes through): ${JSON.stringify(token)}`,
    );
  }
  return id;
}
