import { describe, expect, it } from 'vitest';
import { ABSENT, capacityFor, Column, IdTable, PAGE_ROWS } from './id-table.ts';
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

  it('grows by doubling up to a page, then a page at a time', () => {
    expect(capacityFor(10, 64)).toBe(64);
    expect(capacityFor(65, 64)).toBe(128);
    expect(capacityFor(PAGE_ROWS, 64)).toBe(PAGE_ROWS);
    expect(capacityFor(PAGE_ROWS + 1, PAGE_ROWS)).toBe(2 * PAGE_ROWS);
    expect(capacityFor(5 * PAGE_ROWS + 3, 2 * PAGE_ROWS)).toBe(6 * PAGE_ROWS);
    const table = new IdTable();
    table.reserve(3 * PAGE_ROWS + 1);
    expect(table.capacity).toBe(4 * PAGE_ROWS);
  });
});

describe('a paged column', () => {
  it('keeps every value through its growth, copying only its first page and only while it is not full', () => {
    const column = new Column(Uint32Array, 2);
    const rows = 3 * PAGE_ROWS + 100;
    let capacity = 64;
    for (let row = 0; row < rows; row++) {
      const wanted = capacityFor(row + 1, capacity);
      if (wanted !== capacity) column.resize((capacity = wanted));
      const at = column.at(row);
      column.page(row)[at] = row;
      column.page(row)[at + 1] = rows - row;
    }
    const pages = column.pages();
    expect(pages.map((page) => page.length)).toEqual([2, 2, 2, 2].map((w) => w * PAGE_ROWS));
    const second = pages[1];
    column.resize(5 * PAGE_ROWS);
    expect(column.pages()[1]).toBe(second);
    expect(column.pages()).toHaveLength(5);
    for (let row = 0; row < rows; row += 7) {
      expect(column.page(row)[column.at(row)]).toBe(row);
      expect(column.page(row)[column.at(row) + 1]).toBe(rows - row);
    }
    const flags = new Column(Uint8Array);
    flags.resize(PAGE_ROWS + 1);
    flags.set(PAGE_ROWS, 7);
    expect([flags.get(PAGE_ROWS), flags.get(PAGE_ROWS - 1)]).toEqual([7, 0]);
  });
});
