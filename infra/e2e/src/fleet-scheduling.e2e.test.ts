// The scheduler against a small simulated fleet (src/fleet): 10 hosts of 10 volumes on a cron of
// every 30 seconds (one slot measured), one backup at a time per host and five in all, the real scheduler, catalog and gateway as processes. Every slot of every
// volume is sent within 60 s of its time and backed up, and no more backups run at once than the
// limits allow, per host and in all, as the agents' own events show. `npm run bench:fleet` runs
// the same at 100 hosts of 50 volumes and prints the figures.
import { describe, expect, it } from 'vitest';
import { runFleet } from './fleet/fleet-run.ts';

const BOUND_MS = 60_000;

describe('a simulated fleet of 10 hosts x 10 volumes on one schedule', () => {
  it('every slot is sent within 60 s and backed up, within the per-host and global limits', async () => {
    const report = await runFleet({
      hosts: 10,
      volumesPerHost: 10,
      cron: '*/30 * * * * *',
      periodMs: 30_000,
      slots: 1,
      maxConcurrent: 5,
      maxConcurrentPerHost: 1,
      heartbeatSeconds: 10,
    });
    console.log(`fleet-scheduling e2e figures: ${JSON.stringify(report)}`);
    expect(report.slotsExpected).toBe(100);
    expect(report.slotsMissed).toBe(0);
    expect(report.slotsWithoutCommand).toBe(0);
    expect(report.commandDelay.count).toBe(100);
    expect(report.commandDelay.max).toBeLessThanOrEqual(BOUND_MS);
    expect(report.slotsCompleted).toBe(100);
    expect(report.backupsFailed).toBe(0);
    // The limits were reached (so they were tested), never passed.
    expect(report.maxRunningPerHost).toBe(1);
    expect(report.maxRunningInAll).toBe(5);
  }, 240_000);

  it('slots coming faster than a host backs its volumes up: every volume still gets its turn', async () => {
    // 6 volumes a host, one backup at a time, a slot every 3 s: about 6 s of backups per 3 s slot,
    // so most slots are merged into later ones; before "longest waiting first" the same volumes
    // won every round and volumes 4 to 6 were never backed up.
    const report = await runFleet({
      hosts: 2,
      volumesPerHost: 6,
      cron: '*/3 * * * * *',
      periodMs: 3_000,
      slots: 10,
      maxConcurrent: 2,
      maxConcurrentPerHost: 1,
      heartbeatSeconds: 10,
      settleMs: 15_000,
    });
    console.log(`fleet-scheduling e2e figures (starvation): ${JSON.stringify(report)}`);
    expect(report.fewestCompletedOfAVolume).toBeGreaterThanOrEqual(1);
    expect(report.backupsFailed).toBe(0);
    expect(report.maxRunningPerHost).toBe(1);
  }, 120_000);
});
