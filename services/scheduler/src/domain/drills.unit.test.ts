import { createEvent, RestoreDrillPassed, RestoreDrillRequested } from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import {
  backupCompleted,
  backupRequested,
  commandsOf,
  eventsOf,
  HOST,
  hostRegistered,
  hostSeen,
  volumeDiscovered,
} from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

const settings = (overrides = {}) =>
  testSettings({
    jitterWindowMs: 0,
    prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
    check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
    ...overrides,
  });

const DRILL_LABELS = {
  'volback.schedule': '0 3 1 1 *',
  'volback.drill.schedule': '0 5 * * 0',
  'volback.drill.health': 'test -s /data/ok',
};

const drillsOf = (decisions: Parameters<typeof commandsOf>[0]) =>
  commandsOf(decisions).filter((c) => c.type === 'io.volback.cmd.restore-drill.v1');

/** A host with volume `db` labelled for a weekly drill, backed up on Saturday 2025-03-15 03:00. */
function labelledAndBackedUp(overrides = {}) {
  const s = scenario(settings(overrides)).given(
    hostRegistered('2025-03-14T00:00:00Z'),
    volumeDiscovered('db', '2025-03-14T00:00:00Z', DRILL_LABELS),
  );
  s.tick('2025-03-14T00:00:01Z'); // the label policy is defined
  s.given(
    backupRequested('bk-1', 'db', '2025-03-15T03:00:00Z'),
    backupCompleted('bk-1', 'db', '2025-03-15T03:00:10Z'),
  );
  return s;
}

/** `RestoreDrillPassed` of drill `drillId` of volume `db`, as the log holds it. */
function drillPassed(drillId: string, completedAt: string) {
  const { envelope } = createEvent(
    RestoreDrillPassed,
    {
      drillId,
      hostId: HOST,
      volumeName: 'db',
      snapshotId: 'a'.repeat(64),
      scratchVolume: 'volback-drill-0123456789ab',
      files: 1,
      dirs: 0,
      symlinks: 0,
      bytes: 1,
      restoreMs: 1,
      verifyMs: 1,
      healthMs: 1,
      rtoMs: 3,
      startedAt: '2025-03-16T05:00:01Z',
      completedAt,
    },
    { source: 'volback://test' },
  );
  return { type: envelope.type, data: envelope.data };
}

