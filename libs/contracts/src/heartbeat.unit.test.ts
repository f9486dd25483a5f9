import { describe, expect, it } from 'vitest';
import { encodeEnvelope } from './parse.ts';
import { createHeartbeat, parseHeartbeat } from './heartbeat.ts';
import { createEvent } from './define.ts';
import { HostRegistered } from './events/host.ts';
import { sampleData } from './fixtures.ts';

const seen = (hostId: string) =>
  createHeartbeat(
    {
      hostId,
      seenAt: '2025-01-01T00:00:00.000Z',
      intervalSeconds: 30,
      containers: 1,
      volumes: 2,
      backupsRunning: 0,
    },
    { source: `volback://agent/${hostId}` },
  );

describe('heartbeats', () => {
  it("go on the host's heartbeat subject, not on the event log", () => {
    expect(seen('host.a').subject).toBe('volback.hb.host~2Ea');
  });

  it('read back when the subject names the host of the data', () => {
    const hb = seen('host-a');
    const parsed = parseHeartbeat(hb.subject, encodeEnvelope(hb.envelope));
    expect(parsed.ok && parsed.heartbeat).toMatchObject({ hostId: 'host-a', volumes: 2 });
  });

  it("are refused on another host's subject, off the heartbeat subjects, or of another type", () => {
    const forged = seen('host-b');
    const onA = parseHeartbeat('volback.hb.host-a', encodeEnvelope(forged.envelope));
    expect(onA.ok || onA.error.code).toBe('VOLBACK_CONTRACT_WRONG_ORIGIN');
    expect(parseHeartbeat('volback.evt.host.host-b', encodeEnvelope(forged.envelope)).ok).toBe(false);
    const registered = createEvent(HostRegistered, sampleData(HostRegistered, { hostId: 'host-a' }), {
      source: 'volback://agent/host-a',
    });
    expect(parseHeartbeat('volback.hb.host-a', encodeEnvelope(registered.envelope)).ok).toBe(false);
    expect(parseHeartbeat('volback.hb.host-a', 'not json').ok).toBe(false);
  });
});
