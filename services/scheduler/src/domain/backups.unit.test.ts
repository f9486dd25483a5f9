import { backupFailureIsRetried } from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import {
  backupCompleted,
  backupFailed,
  backupRequested,
  backupStarted,
  commandsOf,
  containerObserved,
  containerStopped,
  eventsOf,
  hostRegistered,
  hostSeen,
  typesOf,
  volumeDiscovered,
  volumeRemoved,
} from '../test-support/events.ts';
import { scenario, testSettings, type Scenario } from '../test-support/scenario.ts';
import type { Decision } from './intents.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

const t = (iso: string) => Date.parse(iso);
type Requested = {
  backupId: string;
  volumeName: string;
  hostId: string;
  trigger: string;
  slot?: string;
  attempt: number;
  retryOf?: string;
  maxAttempts?: number;
  requestedAt: string;
};

/** The `BackupRequested` data of some decisions. */
function requested(decisions: Decision[]): Requested[] {
  return eventsOf(decisions)
    .filter((e) => e.type === 'io.volback.backup.requested.v1')
    .map((e) => e.data as Requested);
}

/** Ticks every `stepMs`; every backup requested completes `tookMs` later. Returns the requests. */
function runCompleting(s: Scenario, from: string, to: string, stepMs: number, tookMs = 1_000): Requested[] {
  const all: Requested[] = [];
  const pending: { id: string; volume: string; host: string; at: number }[] = [];
  for (let now = t(from); now <= t(to); now += stepMs) {
    for (const p of pending.splice(0).filter((p) => p.at <= now || (pending.push(p), false))) {
      s.given(backupCompleted(p.id, p.volume, p.at, p.host));
    }
    const asked = requested(s.tick(now));
    all.push(...asked);
    for (const r of asked)
      pending.push({ id: r.backupId, volume: r.volumeName, host: r.hostId, at: now + tookMs });
  }
  return all;
}

/** No jitter and no prune or check (they hold backups; maintenance.unit.test.ts covers them). */
const noJitter = (overrides = {}) =>
  testSettings({
    jitterWindowMs: 0,
    prune: { ...DEFAULT_SETTINGS.prune, schedule: undefined },
    check: { ...DEFAULT_SETTINGS.check, schedule: undefined },
    ...overrides,
  });
const withSchedule = (cron: string, timezone = 'UTC', overrides = {}) =>
  noJitter({
    defaultPolicy: { ...DEFAULT_SETTINGS.defaultPolicy, schedule: { cron, timezone } },
    ...overrides,
  });

describe('backups: a newly discovered volume', () => {
  it('is backed up once, after the first-backup delay, with the agent choosing consistency from labels', () => {
    // given a host and a new volume
    const s = scenario(noJitter()).given(
      hostRegistered('2025-01-01T10:00:00Z'),
      volumeDiscovered('data', '2025-01-01T10:00:00Z'),
    );
    // when the delay has not passed, then nothing
    expect(s.tick('2025-01-01T10:00:59Z')).toEqual([]);
    // when it has, then one backup is requested and sent to the host's agent
    const decisions = s.tick('2025-01-01T10:01:00Z');
    expect(typesOf(decisions)).toEqual(['backup.requested', 'backup-volume']);
    expect(requested(decisions)[0]).toMatchObject({
      backupId: 'bk-host-a-data-discovered-2025-01-01T10:00:00Z',
      trigger: 'volume-discovered',
      attempt: 1,
      requestedBy: 'scheduler',
    });
    const [command] = commandsOf(decisions);
    expect(command).toMatchObject({
      subject: 'volback.cmd.host.host-a.backup-volume',
      data: {
        backupId: 'bk-host-a-data-discovered-2025-01-01T10:00:00Z',
        consistency: { mode: 'none' },
        repositoryId: 'default',
      },
    });
    // and the request opens its backup's subject: it can be stored once, ever
    expect(decisions[0]!.intents[0]).toMatchObject({ kind: 'event', firstOnSubject: true });
    // when ticking again while it runs, then nothing more
    s.given(backupStarted('bk-host-a-data-discovered-2025-01-01T10:00:00Z', 'data', '2025-01-01T10:01:01Z'));
    expect(s.tick('2025-01-01T10:05:00Z')).toEqual([]);
  });

  it('a volume removed and created again under the same name gets a first backup of its own', () => {
    const s = scenario(noJitter()).given(volumeDiscovered('data', '2025-01-01T10:00:00Z'));
    const first = requested(s.tick('2025-01-01T10:01:00Z'))[0]!;
    s.given(backupCompleted(first.backupId, 'data', '2025-01-01T10:02:00Z'));
    s.given(volumeRemoved('data', '2025-01-01T11:00:00Z'), volumeDiscovered('data', '2025-01-01T11:00:05Z'));
    expect(requested(s.tick('2025-01-01T11:01:05Z')).map((r) => r.backupId)).toEqual([
      'bk-host-a-data-discovered-2025-01-01T11:00:05Z',
    ]);
  });

  it('a volume discovered again without a removal (its configuration changed) keeps its history', () => {
    // given a volume whose first backup completed
    const s = scenario(noJitter()).given(volumeDiscovered('data', '2025-01-01T10:00:00Z'));
    const first = requested(s.tick('2025-01-01T10:01:00Z'))[0]!;
    s.given(backupCompleted(first.backupId, 'data', '2025-01-01T10:02:00Z'));
    // when the agent announces it again, with no VolumeRemoved before
    s.given(volumeDiscovered('data', '2025-01-01T11:00:05Z', { tier: 'gold' }));
    // then no second first backup, and its new labels count
    expect(requested(s.run('2025-01-01T11:00:05Z', '2025-01-01T11:10:00Z', 60_000))).toEqual([]);
    expect(s.state.volumes.get('host-a\u0000data')).toMatchObject({
      discoveredAt: t('2025-01-01T10:00:00Z'),
      labels: { tier: 'gold' },
      lastSuccess: { backupId: first.backupId },
    });
  });

  it('waits while its host is offline (three missed heartbeats) and goes on when it is back', () => {
    const s = scenario(noJitter()).given(
      hostSeen('2025-01-01T10:00:00Z'),
      volumeDiscovered('data', '2025-01-01T10:00:00Z'),
    );
    expect(s.tick('2025-01-01T10:05:00Z')).toEqual([]);
    s.given(hostSeen('2025-01-01T10:06:00Z'));
    expect(requested(s.tick('2025-01-01T10:06:01Z'))).toHaveLength(1);
  });
});

