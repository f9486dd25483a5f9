import { describe, expect, it } from 'vitest';
import {
  backupCompleted,
  backupStarted,
  commandsOf,
  containerObserved,
  eventsOf,
  hostRegistered,
  hostSeen,
  typesOf,
  volumeDiscovered,
} from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

/** Hourly, no jitter, no prune or check, several backups per host at once. */
const hourly = testSettings({
  jitterWindowMs: 0,
  maxConcurrentBackupsPerHost: 10,
  prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
  check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
  defaultPolicy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron: '0 * * * *', timezone: 'UTC' } },
});
const shop = { 'com.docker.compose.project': 'shop' };

/** A compose project `shop` (db and web), first backups done, and a lone volume `other`. */
function shopScenario(dbLabels: Record<string, string>) {
  const s = scenario(hourly).given(
    hostRegistered('2025-01-01T09:00:00Z'),
    volumeDiscovered('shop_db', '2025-01-01T09:00:00Z', shop),
    volumeDiscovered('shop_uploads', '2025-01-01T09:00:00Z', shop),
    volumeDiscovered('other', '2025-01-01T09:00:00Z'),
    containerObserved(1, 'shop-db-1', ['shop_db'], '2025-01-01T09:00:00Z', { ...shop, ...dbLabels }),
    containerObserved(2, 'shop-web-1', ['shop_uploads'], '2025-01-01T09:00:00Z', shop),
  );
  // The first backups (one per volume), completed.
  for (const e of eventsOf(s.tick('2025-01-01T09:01:00Z'))) {
    const d = e.data as { backupId: string; volumeName: string };
    if (e.type === 'io.volback.backup.requested.v1')
      s.given(backupCompleted(d.backupId, d.volumeName, '2025-01-01T09:02:00Z'));
  }
  // The agent is online at the next slot.
  return s.given(hostSeen('2025-01-01T09:59:50Z'));
}

describe('scheduled backups of a set', () => {
  it('given volback.set.backup=true on a container, the slot sends one BackupSet with a request per member', () => {
    const s = shopScenario({ 'volback.set.backup': 'true' });
    // when the hourly slot comes
    const decisions = s.tick('2025-01-01T10:00:00Z');
    // then the set's volumes are requested together, under the agent's member ids, and one command goes out
    const setId = 'set-host-a-compose:shop-2025-01-01T10:00:00Z';
    const requests = eventsOf(decisions)
      .filter((e) => e.type === 'io.volback.backup.requested.v1')
      .map((e) => e.data);
    expect(requests).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          backupId: `${setId}.shop_db`,
          volumeName: 'shop_db',
          setId: 'compose:shop',
          setBackupId: setId,
          slot: '2025-01-01T10:00:00.000Z',
        }),
        expect.objectContaining({ backupId: `${setId}.shop_uploads`, volumeName: 'shop_uploads' }),
        expect.objectContaining({ volumeName: 'other', backupId: 'bk-host-a-other-2025-01-01T10:00:00Z' }),
      ]),
    );
    expect(requests.filter((r) => (r as { volumeName: string }).volumeName.startsWith('shop'))).toHaveLength(
      2,
    );
    const commands = commandsOf(decisions).filter((c) => c.type.includes('backup'));
    expect(commands.map((c) => c.type).sort()).toEqual([
      'io.volback.cmd.backup-set.v1',
      'io.volback.cmd.backup-volume.v1',
    ]);
    expect(commands.find((c) => c.type === 'io.volback.cmd.backup-set.v1')).toMatchObject({
      subject: 'volback.cmd.host.host-a.backup-set',
      data: { backupId: setId, setId: 'compose:shop', trigger: 'schedule' },
    });
    // when ticking again in the same slot, then nothing more for the set
    s.given(backupStarted(`${setId}.shop_db`, 'shop_db', '2025-01-01T10:00:01Z'));
    expect(typesOf(s.tick('2025-01-01T10:30:00Z')).filter((t) => t.includes('backup'))).toEqual([]);
  });

  it('given a new leader while the members are queued, it sends the BackupSet again, once', () => {
    const s = shopScenario({ 'volback.set.backup': 'true' });
    s.tick('2025-01-01T10:00:00Z');
    const resent = commandsOf(s.takeover('2025-01-01T10:00:30Z')).filter(
      (c) => c.type === 'io.volback.cmd.backup-set.v1',
    );
    expect(resent).toHaveLength(1);
  });

  it('given no volback.set.backup label, each volume of the project is backed up on its own', () => {
    const s = shopScenario({});
    const commands = commandsOf(s.tick('2025-01-01T10:00:00Z')).filter((c) => c.type.includes('backup'));
    expect(commands.map((c) => c.type)).toEqual([
      'io.volback.cmd.backup-volume.v1',
      'io.volback.cmd.backup-volume.v1',
      'io.volback.cmd.backup-volume.v1',
    ]);
  });

  it('given the set backup ended without starting a member, that member holds its volume no longer', () => {
    const s = shopScenario({ 'volback.set.backup': 'true' });
    s.tick('2025-01-01T10:00:00Z');
    const setId = 'set-host-a-compose:shop-2025-01-01T10:00:00Z';
    const held = () => [...s.state.inFlight.values()].filter((f) => f.set?.setBackupId === setId).length;
    expect(held()).toBe(2);
    s.given({
      type: 'io.volback.backup.set-failed.v1',
      data: {
        backupId: setId,
        hostId: 'host-a',
        setId: 'compose:shop',
        code: 'VOLBACK_SET_NOT_FOUND',
        reason: 'no container or volume on this host belongs to set compose:shop',
        failedAt: '2025-01-01T10:00:02.000Z',
      },
    });
    expect(held()).toBe(0);
  });
});
