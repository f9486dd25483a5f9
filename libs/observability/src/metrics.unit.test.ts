import { describe, expect, it } from 'vitest';
import { createMetrics, PrefixedMetricNameError } from './metrics.ts';

describe('createMetrics', () => {
  it('collects default Node metrics under volback_ with the service label', async () => {
    const { registry } = createMetrics({ service: 'agent' });
    const text = await registry.metrics();
    expect(text).toMatch(/^volback_process_cpu_user_seconds_total\{service="agent"\} /m);
    expect(text).toMatch(/^volback_nodejs_heap_size_used_bytes\{service="agent"\} /m);
  });

  it('prefixes the metrics it creates and labels them with the service', async () => {
    const metrics = createMetrics({ service: 'gateway', defaultMetrics: false });
    const packs = metrics.counter({
      name: 'packs_written_total',
      help: 'Packs written.',
      labelNames: ['backend'],
    });
    const inFlight = metrics.gauge({ name: 'chunks_in_flight', help: 'Chunks being stored.' });
    const latency = metrics.histogram({
      name: 'pack_write_seconds',
      help: 'Pack write time.',
      buckets: [0.1, 1],
    });
    packs.inc({ backend: 's3' }, 2);
    inFlight.set(3);
    latency.observe(0.5);
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE volback_packs_written_total counter');
    expect(text).toContain('volback_packs_written_total{backend="s3",service="gateway"} 2');
    expect(text).toContain('volback_chunks_in_flight{service="gateway"} 3');
    expect(text).toContain('volback_pack_write_seconds_bucket{le="1",service="gateway"} 1');
    expect(text).not.toContain('process_cpu');
  });

  it('keeps each registry to itself, so two in one process do not collide', async () => {
    const a = createMetrics({ service: 'a' });
    const b = createMetrics({ service: 'b' });
    a.counter({ name: 'events_total', help: 'Events.' }).inc();
    b.counter({ name: 'events_total', help: 'Events.' });
    expect(await a.registry.metrics()).toContain('volback_events_total{service="a"} 1');
    expect(await b.registry.metrics()).toContain('volback_events_total{service="b"} 0');
  });

  it('refuses a name that already carries the prefix', () => {
    const metrics = createMetrics({ service: 'agent', defaultMetrics: false });
    expect(() => metrics.counter({ name: 'volback_backups_total', help: 'Backups.' })).toThrow(
      PrefixedMetricNameError,
    );
  });
});
