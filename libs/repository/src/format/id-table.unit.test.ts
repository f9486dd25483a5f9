import { describe, expect, it } from 'vitest';
import { ABSENT, IdTable } from './id-table.ts';
import { sha256Hex } from './ids.ts';

const idOf = (n: number) => sha256Hex(Buffer.from(`blob ${n}`));

describe('the packed id table', () => {
  it('as a set: adds an id of a kind once, and keeps the kinds apart', () => {
    const set = new IdTable();
    expect(set.add(0, idOf(1))).toBe(true);
    expect(set.add(0, idOf(1))).toBe(false);
    expect(set.has(0, idOf(1))).toBe(true);
    expect(set.has(1, idOf(1))).toBe(false);
    expect(set.add(1, idOf(1))).toBe(true);
    expect(set.has(1, idOf(1))).toBe(true);
    expect([set.size, set.rows]).toEqual([2, 2]);
    expect([set.kind(1), set.id(1)]).toEqual([1, idOf(1)]);
  });

  it('holds 200,000 ids through many growths, and finds none it was not given', () => {
    const set = new IdTable();
    for (let n = 0; n < 200_000; n++) set.add((n % 2) as 0 | 1, idOf(n));
    expect(set.size).toBe(200_000);
    for (let n = 0; n < 200_000; n += 997) {
      expect(set.has((n % 2) as 0 | 1, idOf(n))).toBe(true);
      expect(set.has(((n + 1) % 2) as 0 | 1, idOf(n))).toBe(false);
      expect(set.has(0, idOf(n + 200_000))).toBe(false);
    }
  });

  it('finds no string that is not an id, and refuses to add one', () => {
    const set = new IdTable();
    const upper = idOf(1).toUpperCase();
    for (const notId of [upper, idOf(1).slice(1), `${idOf(1)}0`, '', `${idOf(1).slice(2)}zz`]) {
      expect(set.find(0, notId)).toBe(ABSENT);
      expect(() => set.add(0, notId)).toThrow(TypeError);
    }
    expect(set.has(0, 42 as unknown as string)).toBe(false);
    expect([set.size, set.rows]).toEqual([0, 0]);
  });

  it('makes rows findable only once committed, the first row of a key being the one found', () => {
    const table = new IdTable();
    table.reserve(3);
    expect(table.write(0, 0, idOf(1))).toBe(true);
    expect(table.write(1, 0, idOf(1))).toBe(true);
    expect(table.write(2, 1, 'not an id')).toBe(false);
    expect(table.find(0, idOf(1))).toBe(ABSENT);
    table.commit(2);
    expect(table.find(0, idOf(1))).toBe(0);
    expect([table.size, table.rows]).toEqual([1, 2]);
  });
});
