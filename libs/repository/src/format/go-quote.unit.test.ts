import { describe, expect, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { goDisplayString, goQuote, goUnquote } from './go-quote.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');
const utf8 = (text: string) => Buffer.from(text, 'utf8');

// Go's strconv.Quote(input), quotes removed (the outputs Go 1.19 and later print).
const quoteTable: Array<[input: Buffer, quoted: string]> = [
  [utf8(''), ''],
  [utf8('abc'), 'abc'],
  [bytes('\x80'), '\\x80'],
  [utf8('\u00a0'), '\\u00a0'],
  [utf8('☺'), '☺'],
  [utf8('\u263a\t'), '☺\\t'],
  [utf8('a\\b'), 'a\\\\b'],
  [utf8('q"x'), 'q\\"x'],
  [utf8("'`$%<>&"), "'`$%<>&"],
  [utf8('tab\there'), 'tab\\there'],
  [utf8('line\nbreak'), 'line\\nbreak'],
  [utf8('\x07\x08\x0c\n\r\t\x0b'), '\\a\\b\\f\\n\\r\\t\\v'],
  [utf8('\x00\x1f\x7f'), '\\x00\\x1f\\x7f'],
  [bytes('f\x80\xff'), 'f\\x80\\xff'],
  // Each byte of a truncated, overlong, surrogate or too-large sequence on its own.
  [bytes('\xe2\x82'), '\\xe2\\x82'],
  [bytes('\xe2\x82A'), '\\xe2\\x82A'],
  [bytes('\xf0\x9f\x98'), '\\xf0\\x9f\\x98'],
  [bytes('\xed\xa0\x80'), '\\xed\\xa0\\x80'],
  [bytes('\xc0\xaf'), '\\xc0\\xaf'],
  [bytes('\xf4\x90\x80\x80'), '\\xf4\\x90\\x80\\x80'],
  // A valid U+FFFD is a printable symbol.
  [utf8('\ufffd'), '\ufffd'],
  // Format, separator and other non-printable runes.
  [utf8('\u00ad'), '\\u00ad'],
  [utf8('\u0085'), '\\u0085'],
  [utf8('\u200b'), '\\u200b'],
  [utf8('\u2028'), '\\u2028'],
  [utf8('\u3000'), '\\u3000'],
  [utf8('\ufeff'), '\\ufeff'],
  [utf8('\u{e0001}'), '\\U000e0001'],
  [utf8('\u{10ffff}'), '\\U0010ffff'],
  // Printable beyond the BMP, marks, letters.
  [utf8('😀'), '😀'],
  [utf8('\u{1d11e}'), '\u{1d11e}'],
  [utf8('\u0301e'), '\u0301e'],
  [utf8('é日本語'), 'é日本語'],
];

describe('goQuote', () => {
  it.each(quoteTable)('quotes %j as Go does', (input, quoted) => {
    expect(goQuote(input)).toBe(quoted);
  });
});

describe('goUnquote', () => {
  it.each(quoteTable)('gives back the bytes of %j', (input, quoted) => {
    expect(goUnquote(quoted, 'test')).toEqual(input);
  });

  // Go's strconv.Unquote(`"` + input + `"`) on escapes Quote never writes.
  it.each<[string, Buffer]>([
    ['\\a\\b\\f\\n\\r\\t\\v\\\\\\"', utf8('\x07\x08\x0c\n\r\t\x0b\\"')],
    ['\\x41\\x80', bytes('A\x80')],
    ['\\xAB', bytes('\xab')],
    ['\\101\\377', bytes('A\xff')],
    ['\\u00e9\\U0001F600', utf8('é😀')],
    ['\\u00E9', utf8('é')],
    ['a\tb', utf8('a\tb')],
    ['a\rb', utf8('a\rb')],
    // A lone surrogate (a JSON `\ud800`) is U+FFFD, as Go's JSON decoder makes it.
    ['\ud800', utf8('\ufffd')],
  ])('reads %j', (quoted, expected) => {
    expect(goUnquote(quoted, 'test')).toEqual(expected);
  });

  // Each is "invalid syntax" for Go's strconv.Unquote.
  it.each([
    ["\\'", 'invalid escape'],
    ['a"b', 'unescaped'],
    ['a\nb', 'raw newline'],
    ['\\400', 'above'],
    ['\\0', 'octal'],
    ['\\08', 'octal'],
    ['\\ud800', 'not a valid rune'],
    ['\\U00110000', 'not a valid rune'],
    ['\\q', 'invalid escape'],
    ['\\X41', 'invalid escape'],
    ['\\x4', 'hex digits'],
    ['\\xZZ', 'hex digits'],
    ['\\u12', 'hex digits'],
    ['abc\\', 'at the end'],
  ])('rejects %j like Go', (quoted, reason) => {
    let thrown: unknown;
    try {
      goUnquote(quoted, 'tree 1234: node name');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: RepositoryErrorCode.Malformed });
    expect((thrown as Error).message).toMatch(/^tree 1234: node name: /);
    expect((thrown as Error).message).toContain(reason);
  });
});

describe('goDisplayString', () => {
  it('shows each invalid byte as U+FFFD, as Go writes such a string in JSON', () => {
    expect(goDisplayString(bytes('f\x80\xff'))).toBe('f\ufffd\ufffd');
    expect(goDisplayString(bytes('\xe2\x82A'))).toBe('\ufffd\ufffdA');
    expect(goDisplayString(utf8('é😀'))).toBe('é😀');
  });
});