describe('backups: schedules', () => {
  it('runs each slot once, with an id from volume and slot', () => {
    const s = scenario(withSchedule('0 2 * * *')).given(volumeDiscovered('data', '2025-01-01T00:00:00Z'));
    const runs = runCompleting(s, '2025-01-01T00:00:00Z', '2025-01-03T03:00:00Z', 60_000);
    expect(runs.map((r) => [r.trigger, r.slot ?? null, r.requestedAt])).toEqual([
      ['volume-discovered', null, '2025-01-01T00:01:00.000Z'],
      ['schedule', '2025-01-01T02:00:00.000Z', '2025-01-01T02:00:00.000Z'],
      ['schedule', '2025-01-02T02:00:00.000Z', '2025-01-02T02:00:00.000Z'],
      ['schedule', '2025-01-03T02:00:00.000Z', '2025-01-03T02:00:00.000Z'],
    ]);
    expect(runs[1]!.backupId).toBe('bk-host-a-data-2025-01-01T02:00:00Z');
  });

  it('after downtime a missed slot runs once (catch-up), not once per missed slot', () => {
    const s = scenario(withSchedule('0 * * * *')).given(volumeDiscovered('data', '2025-01-01T00:00:00Z'));
    runCompleting(s, '2025-01-01T00:00:00Z', '2025-01-01T01:00:00Z', 60_000);
    // when the scheduler comes back three days later
    const back = requested(s.tick('2025-01-04T09:41:00Z'));
    // then one backup stands for the latest slot
    expect(back.map((r) => [r.trigger, r.slot])).toEqual([['catch-up', '2025-01-04T09:00:00.000Z']]);
    s.given(backupCompleted(back[0]!.backupId, 'data', '2025-01-04T09:42:00Z'));
    expect(requested(s.tick('2025-01-04T09:59:59Z'))).toEqual([]);
    expect(requested(s.tick('2025-01-04T10:00:00Z')).map((r) => r.trigger)).toEqual(['schedule']);
  });

  it('Europe/Berlin spring forward: the 02:30 job runs at 03:00 local on 31 March, once a day', () => {
    const s = scenario(withSchedule('30 2 * * *', 'Europe/Berlin')).given(
      volumeDiscovered('data', '2024-03-29T12:00:00Z'),
    );
    const runs = runCompleting(s, '2024-03-29T12:00:00Z', '2024-04-01T12:00:00Z', 5 * 60_000);
    expect(runs.filter((r) => r.trigger === 'schedule').map((r) => r.slot)).toEqual([
      '2024-03-30T01:30:00.000Z',
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:30:00.000Z',
    ]);
  });

  it('Europe/Berlin fall back: the 02:30 job runs once on 27 October, though 02:30 happens twice', () => {
    const s = scenario(withSchedule('30 2 * * *', 'Europe/Berlin')).given(
      volumeDiscovered('data', '2024-10-25T12:00:00Z'),
    );
    const runs = runCompleting(s, '2024-10-25T12:00:00Z', '2024-10-28T12:00:00Z', 5 * 60_000);
    expect(runs.filter((r) => r.trigger === 'schedule').map((r) => r.slot)).toEqual([
      '2024-10-26T00:30:00.000Z',
      '2024-10-27T00:30:00.000Z',
      '2024-10-28T01:30:00.000Z',
    ]);
  });

  it('an hourly job in Europe/Berlin keeps every real hour across fall back (02:00 CEST and 02:00 CET)', () => {
    const s = scenario(withSchedule('0 * * * *', 'Europe/Berlin')).given(
      volumeDiscovered('data', '2024-10-26T22:00:00Z'),
    );
    const runs = runCompleting(s, '2024-10-26T22:00:00Z', '2024-10-27T03:00:00Z', 60_000);
    expect(runs.filter((r) => r.trigger === 'schedule').map((r) => r.slot?.slice(11, 16))).toEqual([
      '23:00',
      '00:00',
      '01:00',
      '02:00',
      '03:00',
    ]);
  });

  it('a leap-day schedule runs on 29 February 2024', () => {
    const s = scenario(withSchedule('0 3 29 2 *')).given(volumeDiscovered('data', '2024-02-01T00:00:00Z'));
    const runs = runCompleting(s, '2024-02-01T00:00:00Z', '2024-03-31T00:00:00Z', 3600_000);
    expect(runs.filter((r) => r.trigger === 'schedule').map((r) => r.slot)).toEqual([
      '2024-02-29T03:00:00.000Z',
    ]);
  });

  it('a thousand volumes due at 02:00 spread over the jitter window and never exceed the limits', () => {
    // given ten hosts with a hundred volumes each, all on the default 02:00 schedule
    const settings = testSettings({
      firstBackupDelayMs: 30 * 24 * 3600_000,
      maxConcurrentBackups: 2000,
      maxConcurrentBackupsPerHost: 2000,
    });
    const s = scenario(settings);
    for (let i = 0; i < 1000; i++)
      s.given(volumeDiscovered(`vol-${i}`, '2025-01-01T00:00:00Z', {}, `host-${i % 10}`));
    // when ticking every 10 s from 02:00 to 02:35 (each backup done after a second)
    const runs = runCompleting(s, '2025-01-01T01:59:50Z', '2025-01-01T02:35:00Z', 10_000);
    // then every volume ran once, spread over the 30-minute window
    expect(runs).toHaveLength(1000);
    expect(new Set(runs.map((r) => r.backupId)).size).toBe(1000);
    const minute = (r: Requested) => Math.floor((t(r.requestedAt) - t('2025-01-01T02:00:00Z')) / 60_000);
    const perMinute = new Array<number>(31).fill(0);
    for (const r of runs) perMinute[minute(r)]!++;
    expect(Math.max(...perMinute)).toBeLessThan(100);
    expect(perMinute.slice(0, 30).every((n) => n > 0)).toBe(true);

    // given limits of 20 in all and 3 per host, with backups that take long
    const limited = scenario({ ...settings, maxConcurrentBackups: 20, maxConcurrentBackupsPerHost: 3 });
    for (let i = 0; i < 1000; i++)
      limited.given(volumeDiscovered(`vol-${i}`, '2025-01-01T00:00:00Z', {}, `host-${i % 10}`));
    // when everything is due, then at most 20 run, at most 3 on each host
    const first = requested(limited.tick('2025-01-01T02:31:00Z'));
    expect(first).toHaveLength(20);
    const perHost = new Map<string, number>();
    for (const r of first) perHost.set(r.hostId, (perHost.get(r.hostId) ?? 0) + 1);
    expect(Math.max(...perHost.values())).toBeLessThanOrEqual(3);
    expect(requested(limited.tick('2025-01-01T02:31:10Z'))).toEqual([]);
    // when five end, five more start
    for (const r of first.slice(0, 5))
      limited.given(backupCompleted(r.backupId, r.volumeName, '2025-01-01T02:40:00Z', r.hostId));
    expect(requested(limited.tick('2025-01-01T02:40:10Z'))).toHaveLength(5);
  });
});

