import { describe, expect, it } from 'vitest';
import { BackupVolume } from './commands/agent.ts';
import { createCommand, createEvent } from './define.ts';
import type { Envelope } from './envelope.ts';
import { ContractErrorCode } from './errors.ts';
import { checkEventOrigin, EVENT_TIME_SKEW_MS, type OriginCheck } from './event-origin.ts';
import { BackupCompleted } from './events/backup.ts';
import { HostSeen } from './events/host.ts';
import { PolicyDefined } from './events/policy.ts';
import { RestoreStarted } from './events/restore.ts';
import { VolumeDiscovered } from './events/volume.ts';
import { sampleData } from './fixtures.ts';
import { eventSubject } from './streams.ts';

const NOW = new Date('2025-03-14T03:00:00.000Z');
const AGENT_A = { source: 'volback://agent/host-a', time: NOW };

function refusal(check: OriginCheck): { path: string; message: string } {
  if (check.ok) throw new Error('expected a refusal, the event was accepted');
  expect(check.error.code).toBe(ContractErrorCode.WrongOrigin);
  expect(check.error.issues).toHaveLength(1);
  return check.error.issues[0]!;
}

const completedOn = (hostId: string, source = AGENT_A.source) =>
  createEvent(BackupCompleted, sampleData(BackupCompleted, { hostId, backupId: 'bk-1' }), {
    ...AGENT_A,
    source,
  });

describe('checkEventOrigin accepts', () => {
  it('an event of host A on its own subject, from the agent of A', () => {
    const { subject, envelope } = completedOn('host-a');
    expect(checkEventOrigin(subject, envelope, NOW)).toEqual({ ok: true });
  });

  it('events of every host-scoped aggregate, and a service speaking about a host', () => {
    const volume = createEvent(VolumeDiscovered, sampleData(VolumeDiscovered, { hostId: 'host.a' }), {
      ...AGENT_A,
      source: 'volback://agent/host.a',
    });
    expect(checkEventOrigin(volume.subject, volume.envelope, NOW).ok).toBe(true);
    const restore = createEvent(RestoreStarted, sampleData(RestoreStarted, { hostId: 'host-a' }), AGENT_A);
    expect(checkEventOrigin(restore.subject, restore.envelope, NOW).ok).toBe(true);
    const scheduler = createEvent(BackupCompleted, sampleData(BackupCompleted, { hostId: 'host-b' }), {
      source: 'volback://scheduler/s1',
      time: NOW,
    });
    expect(checkEventOrigin(scheduler.subject, scheduler.envelope, NOW).ok).toBe(true);
  });

  it('an event that is not about a host', () => {
    const { subject, envelope } = createEvent(PolicyDefined, sampleData(PolicyDefined), {
      source: 'volback://scheduler/s1',
      time: NOW,
    });
    expect(checkEventOrigin(subject, envelope, NOW).ok).toBe(true);
  });

  it('a backup event stored before subjects v2, on volback.evt.backup.<backupId>', () => {
    const { envelope } = completedOn('host-a');
    expect(checkEventOrigin('volback.evt.backup.bk-1', envelope, NOW).ok).toBe(true);
  });

  it(`a time up to ${EVENT_TIME_SKEW_MS / 60_000} minutes ahead of the stream's (clock skew)`, () => {
    const { subject, envelope } = completedOn('host-a');
    expect(checkEventOrigin(subject, envelope, new Date(NOW.getTime() - EVENT_TIME_SKEW_MS)).ok).toBe(true);
  });
});

describe('checkEventOrigin refuses', () => {
  it("an event on host A's subject whose data names host B", () => {
    const forged = completedOn('host-b');
    const subject = eventSubject('backup', 'host-a', 'bk-1');
    const issue = refusal(checkEventOrigin(subject, forged.envelope, NOW));
    expect(issue.path).toBe('data.hostId');
    expect(issue.message).toContain('"host-b"');
    expect(issue.message).toContain('"host-a"');
  });

  it("a source volback://agent/B on host A's subject", () => {
    const { subject, envelope } = completedOn('host-a', 'volback://agent/host-b');
    const issue = refusal(checkEventOrigin(subject, envelope, NOW));
    expect(issue.path).toBe('source');
    expect(issue.message).toContain('"host-b"');
  });

  it('an event dated more than five minutes after it was stored', () => {
    const { subject, envelope } = createEvent(
      BackupCompleted,
      sampleData(BackupCompleted, { hostId: 'host-a' }),
      { ...AGENT_A, time: new Date(NOW.getTime() + 60 * 60_000) },
    );
    const issue = refusal(checkEventOrigin(subject, envelope, NOW));
    expect(issue.path).toBe('time');
    expect(issue.message).toContain(NOW.toISOString());
  });

  it("an event type on another aggregate's subject", () => {
    const { envelope } = completedOn('host-a');
    const issue = refusal(checkEventOrigin(eventSubject('host', 'host-a'), envelope, NOW));
    expect(issue.path).toBe('subject');
    expect(issue.message).toContain('volback.evt.backup.');
  });

  it('an event on a subject of the same host that names another instance', () => {
    const { envelope } = completedOn('host-a');
    const issue = refusal(checkEventOrigin(eventSubject('backup', 'host-a', 'bk-2'), envelope, NOW));
    expect(issue).toMatchObject({ path: 'subject' });
    expect(issue.message).toContain(eventSubject('backup', 'host-a', 'bk-1'));
  });

  it('a heartbeat of host B on host A', () => {
    const { envelope } = createEvent(HostSeen, sampleData(HostSeen, { hostId: 'host-b' }), AGENT_A);
    expect(refusal(checkEventOrigin(eventSubject('host', 'host-a'), envelope, NOW)).path).toBe('data.hostId');
  });

  it('a legacy backup subject with another backup id, and a command on an event subject', () => {
    const { envelope } = completedOn('host-a');
    expect(refusal(checkEventOrigin('volback.evt.backup.bk-9', envelope, NOW)).path).toBe('subject');
    const command = createCommand(BackupVolume, sampleData(BackupVolume), AGENT_A);
    const issue = refusal(checkEventOrigin('volback.evt.backup.h.bk', command.envelope as Envelope, NOW));
    expect(issue.path).toBe('type');
  });
});
