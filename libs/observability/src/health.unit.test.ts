import { describe, expect, it } from 'vitest';
import {
  createHealthProbe,
  DuplicateHealthCheckError,
  MAX_DETAIL_LENGTH,
  startupCheck,
  summarizeDetail,
  type HealthCheck,
} from './health.ts';

const passing = (name: string, detail?: string): HealthCheck => ({
  name,
  check: async () => (detail === undefined ? { ok: true } : { ok: true, detail }),
});
const never = (name: string, calls: { count: number }): HealthCheck => ({
  name,
  check: () => {
    calls.count++;
    return new Promise(() => {});
  },
});

describe('createHealthProbe', () => {
  it('is ok with no checks', async () => {
    expect(await createHealthProbe([], 50).run()).toEqual({ ok: true, checks: [], failed: [] });
  });

  it('given passing checks, reports each as ok in order', async () => {
    const report = await createHealthProbe(
      [passing('nats-connected', '1 server'), passing('streams')],
      50,
    ).run();
    expect(report.ok).toBe(true);
    expect(report.failed).toEqual([]);
    expect(report.checks).toMatchObject([
      { name: 'nats-connected', ok: true, detail: '1 server' },
      { name: 'streams', ok: true },
    ]);
  });

  it('given a check that reports failure, names it and keeps its reason', async () => {
    const report = await createHealthProbe(
      [
        passing('nats-connected'),
        { name: 'streams', check: async () => ({ ok: false, detail: 'VOLBACK_EVENTS missing' }) },
      ],
      50,
    ).run();
    expect(report.ok).toBe(false);
    expect(report.failed).toEqual(['streams']);
    expect(report.checks[1]).toMatchObject({ ok: false, detail: 'VOLBACK_EVENTS missing' });
  });

  it('given a check that hangs, fails it at the timeout', async () => {
    const report = await createHealthProbe([never('storage', { count: 0 })], 30).run();
    expect(report).toMatchObject({ ok: false, failed: ['storage'] });
    expect(report.checks[0]?.detail).toBe('timed out after 30 ms');
    expect(report.checks[0]?.durationMs).toBeGreaterThanOrEqual(25);
  });

  it('given a check still running from the last probe, does not start it again', async () => {
    const calls = { count: 0 };
    const probe = createHealthProbe([never('storage', calls)], 10);
    await probe.run();
    await probe.run();
    expect(calls.count).toBe(1);
  });

  it('given checks that throw, synchronously or not, fails them with the message and no stack', async () => {
    const report = await createHealthProbe(
      [
        { name: 'async', check: async () => Promise.reject(new Error('connection refused\n    at x.ts:1')) },
        {
          name: 'sync',
          check: () => {
            throw new Error('nats://svc:pw@127.0.0.1:4222 unreachable');
          },
        },
        { name: 'odd', check: async () => undefined as never },
      ],
      50,
    ).run();
    expect(report.failed).toEqual(['async', 'sync', 'odd']);
    expect(report.checks.map((c) => c.detail)).toEqual([
      'connection refused',
      'nats://[REDACTED]@127.0.0.1:4222 unreachable',
      'check returned no result',
    ]);
  });

  it('refuses two checks with one name', () => {
    const probe = createHealthProbe([passing('nats-connected')], 50);
    expect(() => probe.add(passing('nats-connected'))).toThrow(DuplicateHealthCheckError);
  });
});

describe('summarizeDetail', () => {
  it('keeps the first line and bounds the length', () => {
    expect(summarizeDetail('  first\nsecond')).toBe('first');
    const long = summarizeDetail('x'.repeat(1000));
    expect(long).toHaveLength(MAX_DETAIL_LENGTH);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('startupCheck', () => {
  it('fails naming the step start-up is at, and passes once done', async () => {
    const startup = startupCheck('connecting to NATS');
    expect(startup.name).toBe('started');
    expect(await startup.check()).toEqual({ ok: false, detail: 'connecting to NATS' });
    startup.step('creating the streams');
    expect(await startup.check()).toEqual({ ok: false, detail: 'creating the streams' });
    startup.done();
    expect(await startup.check()).toEqual({ ok: true });
  });
});