describe('backups: limits are fair', () => {
  it('a volume that waited since an earlier slot goes before those due only at the newest one', () => {
    // given six volumes on one host, a schedule every minute, one backup at a time on the host,
    // and backups that take 70 s: more is due each minute than can run
    const s = scenario(withSchedule('* * * * *', 'UTC', { maxConcurrentBackupsPerHost: 1 }));
    for (let i = 1; i <= 6; i++) s.given(volumeDiscovered(`vol-${i}`, '2025-01-01T09:00:00Z'));
    // when it runs for ten minutes, then every volume gets its turn (none starved by vol-1..3)
    const runs = runCompleting(s, '2025-01-01T10:00:00Z', '2025-01-01T10:10:00Z', 10_000, 70_000);
    expect(new Set(runs.map((r) => r.volumeName))).toEqual(
      new Set(['vol-1', 'vol-2', 'vol-3', 'vol-4', 'vol-5', 'vol-6']),
    );
  });
});

describe('backups: retries', () => {
  const firstBackup = () => {
    const s = scenario(noJitter()).given(volumeDiscovered('data', '2025-01-01T10:00:00Z'));
    const first = requested(s.tick('2025-01-01T10:01:00Z'))[0]!;
    return { s, id: first.backupId };
  };

  it('a failed backup is retried with backoff, then abandoned with the last reason', () => {
    const { s, id } = firstBackup();
    // given the first attempt failed
    s.given(backupFailed(id, 'data', '2025-01-01T10:02:00Z', 1));
    // then the second attempt waits 5 minutes
    expect(requested(s.tick('2025-01-01T10:06:59Z'))).toEqual([]);
    const second = requested(s.tick('2025-01-01T10:07:00Z'));
    expect(second).toEqual([
      expect.objectContaining({ backupId: `${id}-retry2`, trigger: 'retry', attempt: 2, retryOf: id }),
    ]);
    // and the third 10 minutes after the second failed
    s.given(backupFailed(`${id}-retry2`, 'data', '2025-01-01T10:08:00Z', 2));
    expect(requested(s.tick('2025-01-01T10:17:59Z'))).toEqual([]);
    expect(requested(s.tick('2025-01-01T10:18:00Z')).map((r) => r.backupId)).toEqual([`${id}-retry3`]);
    // when the third fails too, then the backup is abandoned, on the first attempt's subject
    s.given(backupFailed(`${id}-retry3`, 'data', '2025-01-01T10:19:00Z', 3));
    const abandoned = s.tick('2025-01-01T10:20:00Z');
    expect(typesOf(abandoned)).toEqual(['backup.abandoned']);
    expect(abandoned[0]!.intents[0]!.message.subject).toBe(
      'volback.evt.backup.host-a.bk-host-a-data-discovered-2025-01-01T10~3A00~3A00Z',
    );
    expect(eventsOf(abandoned)[0]!.data).toMatchObject({
      backupId: id,
      attempts: 3,
      lastBackupId: `${id}-retry3`,
      code: 'VOLBACK_GATEWAY_UNAVAILABLE',
      reason: expect.stringMatching(
        /3 attempt\(s\) failed; the last: failed with VOLBACK_GATEWAY_UNAVAILABLE/,
      ),
    });
    // and nothing more until the schedule's next slot
    expect(s.tick('2025-01-01T12:00:00Z')).toEqual([]);
  });

  it('a failure a retry cannot cure is abandoned at once', () => {
    const { s, id } = firstBackup();
    s.given(backupFailed(id, 'data', '2025-01-01T10:02:00Z', 1, 'VOLBACK_AGENT_CONSISTENCY_LABEL_INVALID'));
    const decisions = s.run('2025-01-01T10:03:00Z', '2025-01-01T11:00:00Z', 60_000);
    expect(typesOf(decisions)).toEqual(['backup.abandoned']);
    expect(eventsOf(decisions)[0]!.data).toMatchObject({
      attempts: 1,
      reason: expect.stringMatching(/^not retried/),
    });
  });

  it('BackupFailed.willRetry, from the contracts’ rule and the request, says what the scheduler then does', () => {
    // given a volume whose first backup the scheduler requested
    const s = scenario(noJitter()).given(volumeDiscovered('data', '2025-01-01T10:00:00Z'));
    let request = requested(s.tick('2025-01-01T10:01:00Z'))[0]!;
    const outcomes: [boolean, string[]][] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      // when the attempt fails, with willRetry as the agent states it (the rule, from the request)
      const willRetry = backupFailureIsRetried({
        attempt,
        maxAttempts: request.maxAttempts,
        code: 'VOLBACK_GATEWAY_UNAVAILABLE',
      });
      const failedAt = t('2025-01-01T10:02:00Z') + attempt * 3600_000;
      s.given(backupFailed(request.backupId, 'data', failedAt, attempt));
      // then within the hour a retry follows exactly when it said so, else the backup is abandoned
      const next = s.run(failedAt, failedAt + 3500_000, 60_000);
      outcomes.push([willRetry, typesOf(next).filter((type) => type !== 'backup-volume')]);
      request = requested(next)[0] ?? request;
    }
    expect(outcomes).toEqual([
      [true, ['backup.requested']],
      [true, ['backup.requested']],
      [false, ['backup.abandoned']],
    ]);
  });

  it('a backup requested without maxAttempts (the catalog’s "back up now") is not retried: abandoned at once', () => {
    const s = scenario(noJitter()).given(
      volumeDiscovered('data', '2025-01-01T10:00:00Z'),
      backupRequested('api-now', 'data', '2025-01-01T10:00:10Z', 'manual'),
    );
    s.given(backupFailed('api-now', 'data', '2025-01-01T10:00:30Z'));
    expect(typesOf(s.tick('2025-01-01T10:00:31Z'))).toEqual(['backup.abandoned']);
    expect(requested(s.run('2025-01-01T10:00:32Z', '2025-01-01T10:30:00Z', 60_000))).toEqual([]);
  });

  it('a backup the scheduler did not ask for is not retried', () => {
    const s = scenario(noJitter()).given(volumeDiscovered('data', '2025-01-01T10:00:00Z'));
    s.given(backupFailed('someone-elses', 'data', '2025-01-01T10:00:30Z'));
    expect(requested(s.tick('2025-01-01T10:01:00Z')).map((r) => r.trigger)).toEqual(['volume-discovered']);
  });
});

