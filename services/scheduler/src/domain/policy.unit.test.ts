import { describe, expect, it } from 'vitest';
import {
  backupCompleted,
  commandsOf,
  containerObserved,
  containerRemoved,
  eventsOf,
  typesOf,
  volumeDiscovered,
  volumeLabelsChanged,
} from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import type { SchedulerCommand } from './commands.ts';
import type { Decision } from './intents.ts';
import { effectivePolicy, labelPolicyId } from './policy.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

const requestedTriggers = (decisions: Decision[]) =>
  eventsOf(decisions)
    .filter((e) => e.type === 'io.volback.backup.requested.v1')
    .map(
      (e) => (e.data as { trigger: string; slot?: string }).slot ?? (e.data as { trigger: string }).trigger,
    );

const labelled = () => testSettings({ defaultMode: 'labelled', jitterWindowMs: 0 });
const define = (id: string, data: Record<string, unknown>): SchedulerCommand =>
  ({ type: 'io.volback.cmd.define-policy.v1', id, data }) as SchedulerCommand;
const remove = (id: string, policyId: string): SchedulerCommand =>
  ({
    type: 'io.volback.cmd.remove-policy.v1',
    id,
    data: { policyId, requestedBy: 'ops' },
  }) as SchedulerCommand;
const apiPolicy = (cron: string) => ({
  ...DEFAULT_SETTINGS.defaultPolicy,
  schedule: { cron, timezone: 'UTC' },
});

