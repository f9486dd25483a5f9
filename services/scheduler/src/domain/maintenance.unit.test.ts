import { describe, expect, it } from 'vitest';
import {
  backupCompleted,
  commandsOf,
  eventsOf,
  maintenanceFailed,
  repositoryChecked,
  repositoryPruned,
  snapshotsForgotten,
  typesOf,
  volumeDiscovered,
} from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

const settings = testSettings({
  jitterWindowMs: 0,
  defaultPolicy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron: '0 * * * *', timezone: 'UTC' } },
  prune: {
    ...DEFAULT_SETTINGS.prune,
    schedule: { cron: '30 4 * * *', timezone: 'UTC' },
    holdBackupsMs: 3600_000,
  },
  check: { schedule: { cron: '0 5 * * *', timezone: 'UTC' }, readDataFraction: 0.1 },
});
const kinds = (decisions: ReturnType<ReturnType<typeof scenario>['tick']>) => decisions.map((d) => d.what);

/** Two volumes with snapshots; `busy`'s 04:00 backup is still running at 04:30. */
function given(overrides: Partial<typeof settings> = {}) {
  const s = scenario({ ...settings, ...overrides }).given(
    volumeDiscovered('quiet', '2025-01-01T00:00:00Z'),
    volumeDiscovered('busy', '2025-01-01T00:00:00Z'),
  );
  const complete = (decisions: ReturnType<typeof s.tick>, at: string, except?: string) => {
    for (const e of eventsOf(decisions)) {
      if (e.type !== 'io.volback.backup.requested.v1') continue;
      const { backupId, volumeName } = e.data as { backupId: string; volumeName: string };
      if (volumeName !== except) s.given(backupCompleted(backupId, volumeName, at));
    }
    for (const c of commandsOf(decisions)) {
      if (c.type === 'io.volback.cmd.forget-snapshots.v1')
        s.given(
          snapshotsForgotten(c.data['operationId'] as string, at, 'host-a', c.data['volumeName'] as string),
        );
    }
  };
  for (let h = 0; h <= 3; h++) {
    const at = `2025-01-01T0${h}:01:00Z`;
    complete(s.tick(at), at);
    complete(s.tick(`2025-01-01T0${h}:02:00Z`), at);
  }
  const busy = s.tick('2025-01-01T04:00:00Z');
  complete(busy, '2025-01-01T04:00:30Z', 'busy');
  complete(s.tick('2025-01-01T04:01:00Z'), '2025-01-01T04:01:00Z');
  return {
    s,
    complete,
    busyId: (
      eventsOf(busy).find((e) => (e.data as { volumeName: string }).volumeName === 'busy')!.data as {
        backupId: string;
      }
    ).backupId,
  };
}

