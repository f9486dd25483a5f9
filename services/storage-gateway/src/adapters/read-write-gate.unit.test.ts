import { describe, expect, it } from 'vitest';
import { ReadWriteGate } from './read-write-gate.ts';
import { Semaphore } from './semaphore.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('read-write gate', () => {
  it('runs shared holders together, an exclusive one alone, and lets no shared one overtake a waiting exclusive', async () => {
    const gate = new ReadWriteGate();
    const log: string[] = [];
    const hold = (name: string, exclusive: boolean) =>
      (exclusive ? gate.exclusive.bind(gate) : gate.shared.bind(gate))(async () => {
        log.push(`+${name}`);
        await tick();
        log.push(`-${name}`);
      });
    await Promise.all([hold('s1', false), hold('s2', false), hold('x', true), hold('s3', false)]);
    expect(log).toEqual(['+s1', '+s2', '-s1', '-s2', '+x', '-x', '+s3', '-s3']);
  });

  it('releases the gate when the holder throws', async () => {
    const gate = new ReadWriteGate();
    await expect(gate.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.exclusive(async () => 'next')).resolves.toBe('next');
  });
});

describe('semaphore', () => {
  it('holds at most its limit and hands slots on in arrival order', async () => {
    const slots = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        slots.run(async () => {
          running++;
          peak = Math.max(peak, running);
          order.push(n);
          await tick();
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(slots.held).toBe(0);
  });
});
