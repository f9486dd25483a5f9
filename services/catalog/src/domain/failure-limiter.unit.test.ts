import { describe, expect, it } from 'vitest';
import { FailureLimiter } from './failure-limiter.ts';

describe('FailureLimiter', () => {
  it('refuses an address after max failures until its window ends, and only that address', () => {
    const limiter = new FailureLimiter({ max: 3, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('192.0.2.1', 1_000)).toBeUndefined();
      limiter.fail('192.0.2.1', 1_000 + i);
    }
    expect(limiter.retryAfter('192.0.2.1', 1_002)).toBe(60);
    expect(limiter.retryAfter('192.0.2.1', 31_001)).toBe(30);
    expect(limiter.retryAfter('192.0.2.2', 1_002)).toBeUndefined();
    expect(limiter.retryAfter('192.0.2.1', 61_000)).toBeUndefined();
  });

  it('starts a new window once the old one ended', () => {
    const limiter = new FailureLimiter({ max: 2, windowMs: 1_000 });
    limiter.fail('a', 0);
    limiter.fail('a', 1_500);
    expect(limiter.retryAfter('a', 1_600)).toBeUndefined();
    limiter.fail('a', 1_700);
    expect(limiter.retryAfter('a', 1_800)).toBe(1);
  });

  it('keeps at most maxAddresses windows, dropping the oldest', () => {
    const limiter = new FailureLimiter({ max: 1, windowMs: 60_000 }, 2);
    limiter.fail('a', 0);
    limiter.fail('b', 1);
    limiter.fail('c', 2);
    expect(limiter.retryAfter('a', 3)).toBeUndefined();
    expect(limiter.retryAfter('b', 3)).toBe(60);
    expect(limiter.retryAfter('c', 3)).toBe(60);
  });
});