describe('restore drills', () => {
  it('run at the drill schedule of the labels, once per slot, with the health command and the snapshot repository', () => {
    const s = labelledAndBackedUp();
    s.given(hostSeen('2025-03-16T04:58:00Z'));
    expect(drillsOf(s.tick('2025-03-16T04:59:00Z'))).toEqual([]);
    const due = s.tick('2025-03-16T05:00:00Z');
    expect(drillsOf(due)).toEqual([
      {
        type: 'io.volback.cmd.restore-drill.v1',
        subject: `volback.cmd.host.${HOST}.restore-drill`,
        data: expect.objectContaining({
          drillId: 'drill-host-a-db-2025-03-16T05:00:00Z',
          hostId: HOST,
          volumeName: 'db',
          trigger: 'schedule',
          repositoryId: 'default',
          containers: false,
          health: 'test -s /data/ok',
          healthTimeoutSeconds: 60,
        }),
      },
    ]);
    expect(eventsOf(due).map((e) => e.type)).toContain('io.volback.drill.requested.v1');
    // in flight: not again; ended: the next slot is a week later
    expect(drillsOf(s.tick('2025-03-16T05:01:00Z'))).toEqual([]);
    s.given(drillPassed('drill-host-a-db-2025-03-16T05:00:00Z', '2025-03-16T05:00:04Z'));
    for (let day = 16; day < 23; day++) {
      s.given(hostSeen(`2025-03-${day}T23:00:00Z`));
      expect(drillsOf(s.tick(`2025-03-${day}T23:00:10Z`))).toEqual([]);
    }
    s.given(hostSeen('2025-03-23T04:59:00Z'));
    expect(drillsOf(s.tick('2025-03-23T05:00:00Z'))).toHaveLength(1);
  });

  it('a scheduled drill in flight: its command sent again, identical, by a new leader; not once it ended, nor an API drill', () => {
    const s = labelledAndBackedUp();
    s.given(hostSeen('2025-03-16T04:59:00Z'));
    const due = s.tick('2025-03-16T05:00:00Z');
    const command = due.filter((d) => d.what === 'drill').map((d) => d.intents[1]!.message);
    expect(command).toHaveLength(1);
    // an API drill of the same host in flight too: the catalog's to send
    const manual = createEvent(
      RestoreDrillRequested,
      {
        drillId: 'drill-manual-1',
        hostId: HOST,
        volumeName: 'db',
        trigger: 'manual',
        requestedBy: 'someone',
        requestedAt: '2025-03-16T05:00:05Z',
      },
      { source: 'volback://test' },
    ).envelope;
    s.given({ type: manual.type, data: manual.data });
    const again = s.takeover('2025-03-16T05:01:00Z').filter((d) => d.what.startsWith('drill'));
    expect(again.map((d) => d.what)).toEqual(['drill-resent']);
    expect(again.flatMap((d) => d.intents.map((i) => i.message))).toEqual(command);
    // ended: nothing to send again
    s.given(
      drillPassed('drill-host-a-db-2025-03-16T05:00:00Z', '2025-03-16T05:02:00Z'),
      drillPassed('drill-manual-1', '2025-03-16T05:02:00Z'),
    );
    expect(s.takeover('2025-03-16T05:03:00Z').filter((d) => d.what.startsWith('drill'))).toEqual([]);
  });

  it('wait for a snapshot, and while a backup of the volume runs', () => {
    const s = scenario(settings({ maxConcurrentBackupsPerHost: 1 })).given(
      hostRegistered('2025-03-14T00:00:00Z'),
      volumeDiscovered('db', '2025-03-14T00:00:00Z', DRILL_LABELS),
    );
    s.tick('2025-03-14T00:00:01Z');
    // a first backup that never ended (long timed out by Sunday): no snapshot yet, no drill
    s.given(backupRequested('bk-0', 'db', '2025-03-14T00:00:30Z'), hostSeen('2025-03-16T04:59:00Z'));
    expect(drillsOf(s.tick('2025-03-16T05:00:00Z'))).toEqual([]);
    s.given(
      backupRequested('bk-1', 'db', '2025-03-16T05:09:00Z'),
      backupCompleted('bk-1', 'db', '2025-03-16T05:10:00Z'),
      backupRequested('bk-2', 'db', '2025-03-16T05:20:00Z'),
      hostSeen('2025-03-16T05:20:00Z'),
    );
    // a backup of the volume runs: the drill waits; once it ended, the missed slot runs once
    expect(drillsOf(s.tick('2025-03-16T05:21:00Z'))).toEqual([]);
    s.given(backupCompleted('bk-2', 'db', '2025-03-16T05:30:00Z'), hostSeen('2025-03-16T05:30:00Z'));
    expect(drillsOf(s.tick('2025-03-16T05:31:00Z'))).toHaveLength(1);
  });

  it.each([
    ['volback.drill.schedule', 'weekly', /5 fields/],
    ['volback.drill.schedule', '0 25 * * *', /hour/i],
    ['volback.drill.health-timeout', '0', /1 to 3600/],
  ])('refuse %s=%j with a policy rejection naming the label', (label, value, reason) => {
    const labels: Record<string, string> = { 'volback.drill.schedule': '0 5 * * 0', [label]: value };
    const s = scenario(settings()).given(
      hostRegistered('2025-03-14T00:00:00Z'),
      volumeDiscovered('db', '2025-03-14T00:00:00Z', labels),
    );
    const rejected = eventsOf(s.tick('2025-03-14T00:00:01Z')).find(
      (e) => e.type === 'io.volback.policy.rejected.v1',
    );
    expect(rejected?.data).toMatchObject({ label, value, reason: expect.stringMatching(reason) });
  });

  it('refuse a drill label without a drill schedule', () => {
    const s = scenario(settings()).given(
      hostRegistered('2025-03-14T00:00:00Z'),
      volumeDiscovered('db', '2025-03-14T00:00:00Z', { 'volback.drill.health': 'true' }),
    );
    const rejected = eventsOf(s.tick('2025-03-14T00:00:01Z')).find(
      (e) => e.type === 'io.volback.policy.rejected.v1',
    );
    expect(JSON.stringify(rejected?.data)).toContain('needs volback.drill.schedule');
  });
});