describe('prune and check', () => {
  it('prune waits for running backups, holds new ones meanwhile, runs, then the check, and releases them', () => {
    const { s, busyId } = given();
    // when the 04:30 prune slot comes while a backup runs, then no prune yet
    expect(kinds(s.tick('2025-01-01T04:30:00Z'))).toEqual([]);
    // and the 05:00 backups are held, and so is the 05:00 check
    expect(kinds(s.tick('2025-01-01T05:00:00Z'))).toEqual([]);
    // when the running backup ends, then the prune is sent (its forget waits too)
    s.given(backupCompleted(busyId, 'busy', '2025-01-01T05:05:00Z'));
    const prune = s.tick('2025-01-01T05:05:01Z');
    expect(kinds(prune)).toEqual(['prune']);
    expect(commandsOf(prune)[0]).toMatchObject({
      subject: 'volback.cmd.gateway.prune-repository',
      data: {
        operationId: 'prune-default-2025-01-01T04:30:00Z',
        repositoryId: 'default',
        maxUnusedFraction: 0.05,
      },
    });
    // while it runs, backups stay held
    expect(kinds(s.tick('2025-01-01T05:06:00Z'))).toEqual([]);
    // when it is done, the check goes, alone
    s.given(repositoryPruned('prune-default-2025-01-01T04:30:00Z', '2025-01-01T05:10:00Z'));
    const check = s.tick('2025-01-01T05:10:01Z');
    expect(kinds(check)).toEqual(['check']);
    expect(commandsOf(check)[0]).toMatchObject({
      subject: 'volback.cmd.gateway.check-repository',
      data: { operationId: 'check-default-2025-01-01T05:00:00Z', readDataFraction: 0.1 },
    });
    expect(kinds(s.tick('2025-01-01T05:11:00Z'))).toEqual([]);
    // when the check is done, the held backups (one catch-up each) and the forget go
    s.given(repositoryChecked('check-default-2025-01-01T05:00:00Z', '2025-01-01T05:12:00Z'));
    expect(
      typesOf(s.tick('2025-01-01T05:12:01Z')).filter((t) => t !== 'repository.maintenance-requested'),
    ).toEqual(['backup.requested', 'backup-volume', 'backup.requested', 'backup-volume', 'forget-snapshots']);
  });

  it('a prune stopped by REPOSITORY_LOCKED is tried again later; backups are held no longer than the hold window', () => {
    const { s, busyId } = given({ check: { schedule: undefined, readDataFraction: 0 } });
    s.given(backupCompleted(busyId, 'busy', '2025-01-01T04:10:00Z'));
    s.tick('2025-01-01T04:10:01Z');
    expect(kinds(s.tick('2025-01-01T04:30:00Z'))).toEqual(['prune']);
    s.given(maintenanceFailed('prune-default-2025-01-01T04:30:00Z', 'prune', '2025-01-01T04:30:05Z'));
    expect(kinds(s.tick('2025-01-01T04:32:04Z'))).toEqual([]);
    const retry = s.tick('2025-01-01T04:32:05Z');
    expect(commandsOf(retry).map((c) => c.data['operationId'])).toEqual([
      'prune-default-2025-01-01T04:30:00Z-a2',
    ]);
    s.given(maintenanceFailed('prune-default-2025-01-01T04:30:00Z-a2', 'prune', '2025-01-01T04:32:10Z'));
    // after the hold window (one hour from the slot) backups go on, the prune waits for a quiet moment
    // (and is not sent in the same round as backups of its repository)
    expect(kinds(s.tick('2025-01-01T05:30:00Z'))).toEqual(['backup', 'backup']);
  });

  it('check runs on its schedule with a read-data subset when no backup runs, holding new ones meanwhile', () => {
    const { s, busyId } = given({ prune: { ...settings.prune, schedule: undefined } });
    s.given(backupCompleted(busyId, 'busy', '2025-01-01T04:10:00Z'));
    s.tick('2025-01-01T04:10:01Z');
    const check = s.tick('2025-01-01T05:00:00Z');
    expect(kinds(check)).toEqual(['check']);
    expect(commandsOf(check)[0]).toMatchObject({
      data: { operationId: 'check-default-2025-01-01T05:00:00Z', readDataFraction: 0.1 },
    });
    expect(kinds(s.tick('2025-01-01T05:00:30Z'))).toEqual([]);
    s.given(repositoryChecked('check-default-2025-01-01T05:00:00Z', '2025-01-01T05:01:00Z'));
    expect(kinds(s.tick('2025-01-01T05:01:01Z'))).toEqual(['backup', 'backup']);
  });

  it('nothing to prune or check before a repository has its first snapshot', () => {
    const s = scenario(settings).given(
      volumeDiscovered('xx', '2025-01-01T00:00:00Z', { 'volback.enabled': 'false' }),
    );
    expect(kinds(s.run('2025-01-01T00:00:00Z', '2025-01-02T12:00:00Z', 600_000))).toEqual(['policy-defined']);
  });

  it('a new leader sends pending maintenance commands again', () => {
    const { s, busyId } = given();
    s.given(backupCompleted(busyId, 'busy', '2025-01-01T04:10:00Z'));
    s.tick('2025-01-01T04:10:01Z');
    const prune = s.tick('2025-01-01T04:30:00Z');
    const again = s.takeover('2025-01-01T04:31:00Z');
    // the forget after busy's backup has no outcome either: both go again, byte for byte
    expect(again.map((d) => d.what)).toEqual(['forget-resent', 'prune-resent']);
    expect(again[1]!.intents[0]!.message).toEqual(prune[0]!.intents[1]!.message);
  });
});
