import { describe, expect, it } from 'vitest';
import { RecentKeys } from './recent-keys.ts';

describe('recent keys', () => {
  it('remembers at least the last `limit` keys added and never more than twice that many', () => {
    const keys = new RecentKeys(4);
    for (let i = 0; i < 10; i++) {
      keys.add(`k${i}`);
      expect(keys.size).toBeLessThanOrEqual(8);
      for (let back = 0; back < Math.min(4, i + 1); back++) expect(keys.has(`k${i - back}`)).toBe(true);
    }
    // Keys 0 to 3 went with the older generation when key 8 started a new one.
    expect(['k0', 'k1', 'k2', 'k3'].some((k) => keys.has(k))).toBe(false);
    expect(keys.size).toBe(6);
  });

  it('forgets a deleted key in either generation', () => {
    const keys = new RecentKeys(2);
    keys.add('a');
    keys.add('b');
    keys.add('c'); // a and b are now the older generation
    keys.delete('a');
    keys.delete('c');
    expect([keys.has('a'), keys.has('b'), keys.has('c')]).toEqual([false, true, false]);
  });
});
