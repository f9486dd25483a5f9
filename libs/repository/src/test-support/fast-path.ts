import { expect } from 'vitest';

/**
 * Holds a hand-written validator to its zod schema: every value the fast path takes (not
 * undefined) the schema takes too, with the same result (`fromSchema` picks what the fast path
 * returns out of the schema's output). Returns how many values took the fast path.
 */
export function expectFastPathSound<T>(
  fastPath: (value: unknown) => T | undefined,
  schema: { safeParse(value: unknown): { success: boolean; data?: unknown } },
  fromSchema: (data: never) => unknown,
  values: readonly unknown[],
): number {
  let fast = 0;
  for (const value of values) {
    const plain = fastPath(value);
    if (plain === undefined) continue;
    fast++;
    const parsed = schema.safeParse(value);
    expect(parsed.success, JSON.stringify(value)).toBe(true);
    expect(plain, JSON.stringify(value)).toEqual(fromSchema(parsed.data as never));
  }
  return fast;
}
