import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from './health.ts';
import { createLogger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { startOpsServer, type HealthResponse, type OpsServer, type OpsServerOptions } from './ops-server.ts';

const servers: OpsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Started {
  server: OpsServer;
  metrics: Metrics;
  logLines: () => Record<string, unknown>[];
}

async function start(options: Partial<OpsServerOptions> = {}): Promise<Started> {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ service: 'ops-test', pretty: false, env: {}, destination });
  const metrics = createMetrics({ service: 'ops-test' });
  const server = await startOpsServer({ port: 0, logger, registry: metrics.registry, ...options });
  servers.push(server);
  return { server, metrics, logLines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function getJson(url: string): Promise<{ status: number; body: HealthResponse; raw: string }> {
  const res = await fetch(url);
  const raw = await res.text();
  return { status: res.status, body: JSON.parse(raw) as HealthResponse, raw };
}

const ok = (name: string, detail?: string): HealthCheck => ({
  name,
  check: async () => (detail === undefined ? { ok: true } : { ok: true, detail }),
});

describe('ops server', () => {
  it('listens on a random loopback port when asked for port 0', async () => {
    const { server } = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('answers /healthz with 200 while the process serves', async () => {
    const { server } = await start();
    const res = await getJson(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', checks: [] });
  });

  it('answers /healthz with 503 when a liveness check fails', async () => {
    const { server } = await start({
      checks: {
        liveness: [{ name: 'worker-alive', check: async () => ({ ok: false, detail: 'worker exited' }) }],
      },
    });
    const res = await getJson(`${server.url}/healthz`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'fail', failed: ['worker-alive'] });
  });

  it('answers /readyz with 200 and every check when all pass', async () => {
    const { server } = await start({
      checks: { readiness: [ok('nats-connected', 'nats://127.0.0.1:4222'), ok('streams-present')] },
    });
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toMatchObject({
      status: 'ok',
      checks: [
        { name: 'nats-connected', ok: true, detail: 'nats://127.0.0.1:4222' },
        { name: 'streams-present', ok: true },
      ],
    });
  });

  it('answers /readyz with 503 naming the failing check and its reason', async () => {
    const { server } = await start({
      checks: {
        readiness: [
          ok('nats-connected'),
          {
            name: 'streams-present',
            check: async () => ({ ok: false, detail: 'stream VOLBACK_EVENTS not found' }),
          },
        ],
      },
    });
    const res = await getJson(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.body.failed).toEqual(['streams-present']);
    expect(res.body.checks).toMatchObject([
      { name: 'nats-connected', ok: true },
      { name: 'streams-present', ok: false, detail: 'stream VOLBACK_EVENTS not found' },
    ]);
  });

  it('answers /readyz with 503 when a check does not answer within the timeout', async () => {
    const { server } = await start({
      checkTimeoutMs: 100,
      checks: {
        readiness: [ok('nats-connected'), { name: 'storage-reachable', check: () => new Promise(() => {}) }],
      },
    });
    const began = Date.now();
    const res = await getJson(`${server.url}/readyz`);
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(res.status).toBe(503);
    expect(res.body.failed).toEqual(['storage-reachable']);
    expect(res.body.checks[1]).toMatchObject({ ok: false, detail: 'timed out after 100 ms' });
  });

  it('answers /readyz with 503 and the message, but no stack, when a check throws', async () => {
    const { server, logLines } = await start({
      checks: {
        readiness: [
          {
            name: 'nats-connected',
            check: async () => {
              throw new Error('connection refused by nats://volback:hunter2@127.0.0.1:4222');
            },
          },
        ],
      },
    });
    const res = await getJson(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.body.failed).toEqual(['nats-connected']);
    expect(res.body.checks[0]?.detail).toBe('connection refused by nats://[REDACTED]@127.0.0.1:4222');
    expect(res.raw).not.toMatch(/\bat .*\.ts:\d+|stack|hunter2/);

    await fetch(`${server.url}/readyz`);
    const warnings = logLines().filter((l) => l['level'] === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ component: 'ops-server', kind: 'readiness' });
    expect(JSON.stringify(warnings)).not.toContain('hunter2');
  });

  it('takes checks added after start, for dependencies that connect later', async () => {
    const { server } = await start();
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    let connected = false;
    server.addCheck('readiness', {
      name: 'nats-connected',
      check: async () => (connected ? { ok: true } : { ok: false, detail: 'connecting' }),
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    connected = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('serves default metrics and custom ones with the service label on /metrics', async () => {
    const { server, metrics } = await start();
    metrics
      .counter({ name: 'backups_completed_total', help: 'Backups completed.', labelNames: ['host'] })
      .inc({
        host: 'docker-1',
      });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^volback_process_resident_memory_bytes\{service="ops-test"\} \d+/m);
    expect(text).toMatch(/^volback_nodejs_eventloop_lag_seconds\{service="ops-test"\} /m);
    expect(text).toContain('# HELP volback_backups_completed_total Backups completed.');
    expect(text).toContain('volback_backups_completed_total{host="docker-1",service="ops-test"} 1');
  });

  it('answers 500 without internals when the metrics cannot be produced', async () => {
    const { server, metrics } = await start();
    metrics.gauge({
      name: 'broken',
      help: 'A gauge whose collector fails.',
      collect() {
        throw new Error('secret internal detail');
      },
    });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('secret internal detail');
  });

  it('stops listening on close, and close can be called twice', async () => {
    const { server } = await start();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await server.close();
    await server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
