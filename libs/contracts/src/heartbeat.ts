import type { z } from 'zod';
import type { EnvelopeOptions, OutgoingMessage } from './define.ts';
import { createEvent } from './define.ts';
import type { Envelope } from './envelope.ts';
import { ContractErrorCode, ContractViolationError } from './errors.ts';
import { HostSeen } from './events/host.ts';
import { parseMessage } from './parse.ts';
import { heartbeatSubject, parseHeartbeatSubject } from './streams.ts';

/** What a heartbeat says: `HostSeen`'s data. */
export type Heartbeat = z.output<typeof HostSeen.schema>;

/**
 * A heartbeat as the agent of `data.hostId` publishes it: a `HostSeen` envelope on
 * `volback.hb.<hostId>` (stream `VOLBACK_HEARTBEATS`, which keeps each host's last one), never
 * on the event log.
 */
export function createHeartbeat(
  data: z.input<typeof HostSeen.schema>,
  options: EnvelopeOptions,
): OutgoingMessage<typeof HostSeen.type, Heartbeat> {
  const event = createEvent(HostSeen, data, options);
  return { ...event, subject: heartbeatSubject(event.envelope.data.hostId) };
}

/** Outcome of {@link parseHeartbeat}: never throws on bad input. */
export type HeartbeatParse =
  { ok: true; heartbeat: Heartbeat; envelope: Envelope } | { ok: false; error: ContractViolationError };

/**
 * Validates a message read from `VOLBACK_HEARTBEATS`: a `HostSeen` whose host is the subject's
 * (NATS permissions let an agent publish only its own host's heartbeat subject, so the subject is
 * the proof of who sent it).
 */
export function parseHeartbeat(subject: string, raw: Uint8Array | string): HeartbeatParse {
  const parsed = parseMessage(raw);
  if (!parsed.ok) return parsed;
  const { envelope } = parsed.message;
  const wrong = (path: string, message: string): HeartbeatParse => ({
    ok: false,
    error: new ContractViolationError(ContractErrorCode.WrongOrigin, [{ path, message }], envelope.type),
  });
  if (envelope.type !== HostSeen.type)
    return wrong('type', `a heartbeat is a ${HostSeen.type}, on ${subject}`);
  const heartbeat = envelope.data as Heartbeat;
  const host = parseHeartbeatSubject(subject);
  if (host === undefined) return wrong('subject', `${subject} is not a heartbeat subject`);
  if (host !== heartbeat.hostId) {
    return wrong(
      'data.hostId',
      `names host ${JSON.stringify(heartbeat.hostId)}, but the heartbeat is on host ${JSON.stringify(host)}'s subject ${subject}`,
    );
  }
  return { ok: true, heartbeat, envelope };
}
