import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startNatsServer, startProcess, waitUntil, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('scheduler process (main.ts)', () => {
  let nats: NatsServer;
  let scratch: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    scratch = await mkdtemp(join(tmpdir(), 'volback-scheduler-main-'));
  });

  afterAll(async () => {
    await nats?.destroy();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const run = (name: string, env: Record<string, string>) =>
    startProcess(process.execPath, [MAIN], join(scratch, `${name}.log`), {
      PATH: process.env['PATH'] ?? '',
      VOLBACK_LOG_PRETTY: '0',
      ...env,
    });

  it('becomes ready and leader, exports its metrics, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const proc = run('ok', {
      VOLBACK_NATS_URL: nats.url,
      VOLBACK_OPS_PORT: String(port),
      VOLBACK_SCHEDULER_ID: 'main-test',
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUntil('ready', async () => (await fetch(`${url}/readyz`)).status === 200, 20_000);
    await waitUntil(
      'leader',
      async () => /^volback_scheduler_leader\{[^}]*\} 1$/m.test(await (await fetch(`${url}/metrics`)).text()),
      10_000,
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const name of ['backups_due', 'backups_running', 'backups_failed', 'volumes_at_risk']) {
      expect(metrics).toContain(`volback_scheduler_${name}`);
    }
    process.kill(proc.pid, 'SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    await proc.stop(0);
  }, 40_000);

  it('a bad setting exits 1 with a log line naming the variable', async () => {
    const proc = run('bad', {
      VOLBACK_NATS_URL: nats.url,
      VOLBACK_SCHEDULER_DEFAULT_SCHEDULE: 'every night',
    });
    expect((await proc.exited).code).toBe(1);
    await proc.stop(0);
    const log = await readFile(join(scratch, 'bad.log'), 'utf8');
    expect(log).toMatch(/VOLBACK_SCHEDULER_CONFIG_INVALID/);
    expect(log).toMatch(/VOLBACK_SCHEDULER_DEFAULT_SCHEDULE/);
  }, 20_000);
});
