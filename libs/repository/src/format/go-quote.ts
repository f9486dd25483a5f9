// restic stores a tree node's name as Go's strconv.Quote of its bytes without the surrounding
// quotes, and reads it back with strconv.Unquote (internal/restic/node.go). Names are bytes on
// Linux, so this works on bytes: invalid UTF-8 survives as `\xHH` escapes.
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

/**
 * Go's strconv.IsPrint beyond ASCII: letters, marks, numbers, punctuation and symbols. Go checks
 * against its own Unicode version; a rune one side thinks unassigned is only escaped
 * (`\uHHHH`), which Unquote on either side reads back to the same bytes.
 */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
/** Go's utf8.RuneError, returned (width 1) for a byte that does not start a valid sequence. */
const INVALID = -1;

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

/** Go's utf8.DecodeRune at `i`: the rune and its width, or {@link INVALID} and width 1. */
function decodeRune(bytes: Uint8Array, i: number): [rune: number, width: number] {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return [b0, 1];
  const cont = (j: number, low = 0x80, high = 0xbf) => {
    const b = bytes[i + j];
    return b !== undefined && b >= low && b <= high;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    if (cont(1)) return [((b0 & 0x1f) << 6) | (bytes[i + 1]! & 0x3f), 2];
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    // No overlong forms (E0 80..9F) and no surrogates (ED A0..BF).
    const low = b0 === 0xe0 ? 0xa0 : 0x80;
    const high = b0 === 0xed ? 0x9f : 0xbf;
    if (cont(1, low, high) && cont(2))
      return [((b0 & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f), 3];
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    // No overlong forms (F0 80..8F) and nothing above U+10FFFF (F4 90..BF).
    const low = b0 === 0xf0 ? 0x90 : 0x80;
    const high = b0 === 0xf4 ? 0x8f : 0xbf;
    if (cont(1, low, high) && cont(2) && cont(3))
      return [
        ((b0 & 0x07) << 18) |
          ((bytes[i + 1]! & 0x3f) << 12) |
          ((bytes[i + 2]! & 0x3f) << 6) |
          (bytes[i + 3]! & 0x3f),
        4,
      ];
  }
  return [INVALID, 1];
}

function escapeRune(rune: number): string {
  if (rune === 0x22 || rune === 0x5c) return `\\${String.fromCharCode(rune)}`;
  if (rune < 0x80) {
    if (rune >= 0x20 && rune < 0x7f) return String.fromCharCode(rune);
  } else {
    const char = String.fromCodePoint(rune);
    if (PRINTABLE.test(char)) return char;
  }
  switch (rune) {
    case 0x07:
      return '\\a';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x0b:
      return '\\v';
  }
  if (rune < 0x20 || rune === 0x7f) return `\\x${hex(rune, 2)}`;
  return rune < 0x10000 ? `\\u${hex(rune, 4)}` : `\\U${hex(rune, 8)}`;
}

/**
 * Go's `strconv.Quote` of these bytes, without the surrounding quotes: printable runes as they
 * are, `"` and `\` backslashed, `\a \b \f \n \r \t \v`, other control characters as `\xHH`, other
 * unprintable runes as `\uHHHH` / `\UHHHHHHHH`, and every byte that is not valid UTF-8 as `\xHH`.
 */
export function goQuote(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const [rune, width] = decodeRune(bytes, i);
    out += rune === INVALID ? `\\x${hex(bytes[i]!, 2)}` : escapeRune(rune);
    i += width;
  }
  return out;
}

/**
 * The bytes as text the way Go's encoding/json writes a string: each byte that does not start a
 * valid UTF-8 sequence becomes U+FFFD (one per byte, as Go; not per maximal subpart).
 */
export function goDisplayString(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const [rune, width] = decodeRune(bytes, i);
    out += rune === INVALID ? '\ufffd' : String.fromCodePoint(rune);
    i += width;
  }
  return out;
}

function pushUtf8(out: number[], rune: number): void {
  if (rune < 0x80) out.push(rune);
  else if (rune < 0x800) out.push(0xc0 | (rune >> 6), 0x80 | (rune & 0x3f));
  else if (rune < 0x10000) out.push(0xe0 | (rune >> 12), 0x80 | ((rune >> 6) & 0x3f), 0x80 | (rune & 0x3f));
  else
    out.push(
      0xf0 | (rune >> 18),
      0x80 | ((rune >> 12) & 0x3f),
      0x80 | ((rune >> 6) & 0x3f),
      0x80 | (rune & 0x3f),
    );
}

const HEX_DIGITS = { x: /^[0-9a-fA-F]{2}$/, u: /^[0-9a-fA-F]{4}$/, U: /^[0-9a-fA-F]{8}$/ } as const;
const SIMPLE_ESCAPES: Record<string, number> = {
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
  '\\': 0x5c,
  '"': 0x22,
};

/**
 * Go's `strconv.Unquote` of `"` + `quoted` + `"`, as bytes: every escape Go allows in a
 * double-quoted string (`\a \b \f \n \r \t \v \\ \"`, `\xHH`, `\ooo`, `\uHHHH`, `\UHHHHHHHH`);
 * other characters as their UTF-8 (a lone surrogate as U+FFFD, as Go's JSON decoder gives it).
 * What Go rejects (an unescaped `"`, a raw newline, `\'`, an unknown or short escape, a
 * surrogate or out-of-range `\u`/`\U`, an octal escape above `\377`) throws a
 * `VOLBACK_REPO_MALFORMED` error that starts with `what`.
 */
export function goUnquote(quoted: string, what: string): Buffer {
  function fail(reason: string, at: number): never {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `${what}: ${reason} at offset ${at} of ${JSON.stringify(quoted)} (not a Go-quoted string)`,
    );
  }
  const out: number[] = [];
  for (let i = 0; i < quoted.length;) {
    const c = quoted.charCodeAt(i);
    if (c === 0x22) fail("unescaped '\"'", i);
    if (c === 0x0a) fail('raw newline', i);
    if (c !== 0x5c) {
      const rune = quoted.codePointAt(i)!;
      i += rune > 0xffff ? 2 : 1;
      pushUtf8(out, rune >= 0xd800 && rune <= 0xdfff ? 0xfffd : rune);
      continue;
    }
    const at = i;
    const e = quoted[i + 1];
    i += 2;
    if (e === undefined) fail('backslash at the end', at);
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out.push(simple);
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const digits = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const text = quoted.slice(i, i + digits);
      if (!HEX_DIGITS[e].test(text)) fail(`\\${e} needs ${digits} hex digits`, at);
      i += digits;
      const value = parseInt(text, 16);
      // \x is one byte, possibly not UTF-8; \u and \U are runes.
      if (e === 'x') out.push(value);
      else if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
        fail(`\\${e}${text} is not a valid rune`, at);
      else pushUtf8(out, value);
    } else if (e >= '0' && e <= '7') {
      const text = quoted.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(text)) fail('an octal escape needs 3 digits', at);
      i += 2;
      const value = parseInt(text, 8);
      if (value > 0xff) fail(`\\${text} is above \\377`, at);
      out.push(value);
    } else {
      fail(`invalid escape \\${e}`, at);
    }
  }
  return Buffer.from(out);
}
