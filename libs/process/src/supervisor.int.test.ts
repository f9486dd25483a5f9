import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceEnv, serviceNodeFlags } from './service-launch.ts';
import { Supervisor } from './supervisor.ts';
import { waitFor } from './wait.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A service that churns through short-lived objects (as one moving blobs does), then writes how
 * large V8 let its young generation grow, its flags and its environment, and stays up until
 * stopped.
 */
const CHURN = `
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
let kept = [];
for (let i = 0; i < 20_000_000; i++) {
  kept.push({ i });
  if (kept.length > 100_000) kept = [];
}
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
writeFileSync(process.env.REPORT, JSON.stringify({ newSpace: newSpace.space_size, argv: process.execArgv, env: process.env }));
setInterval(() => undefined, 1_000);
`;

interface Report {
  newSpace: number;
  argv: string[];
  env: Record<string, string>;
}

describe('Supervisor', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Starts {@link CHURN} under a supervisor and returns its report. */
  async function churn(): Promise<Report> {
    dir = await mkdtemp(join(tmpdir(), 'volback-supervisor-'));
    const entry = join(dir, 'churn.mjs');
    const report = join(dir, 'report.json');
    await writeFile(entry, CHURN);
    const supervisor = new Supervisor(quiet, { churn: entry }, [['churn']]);
    try {
      supervisor.start('churn', { REPORT: report });
      return JSON.parse(
        await waitFor('the service to report', () => readFile(report, 'utf8'), 60_000),
      ) as Report;
    } finally {
      await supervisor.stop(5_000);
    }
  }

  it("starts a service with the services' Node flags and environment: its young generation stays at 8 MiB semi-spaces", async () => {
    const { newSpace, argv, env } = await churn();
    expect(serviceNodeFlags()).toContain('--max-semi-space-size=8');
    expect(argv).toEqual(serviceNodeFlags());
    // Two semi-spaces of 8 MiB; without the flag this churn grows it to 128 MiB here.
    expect(newSpace).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(serviceEnv()).toEqual({ MALLOC_MMAP_THRESHOLD_: '4194304' });
    expect(env).toMatchObject(serviceEnv());
  }, 90_000);

  it('leaves a setting of the environment it runs in as it is', async () => {
    process.env['MALLOC_MMAP_THRESHOLD_'] = '131072';
    try {
      expect((await churn()).env['MALLOC_MMAP_THRESHOLD_']).toBe('131072');
    } finally {
      delete process.env['MALLOC_MMAP_THRESHOLD_'];
    }
  }, 90_000);
});
