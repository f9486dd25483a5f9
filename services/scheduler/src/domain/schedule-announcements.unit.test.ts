import { describe, expect, it } from 'vitest';
import { eventsOf, HOST, hostRegistered, volumeDiscovered, volumeRemoved } from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import type { Decision } from './intents.ts';
import { decideScheduleAnnouncements } from './schedule-announcements.ts';
import { jitterMs } from './schedule.ts';
import { DEFAULT_SETTINGS } from './settings.ts';
import { hostScopedKey } from './state.ts';

type Scheduled = {
  hostId: string;
  volumeName: string;
  nextDueAt: string;
  policyId?: string;
  schedule: string;
  timezone?: string;
};

/** The `VolumeBackupScheduled` data of some decisions. */
function scheduled(decisions: Decision[]): Scheduled[] {
  return eventsOf(decisions)
    .filter((e) => e.type === 'io.volback.volume.backup-scheduled.v1')
    .map((e) => e.data as Scheduled);
}

/** A daily 03:00 UTC default policy, no jitter, no prune or check. */
const daily = (overrides = {}) =>
  testSettings({
    jitterWindowMs: 0,
    defaultPolicy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron: '0 3 * * *', timezone: 'UTC' } },
    prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
    check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
    ...overrides,
  });

describe('schedule announcements: the leader', () => {
  it("announce a protected volume's next slot once, and again only when it changes", () => {
    // given a volume under the configured default policy
    const s = scenario(daily()).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
    );
    // when the leader announces, then the next 03:00 slot
    expect(scheduled(s.announce('2025-03-14T10:00:01Z'))).toEqual([
      {
        hostId: HOST,
        volumeName: 'data',
        nextDueAt: '2025-03-15T03:00:00.000Z',
        policyId: 'configuration:default',
        schedule: '0 3 * * *',
        timezone: 'UTC',
      },
    ]);
    // when nothing changed, then nothing more
    expect(s.announce('2025-03-14T10:00:02Z')).toEqual([]);
    expect(s.announce('2025-03-14T23:00:00Z')).toEqual([]);
    // when the slot's backup is requested, then the following slot
    s.given(hostRegistered('2025-03-15T03:00:00Z'));
    s.tick('2025-03-15T03:00:00Z');
    expect(scheduled(s.announce('2025-03-15T03:00:00Z')).map((d) => d.nextDueAt)).toEqual([
      '2025-03-16T03:00:00.000Z',
    ]);
  });

  it('add the volume’s jitter to the slot and derive the event id from volume and due time', () => {
    // given a 30-minute jitter window
    const settings = daily({ jitterWindowMs: 30 * 60_000 });
    const s = scenario(settings).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
    );
    // when the leader announces
    const [decision] = s.announce('2025-03-14T10:00:01Z');
    // then the due time is the slot plus the jitter the backup will wait for
    const jitter = jitterMs(
      hostScopedKey(HOST, 'data'),
      settings.defaultPolicy.schedule,
      settings.jitterWindowMs,
    );
    expect(jitter).toBeGreaterThan(0);
    const dueAt = new Date(Date.parse('2025-03-15T03:00:00Z') + jitter).toISOString();
    expect(scheduled([decision!])[0]!.nextDueAt).toBe(dueAt);
    expect(decision!.intents[0]!.message.envelope.id).toBe(
      `backup-scheduled-${HOST}-data-2025-03-14T10:00:00.000Z-0-${dueAt}`,
    );
  });

  it('do not repeat what a previous leader announced (the state is rebuilt from the log)', () => {
    // given a leader that announced a volume's next slot
    const first = scenario(daily()).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
    );
    const announced = first.announce('2025-03-14T10:00:01Z');
    // when a new leader rebuilds its state from the same log and announces
    const next = scenario(daily()).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
      ...eventsOf(announced),
    );
    // then nothing is announced again
    expect(next.announce('2025-03-14T10:05:00Z')).toEqual([]);
    expect(next.state.volumes.get(hostScopedKey(HOST, 'data'))!.announcedDueAt).toBe(
      Date.parse('2025-03-15T03:00:00Z'),
    );
  });

  it('announce nothing for a volume without an enabled policy', () => {
    // given a volume that opts out by label, and one left out in labelled mode
    const s = scenario(daily({ defaultMode: 'labelled' })).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('off', '2025-03-14T10:00:00Z', { 'volback.enabled': 'false' }),
      volumeDiscovered('unlabelled', '2025-03-14T10:00:00Z'),
      volumeDiscovered('on', '2025-03-14T10:00:00Z', { 'volback.schedule': '30 4 * * *' }),
    );
    // when the label policies are defined and the leader announces
    s.tick('2025-03-14T10:00:01Z');
    const announced = scheduled(s.announce('2025-03-14T10:00:01Z'));
    // then only the labelled, enabled volume, with its label policy
    expect(announced).toEqual([
      {
        hostId: HOST,
        volumeName: 'on',
        nextDueAt: '2025-03-15T04:30:00.000Z',
        policyId: `labels:${HOST}:on`,
        schedule: '30 4 * * *',
        timezone: 'UTC',
      },
    ]);
  });

  it('keep the due time of a slot that waits, and announce a re-created volume afresh', () => {
    // given an announced volume whose host goes silent over its slot
    const s = scenario(daily()).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
    );
    s.announce('2025-03-14T10:00:01Z');
    // when the slot passes without a backup (the host is offline), then nothing new: it is still due then
    expect(s.tick('2025-03-15T04:00:00Z')).toEqual([]);
    expect(s.announce('2025-03-15T04:00:00Z')).toEqual([]);
    // when the volume is removed and created again, then its schedule is announced again
    s.given(volumeRemoved('data', '2025-03-15T05:00:00Z'), volumeDiscovered('data', '2025-03-15T05:00:01Z'));
    expect(scheduled(s.announce('2025-03-15T05:00:02Z')).map((d) => d.nextDueAt)).toEqual([
      '2025-03-16T03:00:00.000Z',
    ]);
  });

  it('announce a re-created volume once, though its due time equals the removed one’s (no duplicate id)', () => {
    // given a log that stores an event id once, as JetStream does within its duplicate window
    const s = scenario(daily());
    const stored = new Set<string>();
    let published = 0;
    const announce = (now: string) => {
      const decisions = decideScheduleAnnouncements(s.state, Date.parse(now), s.settings);
      for (const intent of decisions.flatMap((d) => d.intents)) {
        published++;
        const { id, type, data } = intent.message.envelope;
        if (stored.has(id)) continue;
        stored.add(id);
        s.given({ type, data });
      }
    };
    s.given(hostRegistered('2025-03-14T10:00:00Z'), volumeDiscovered('data', '2025-03-14T10:00:00Z'));
    announce('2025-03-14T10:00:01Z');
    // when the volume is removed and discovered again, its next slot the same as before
    s.given(volumeRemoved('data', '2025-03-14T10:01:00Z'), volumeDiscovered('data', '2025-03-14T10:01:00Z'));
    for (let second = 1; second <= 10; second++)
      announce(`2025-03-14T10:01:${String(second).padStart(2, '0')}Z`);
    // then it is announced once more, stored, and not again every round
    expect(published).toBe(2);
    expect(stored.size).toBe(2);
    expect(s.state.volumes.get(hostScopedKey(HOST, 'data'))!.announcedDueAt).toBe(
      Date.parse('2025-03-15T03:00:00Z'),
    );
  });

  it('give a due time announced again after another its own id (changed and changed back)', () => {
    // given a volume announced under a daily 03:00 API default policy
    const s = scenario(daily()).given(
      hostRegistered('2025-03-14T10:00:00Z'),
      volumeDiscovered('data', '2025-03-14T10:00:00Z'),
    );
    const ids: string[] = [];
    const define = (cron: string, n: number) =>
      s.command(
        {
          type: 'io.volback.cmd.define-policy.v1',
          id: `cmd-${n}`,
          data: {
            policyId: 'default',
            scope: { kind: 'default' },
            policy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron, timezone: 'UTC' } },
            requestedBy: 'test',
          },
        },
        '2025-03-14T10:00:00Z',
      );
    const announce = (now: string) =>
      s.announce(now).forEach((d) => ids.push(d.intents[0]!.message.envelope.id));
    announce('2025-03-14T10:00:01Z');
    // when the schedule changes and changes back
    define('0 4 * * *', 1);
    announce('2025-03-14T10:00:02Z');
    define('0 3 * * *', 2);
    announce('2025-03-14T10:00:03Z');
    // then three announcements, each with an id of its own
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
  });
});
