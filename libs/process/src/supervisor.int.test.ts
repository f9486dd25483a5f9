import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceNodeFlags } from './node-flags.ts';
import { Supervisor } from './supervisor.ts';
import { waitFor } from './wait.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A service that churns through short-lived objects (as one moving blobs does), then writes how
 * large V8 let its young generation grow and stays up until stopped.
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
writeFileSync(process.env.REPORT, JSON.stringify({ newSpace: newSpace.space_size, argv: process.execArgv }));
setInterval(() => undefined, 1_000);
`;

describe('Supervisor', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("starts a service with the services' Node flags: its young generation stays at 8 MiB semi-spaces", async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-supervisor-'));
    const entry = join(dir, 'churn.mjs');
    const report = join(dir, 'report.json');
    await writeFile(entry, CHURN);
    const supervisor = new Supervisor(quiet, { churn: entry }, [['churn']]);
    try {
      supervisor.start('churn', { REPORT: report });
      const text = await waitFor('the service to report', () => readFile(report, 'utf8'), 60_000);
      const { newSpace, argv } = JSON.parse(text) as { newSpace: number; argv: string[] };
      expect(argv).toEqual(serviceNodeFlags());
      expect(serviceNodeFlags()).toContain('--max-semi-space-size=8');
      // Two semi-spaces of 8 MiB; without the flag this churn grows it to 128 MiB here.
      expect(newSpace).toBeLessThanOrEqual(16 * 1024 * 1024);
    } finally {
      await supervisor.stop(5_000);
    }
  }, 90_000);
});