describe('policies', () => {
  it('"only labelled": an unlabelled volume is left alone, a labelled one gets a label policy and its schedule', () => {
    // given two volumes, one labelled through the container that mounts it
    const s = scenario(labelled()).given(
      volumeDiscovered('plain', '2025-01-01T00:00:00Z'),
      volumeDiscovered('db', '2025-01-01T00:00:00Z'),
      containerObserved(1, 'postgres', ['db'], '2025-01-01T00:00:00Z', { 'volback.schedule': '0 */6 * * *' }),
    );
    // when the scheduler looks, then it defines the label policy
    const first = s.tick('2025-01-01T00:00:01Z');
    expect(typesOf(first)).toEqual(['policy.defined']);
    expect(eventsOf(first)[0]!.data).toMatchObject({
      policyId: labelPolicyId('host-a', 'db'),
      origin: 'labels',
      scope: { kind: 'volume', hostId: 'host-a', volumeName: 'db' },
      policy: { schedule: { cron: '0 */6 * * *', timezone: 'UTC' } },
    });
    // and then backs up only the labelled volume: first soon, then on its schedule
    const later = s.run('2025-01-01T00:01:00Z', '2025-01-01T06:00:00Z', 60_000);
    expect(requestedTriggers(later)).toEqual(['volume-discovered']);
    expect(eventsOf(later).every((e) => (e.data as { volumeName?: string }).volumeName !== 'plain')).toBe(
      true,
    );
  });

  it('an invalid label is rejected once, naming volume, label and why; the volume keeps its last valid policy', () => {
    const s = scenario(labelled()).given(
      volumeDiscovered('db', '2025-01-01T00:00:00Z', { 'volback.schedule': '0 3 * * *' }),
    );
    s.tick('2025-01-01T00:00:01Z');
    // when the label turns bad
    s.given(
      volumeLabelsChanged('db', '2025-01-01T00:00:10Z', {
        'volback.schedule': '0 3 * * *',
        'volback.retention.keep-daily': 'seven',
      }),
    );
    const rejected = s.tick('2025-01-01T00:00:11Z');
    expect(typesOf(rejected)).toEqual(['policy.rejected']);
    expect(eventsOf(rejected)[0]!.data).toMatchObject({
      hostId: 'host-a',
      volumeName: 'db',
      label: 'volback.retention.keep-daily',
      value: 'seven',
      reason: 'volume db on host-a: label volback.retention.keep-daily is "seven": not a whole number',
    });
    // then it is not reported again, and the volume keeps its 03:00 schedule
    expect(typesOf(s.tick('2025-01-01T00:00:12Z'))).toEqual([]);
    const policy = effectivePolicy(s.state, s.state.volumes.values().next().value!, s.settings);
    expect(policy).toMatchObject({ source: 'labels', policy: { schedule: { cron: '0 3 * * *' } } });
    // when it is fixed, the label policy follows
    s.given(volumeLabelsChanged('db', '2025-01-01T00:00:20Z', { 'volback.schedule': '0 4 * * *' }));
    expect(typesOf(s.tick('2025-01-01T00:00:21Z'))).toEqual(['policy.defined']);
  });

  it('an API policy wins over labels; removing it falls back to them; the label policy goes with its labels', () => {
    const s = scenario(testSettings({ jitterWindowMs: 0 })).given(
      volumeDiscovered('db', '2025-01-01T00:00:00Z'),
      containerObserved(1, 'postgres', ['db'], '2025-01-01T00:00:00Z', { 'volback.schedule': '0 3 * * *' }),
    );
    s.tick('2025-01-01T00:00:01Z');
    const volume = () => s.state.volumes.values().next().value!;
    const defined = s.command(
      define('cmd-1', {
        policyId: 'db-hourly',
        scope: { kind: 'volume', hostId: 'host-a', volumeName: 'db' },
        policy: apiPolicy('0 * * * *'),
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:02Z',
    );
    expect(typesOf(defined)).toEqual(['policy.defined']);
    expect(effectivePolicy(s.state, volume(), s.settings)).toMatchObject({
      source: 'api-volume',
      policyId: 'db-hourly',
    });
    // a default policy from the API replaces the configured default, below labels
    s.command(
      define('cmd-2', {
        policyId: 'everything',
        scope: { kind: 'default' },
        policy: apiPolicy('0 1 * * *'),
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:03Z',
    );
    expect(typesOf(s.command(remove('cmd-3', 'db-hourly'), '2025-01-01T00:00:04Z'))).toEqual([
      'policy.removed',
    ]);
    expect(effectivePolicy(s.state, volume(), s.settings)).toMatchObject({ source: 'labels' });
    // when the container goes, its labels go with it: the API default applies
    s.given(containerRemoved(1, '2025-01-01T00:00:05Z'));
    expect(typesOf(s.tick('2025-01-01T00:00:06Z'))).toContain('policy.removed');
    expect(effectivePolicy(s.state, volume(), s.settings)).toMatchObject({
      source: 'api-default',
      policyId: 'everything',
    });
  });

  it('"volback.enabled=false" opts a volume out of "protect all"', () => {
    const s = scenario(testSettings({ jitterWindowMs: 0 })).given(
      volumeDiscovered('scratch', '2025-01-01T00:00:00Z', { 'volback.enabled': 'false' }),
    );
    const decisions = s.run('2025-01-01T00:00:00Z', '2025-01-04T00:00:00Z', 3600_000);
    expect(typesOf(decisions)).toEqual(['policy.defined']);
  });

  it('commands: bad schedules, label policy ids and unknown policies are rejected with a reason; the same command twice decides the same', () => {
    const s = scenario(testSettings());
    const bad = s.command(
      define('cmd-1', {
        policyId: 'p',
        scope: { kind: 'default' },
        policy: { ...apiPolicy('0 2 * * *'), schedule: { cron: '0 2 * * *', timezone: 'Nowhere/Land' } },
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:00Z',
    );
    expect(eventsOf(bad)[0]).toMatchObject({
      type: 'io.volback.policy.rejected.v1',
      data: { policyId: 'p', reason: expect.stringMatching(/Nowhere\/Land/) },
    });
    const reserved = s.command(
      define('cmd-2', {
        policyId: 'labels:x',
        scope: { kind: 'default' },
        policy: apiPolicy('0 2 * * *'),
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:00Z',
    );
    expect(typesOf(reserved)).toEqual(['policy.rejected']);
    expect(eventsOf(s.command(remove('cmd-3', 'nope'), '2025-01-01T00:00:00Z'))[0]!.data).toMatchObject({
      reason: 'policyId: no policy nope is defined',
      issues: [{ field: 'policyId', message: 'no policy nope is defined' }],
    });

    const backUpNow: SchedulerCommand = {
      type: 'io.volback.cmd.request-backup.v1',
      id: 'cmd-4',
      data: { hostId: 'host-a', volumeName: 'data', requestedBy: 'ci' },
    };
    const once = s.command(backUpNow, '2025-01-01T00:00:00Z');
    const twice = scenario(testSettings()).command(backUpNow, '2025-01-01T00:00:00Z');
    expect(twice).toEqual(once);
    expect(eventsOf(once)[0]!.data).toMatchObject({
      trigger: 'manual',
      requestedBy: 'ci',
      backupId: expect.stringMatching(/^bk-host-a-data-manual-[0-9a-f]{16}$/),
    });
    expect(commandsOf(once)[0]!.subject).toBe('volback.cmd.host.host-a.backup-volume');
  });

  it('the configured default goes into the log once, and again when the configuration changes', () => {
    // given a scheduler starting on an empty log
    const s = scenario(testSettings(), { publishedDefault: false });
    // when it leads, then its configured default and coverage are published, once
    const first = s.tick('2025-01-01T00:00:00Z');
    expect(eventsOf(first)).toEqual([
      expect.objectContaining({
        type: 'io.volback.policy.defined.v1',
        data: expect.objectContaining({
          policyId: 'configuration:default',
          scope: { kind: 'default' },
          origin: 'configuration',
          policy: expect.objectContaining({ schedule: DEFAULT_SETTINGS.defaultPolicy.schedule }),
          coverage: { mode: 'all', includeAnonymous: true },
        }),
      }),
    ]);
    expect(s.tick('2025-01-01T00:01:00Z')).toEqual([]);
    // when a scheduler with another configuration leads, then it publishes its own
    const other = scenario(labelled(), { publishedDefault: false }).given(...eventsOf(first));
    expect(eventsOf(other.tick('2025-01-01T00:02:00Z'))[0]!.data).toMatchObject({
      coverage: { mode: 'labelled', includeAnonymous: true },
    });
  });

  it('back up now with the id the sender chose (the catalog answers it at once)', () => {
    const s = scenario(testSettings()).given(volumeDiscovered('data', '2025-01-01T00:00:00Z'));
    const decided = s.command(
      {
        type: 'io.volback.cmd.request-backup.v1',
        id: 'cmd-9',
        data: { hostId: 'host-a', volumeName: 'data', backupId: 'backup-from-the-api', requestedBy: 'api' },
      },
      '2025-01-01T00:00:01Z',
    );
    expect(eventsOf(decided)[0]!.data).toMatchObject({
      backupId: 'backup-from-the-api',
      trigger: 'manual',
      requestedBy: 'api',
      requestedAt: '2025-01-01T00:00:01.000Z',
    });
    expect(commandsOf(decided)[0]!.data).toMatchObject({ backupId: 'backup-from-the-api' });
  });

  it('a label policy follows changes of the API default policy it is based on', () => {
    const s = scenario(testSettings()).given(
      volumeDiscovered('db', '2025-01-01T00:00:00Z', { 'volback.schedule': '0 3 * * *' }),
    );
    s.tick('2025-01-01T00:00:01Z');
    s.command(
      define('cmd-1', {
        policyId: 'd',
        scope: { kind: 'default' },
        policy: { ...apiPolicy('0 1 * * *'), excludes: ['tmp/**'] },
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:02Z',
    );
    const redefined = s.tick('2025-01-01T00:00:03Z');
    expect(eventsOf(redefined)[0]!.data).toMatchObject({
      policy: { schedule: { cron: '0 3 * * *' }, excludes: ['tmp/**'] },
    });
  });
});

describe('retention and the protection watch', () => {
  it('a successful backup is followed by a forget with the volume policy retention, once; REPOSITORY_LOCKED is retried', async () => {
    const { maintenanceFailed } = await import('../test-support/events.ts');
    const s = scenario(testSettings({ jitterWindowMs: 0 })).given(
      volumeDiscovered('data', '2025-01-01T10:00:00Z', { 'volback.retention.keep-last': '2' }),
    );
    s.tick('2025-01-01T10:00:00Z');
    const first = eventsOf(s.tick('2025-01-01T10:01:00Z'))[0]!.data as { backupId: string };
    s.given(backupCompleted(first.backupId, 'data', '2025-01-01T10:02:00Z'));
    const forget = s.tick('2025-01-01T10:02:01Z');
    expect(typesOf(forget)).toEqual(['repository.maintenance-requested', 'forget-snapshots']);
    expect(commandsOf(forget)[0]).toMatchObject({
      subject: 'volback.cmd.gateway.forget-snapshots',
      data: {
        operationId: 'forget-host-a-data-2025-01-01T10:02:00Z',
        hostId: 'host-a',
        volumeName: 'data',
        retention: { keepLast: 2 },
      },
    });
    expect(typesOf(s.tick('2025-01-01T10:03:00Z'))).toEqual([]);
    s.given(maintenanceFailed('forget-host-a-data-2025-01-01T10:02:00Z', 'forget', '2025-01-01T10:03:00Z'));
    expect(typesOf(s.tick('2025-01-01T10:04:59Z'))).toEqual([]);
    expect(commandsOf(s.tick('2025-01-01T10:05:00Z'))[0]!.data).toMatchObject({
      operationId: 'forget-host-a-data-2025-01-01T10:02:00Z-a2',
    });
  });

  it('a volume without a recent enough snapshot is at risk, once, and restored by the next snapshot', () => {
    const s = scenario(testSettings({ jitterWindowMs: 0 })).given(
      volumeDiscovered('data', '2025-01-01T10:00:00Z', { 'volback.rpo': '1h' }),
    );
    s.tick('2025-01-01T10:00:00Z');
    const first = eventsOf(s.tick('2025-01-01T10:01:00Z'))[0]!.data as { backupId: string };
    expect(typesOf(s.tick('2025-01-01T11:00:00Z'))).toEqual([]);
    const risk = s.tick('2025-01-01T11:00:01Z');
    expect(typesOf(risk)).toEqual(['volume.at-risk']);
    expect(eventsOf(risk)[0]!.data).toMatchObject({
      rpoSeconds: 3600,
      reason:
        'no snapshot since the volume was discovered at 2025-01-01T10:00:00Z, longer than the RPO of 3600 s',
    });
    expect(typesOf(s.tick('2025-01-01T11:30:00Z'))).toEqual([]);
    s.given(backupCompleted(first.backupId, 'data', '2025-01-01T11:40:00Z'));
    expect(typesOf(s.tick('2025-01-01T11:40:01Z'))).toEqual([
      'volume.protection-restored',
      'repository.maintenance-requested',
      'forget-snapshots',
    ]);
  });

  it('the default RPO is twice the schedule period', () => {
    const s = scenario(testSettings({ jitterWindowMs: 0, firstBackupDelayMs: 10 * 24 * 3600_000 })).given(
      volumeDiscovered('data', '2025-01-01T00:00:00Z'),
    );
    const decisions = s.run('2025-01-01T00:00:00Z', '2025-01-03T00:01:00Z', 60_000);
    // backups were requested (never completed): at risk once 48 h after discovery have passed
    const risk = decisions.filter((d) => d.what === 'volume-at-risk');
    expect(risk).toHaveLength(1);
    expect(risk[0]!.intents[0]!.message.envelope.time).toBe('2025-01-03T00:01:00.000Z');
    expect(eventsOf(risk)[0]!.data).toMatchObject({ rpoSeconds: 2 * 86_400 });
  });

  it('commands: every problem of a policy is named at once, each with its field', () => {
    // given a scheduler
    const s = scenario(testSettings());
    // when an API policy has a reserved id, a bad expression and an unknown time zone
    const decisions = s.command(
      define('cmd-all', {
        policyId: 'labels:mine',
        scope: { kind: 'default' },
        policy: { ...apiPolicy('0 2 * * *'), schedule: { cron: '61 2 * * *', timezone: 'Mars/Base' } },
        requestedBy: 'ops',
      }),
      '2025-01-01T00:00:00Z',
    );
    // then one PolicyRejected lists the three, field by field
    expect(typesOf(decisions)).toEqual(['policy.rejected']);
    const data = eventsOf(decisions)[0]!.data as { reason: string; issues: { field: string }[] };
    expect(data.issues.map((i) => i.field)).toEqual([
      'policyId',
      'policy.schedule.cron',
      'policy.schedule.timezone',
    ]);
    expect(data.reason).toMatch(/labels:.*61.*Mars\/Base/);
  });

  it('commands: removing a label policy is rejected with the volume and what to do instead', () => {
    // given a volume whose labels define its policy, one bad label already reported
    const s = scenario(testSettings()).given(
      volumeDiscovered('db', '2025-01-01T00:00:00Z', { 'volback.schedule': '0 3 * * *' }),
    );
    s.tick('2025-01-01T00:00:01Z');
    s.given(
      volumeLabelsChanged('db', '2025-01-01T00:00:01Z', {
        'volback.schedule': '0 3 * * *',
        'volback.retention.keep-daily': 'seven',
      }),
    );
    expect(typesOf(s.tick('2025-01-01T00:00:01Z'))).toEqual(['policy.rejected']);
    // when the API asks to remove it
    const decisions = s.command(remove('cmd-rm', 'labels:host-a:db'), '2025-01-01T00:00:02Z');
    // then PolicyRejected (published, not only logged), naming the volume and the labels
    expect(eventsOf(decisions)).toMatchObject([
      {
        type: 'io.volback.policy.rejected.v1',
        data: {
          policyId: 'labels:host-a:db',
          hostId: 'host-a',
          volumeName: 'db',
          reason: expect.stringMatching(/comes from labels.*volback\.\* labels/),
        },
      },
    ]);
    // and the label policy stays; the bad label is not reported again
    expect(s.state.policies.has('labels:host-a:db')).toBe(true);
    expect(typesOf(s.tick('2025-01-01T00:00:03Z'))).toEqual([]);
  });
});
