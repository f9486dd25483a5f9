import { describe, expect, it } from 'vitest';
import { RecentKeys } from './recent-keys.ts';

/** The `n`th test id: 64 hex digits. */
const id = (n: number) => n.toString(16).padStart(64, '0');

describe('recent keys', () => {
  it('remembers at least the last `limit` blobs added and never more than twice that many', () => {
    const keys = new RecentKeys(4);
    for (let i = 0; i < 10; i++) {
      keys.add('data', id(i));
      expect(keys.size).toBeLessThanOrEqual(8);
      for (let back = 0; back < Math.min(4, i + 1); back++) expect(keys.has('data', id(i - back))).toBe(true);
    }
    // Blobs 0 to 3 went with the older generation when blob 8 started a new one.
    expect([0, 1, 2, 3].some((n) => keys.has('data', id(n)))).toBe(false);
    expect(keys.size).toBe(6);
  });

  it('tells a tree from a data blob of the same id, and holds no string that is no id', () => {
    const keys = new RecentKeys(4);
    keys.add('tree', id(1));
    expect([keys.has('tree', id(1)), keys.has('data', id(1))]).toEqual([true, false]);
    keys.add('data', 'not-an-id');
    expect(keys.has('data', 'not-an-id')).toBe(false);
    expect(keys.size).toBe(1);
  });

  it('forgets a deleted blob in either generation, and knows it again once added again', () => {
    const keys = new RecentKeys(2);
    keys.add('data', id(1));
    keys.add('data', id(2));
    keys.add('data', id(3)); // 1 and 2 are now the older generation
    keys.delete('data', id(1));
    keys.delete('data', id(3));
    expect([1, 2, 3].map((n) => keys.has('data', id(n)))).toEqual([false, true, false]);
    keys.add('data', id(3));
    expect(keys.has('data', id(3))).toBe(true);
    // 1 leaves with its generation; nothing deleted comes back with a rotation.
    keys.add('data', id(4));
    keys.add('data', id(5));
    expect([1, 2, 3, 4, 5].map((n) => keys.has('data', id(n)))).toEqual([false, false, true, true, true]);
  });
});
