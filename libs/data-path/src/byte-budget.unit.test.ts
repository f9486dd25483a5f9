import { describe, expect, it } from 'vitest';
import { ByteBudget } from './byte-budget.ts';

describe('byte budget', () => {
  it('grants what fits at once, and the rest in the order asked as bytes come back', async () => {
    const budget = new ByteBudget(100);
    expect(budget.tryTake(60)).toBe(true);
    const granted: string[] = [];
    const big = budget.take(70).then(() => granted.push('big'));
    const small = budget.take(10).then(() => granted.push('small'));
    // Someone waits: a small take that would fit does not overtake them.
    expect(budget.tryTake(10)).toBe(false);
    await Promise.resolve();
    expect(granted).toEqual([]);
    budget.give(60);
    await Promise.all([big, small]);
    expect(granted).toEqual(['big', 'small']);
    expect(budget.used).toBe(80);
    budget.give(80);
    expect(budget.used).toBe(0);
  });

  it('grants a take larger than the whole budget when nothing else is taken', async () => {
    const budget = new ByteBudget(100);
    expect(budget.tryTake(150)).toBe(true);
    expect(budget.tryTake(1)).toBe(false);
    const next = budget.take(150);
    budget.give(150);
    await next;
    expect(budget.used).toBe(150);
  });
});