describe('backups: container stops', () => {
  const given = (backupOnContainerStop: boolean) => {
    const s = scenario(noJitter({ backupOnContainerStop }));
    s.given(
      volumeDiscovered('db', '2025-01-01T10:00:00Z'),
      containerObserved(1, 'postgres', ['db'], '2025-01-01T10:00:00Z'),
    );
    const first = requested(s.tick('2025-01-01T10:01:00Z'))[0]!;
    s.given(backupCompleted(first.backupId, 'db', '2025-01-01T10:02:00Z'));
    return s;
  };

  it('a container that stops gets its volumes backed up, when configured', () => {
    const s = given(true).given(containerStopped(1, 'postgres', '2025-01-01T12:00:00Z'));
    expect(requested(s.tick('2025-01-01T12:00:05Z'))).toEqual([
      expect.objectContaining({
        backupId: 'bk-host-a-db-stopped-2025-01-01T12:00:00Z',
        trigger: 'container-stopped',
      }),
    ]);
  });

  it('not when the option is off', () => {
    expect(
      requested(
        given(false)
          .given(containerStopped(1, 'postgres', '2025-01-01T12:00:00Z'))
          .tick('2025-01-01T12:00:05Z'),
      ),
    ).toEqual([]);
  });

  it('not for a stop volback made (consistency "stop"), whenever it is reported', () => {
    // given a stop the agent reports as its own, after the backup it was made for ended
    const s = given(true).given(
      containerStopped(1, 'postgres', '2025-01-01T10:01:30Z', { byVolback: true }),
      containerStopped(1, 'postgres', '2025-01-01T12:00:00Z', { byVolback: true }),
    );
    // when the scheduler decides, then it asks for nothing
    expect(requested(s.tick('2025-01-01T12:00:05Z'))).toEqual([]);
  });

  it('a stop by someone inside a backup of the volume counts: only the agent says which stops are its own', () => {
    const s = given(true).given(containerStopped(1, 'postgres', '2025-01-01T10:01:30Z'));
    expect(requested(s.tick('2025-01-01T10:03:00Z'))).toEqual([
      expect.objectContaining({ trigger: 'container-stopped' }),
    ]);
  });
});

describe('backups: a new leader', () => {
  it('sends the commands of requested, unstarted backups again, identical to the first', () => {
    // given two backups requested, one of them started
    const s = scenario(noJitter()).given(
      volumeDiscovered('data', '2025-01-01T10:00:00Z'),
      volumeDiscovered('logs', '2025-01-01T10:00:00Z'),
    );
    const decisions = s.tick('2025-01-01T10:01:00Z');
    const [data, logs] = decisions.map((d) => d.intents[1]!.message);
    s.given(
      backupStarted((logs!.envelope.data as { backupId: string }).backupId, 'logs', '2025-01-01T10:01:01Z'),
    );
    // when another scheduler takes over, then it sends the unstarted one's command again, byte for byte
    const again = s.takeover('2025-01-01T10:01:30Z');
    expect(again.map((d) => d.intents.map((i) => i.message))).toEqual([[data]]);
  });
});
