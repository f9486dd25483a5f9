import { describe, expect, it } from 'vitest';
import { formatGoTime, parseGoTime } from './ids.ts';

describe('Go times (RFC 3339 with nanoseconds)', () => {
  it('parse what format writes, also one after another within a second and across seconds', () => {
    const times = [
      1_700_000_000_123_456_789n,
      1_700_000_000_000_000_001n,
      1_700_000_000_000_000_000n,
      1_700_000_001_500_000_000n,
      1_700_000_000_999_999_999n,
      0n,
      -1n,
    ];
    for (const ns of times) expect(parseGoTime(formatGoTime(ns)), formatGoTime(ns)).toBe(ns);
  });

  it('take offsets and short fractions as restic writes them', () => {
    expect(parseGoTime('2023-11-14T22:13:20.5+01:00')).toBe(1_699_996_400_500_000_000n);
    expect(parseGoTime('2023-11-14T22:13:20+01:00')).toBe(1_699_996_400_000_000_000n);
    expect(parseGoTime('2023-11-14T21:13:20Z')).toBe(1_699_996_400_000_000_000n);
  });

  it('refuse what is not one', () => {
    for (const bad of [
      '',
      '2023-11-14',
      '2023-11-14T21:13:20',
      '2023-13-40T21:13:20Z',
      '2023-11-14T21:13:20.1234567891Z',
    ])
      expect(() => parseGoTime(bad), bad).toThrow(RangeError);
  });
});
