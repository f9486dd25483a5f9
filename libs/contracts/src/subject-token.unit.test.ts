import { describe, expect, it } from 'vitest';
import { decodeSubjectToken, encodeSubjectToken } from './subject-token.ts';

/** What NATS accepts inside one token without any special meaning, and nothing else. */
const SAFE_TOKEN = /^[A-Za-z0-9_~-]+$/;

const TRICKY_IDS = [
  'shop_db.data',
  'a.b.c',
  '.',
  '..',
  '*',
  '>',
  'a*b',
  'a>b',
  'volback.evt.>',
  'with space',
  ' leading and trailing ',
  'tab\there',
  'line\nbreak',
  '~',
  '~2E',
  '~~',
  '%2E',
  'ünïcödé',
  '数据卷',
  'Ωmega-Ω',
  '🐳',
  '🐳.🎉 party',
  '\u0000nul',
  '\u007f',
  'x'.repeat(10_000),
  '🐳'.repeat(2_000),
];

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Random well-formed strings, biased towards characters that matter to NATS and to the encoding. */
function randomIds(count: number, seed: number): string[] {
  const next = random(seed);
  const special = ['.', '*', '>', ' ', '~', '-', '_', '\t', '/', '%', 'A', 'z', '0', 'é', '€', '🐳', '𝄞'];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + Math.floor(next() * 12);
    let id = '';
    for (let j = 0; j < length; j++) {
      if (next() < 0.6) id += special[Math.floor(next() * special.length)];
      else id += String.fromCodePoint(Math.floor(next() * 0xd7ff) + 1);
    }
    ids.push(id);
  }
  return ids;
}

describe('encodeSubjectToken / decodeSubjectToken', () => {
  it.each(TRICKY_IDS.map((id) => [JSON.stringify(id).slice(0, 40), id]))(
    'round-trips %s through a NATS-safe token',
    (_label, id) => {
      // when
      const token = encodeSubjectToken(id);
      // then
      expect(token).toMatch(SAFE_TOKEN);
      expect(decodeSubjectToken(token)).toBe(id);
    },
  );

  it('leaves letters, digits, - and _ as they are, so common ids stay readable', () => {
    expect(encodeSubjectToken('pg_data-1')).toBe('pg_data-1');
    expect(encodeSubjectToken('3f1c9d2e8b7a6f5e')).toBe('3f1c9d2e8b7a6f5e');
  });

  it('escapes every other UTF-8 byte as ~XX in upper-case hex, ~ included', () => {
    expect(encodeSubjectToken('shop_db.data')).toBe('shop_db~2Edata');
    expect(encodeSubjectToken('a b')).toBe('a~20b');
    expect(encodeSubjectToken('*')).toBe('~2A');
    expect(encodeSubjectToken('>')).toBe('~3E');
    expect(encodeSubjectToken('~')).toBe('~7E');
    expect(encodeSubjectToken('é')).toBe('~C3~A9');
    expect(encodeSubjectToken('🐳')).toBe('~F0~9F~90~B3');
  });

  it('gives different ids different tokens, including ids that look like escapes', () => {
    // given
    const ids = [
      ...new Set([...TRICKY_IDS, ...randomIds(3_000, 20_250_314), 'a.b', 'a~2Eb', 'a~2eb', '~7E']),
    ];
    // when
    const owners = new Map<string, string>();
    const collisions: string[] = [];
    for (const id of ids) {
      const token = encodeSubjectToken(id);
      const owner = owners.get(token);
      if (owner !== undefined && owner !== id)
        collisions.push(`${JSON.stringify(owner)} / ${JSON.stringify(id)}`);
      owners.set(token, id);
    }
    // then
    expect(collisions).toEqual([]);
    expect(owners.size).toBe(ids.length);
  });

  it('round-trips thousands of random ids', () => {
    const failures = randomIds(3_000, 42).filter((id) => {
      const token = encodeSubjectToken(id);
      return !SAFE_TOKEN.test(token) || decodeSubjectToken(token) !== id;
    });
    expect(failures).toEqual([]);
  });

  it('refuses an empty id', () => {
    expect(() => encodeSubjectToken('')).toThrow(RangeError);
    expect(() => encodeSubjectToken('')).toThrow(/empty id/);
  });

  it('refuses a string with a lone surrogate, which UTF-8 cannot carry (it would collide with U+FFFD)', () => {
    expect(() => encodeSubjectToken('\uD800')).toThrow(RangeError);
    expect(() => encodeSubjectToken('a\uDC00b')).toThrow(/surrogate/);
    expect(encodeSubjectToken('\uFFFD')).toBe('~EF~BF~BD');
  });

  it.each([
    ['the empty token', ''],
    ['a dot', 'a.b'],
    ['a space', 'a b'],
    ['a NATS wildcard *', '*'],
    ['a NATS wildcard >', '>'],
    ['a bare ~', '~'],
    ['a short escape', '~2'],
    ['lower-case hex', '~2e'],
    ['non-hex digits', '~ZZ'],
    ['non-ASCII', 'é'],
    ['an escape of a character that passes through', '~41'],
    ['an escape of - (one id, one token)', 'a~2Db'],
    ['bytes that are not UTF-8', '~FF'],
    ['a truncated UTF-8 sequence', '~C3'],
    ['an encoded surrogate', '~ED~A0~80'],
    ['an overlong UTF-8 form of /', '~C0~AF'],
  ])('decode refuses %s with a RangeError', (_label, token) => {
    expect(() => decodeSubjectToken(token)).toThrow(RangeError);
    expect(() => decodeSubjectToken(token)).toThrow(/not an encoded subject token/);
  });
});
