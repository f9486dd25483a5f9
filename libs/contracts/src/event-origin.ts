import type { Envelope } from './envelope.ts';
import { ContractErrorCode, ContractViolationError, type ContractIssue } from './errors.ts';
import { findDefinition } from './registry.ts';
import { eventSubject, isHostScopedAggregate, SUBJECT_ROOTS } from './streams.ts';
import { decodeSubjectToken, encodeSubjectToken } from './subject-token.ts';

/** How far an event's `time` may run ahead of the moment the stream stored it (clock skew). */
export const EVENT_TIME_SKEW_MS = 5 * 60_000;

/** The verdict of {@link checkEventOrigin}. */
export type OriginCheck = { ok: true } | { ok: false; error: ContractViolationError };

const AGENT_SOURCE = /^volback:\/\/agent\/(.+)$/;

function refused(type: string, issues: ContractIssue[]): OriginCheck {
  return { ok: false, error: new ContractViolationError(ContractErrorCode.WrongOrigin, issues, type) };
}

/**
 * Checks that a stored event could have come from whoever was allowed to say it (SECURITY-PLAN
 * §3). NATS permissions let agent H publish only on subjects that carry H at the host token, so the
 * subject is the proof of who published; what the envelope claims must agree with it:
 * - the event is on its own aggregate's subject, the one its data names (`eventSubject` of its
 *   `aggregateId`): on a host-scoped subject `data.hostId` is the subject's host;
 * - a `source` of `volback://agent/<x>` on a host-scoped subject has x = that host;
 * - `time` is no later than `storedAt` (the stream's timestamp) + {@link EVENT_TIME_SKEW_MS}.
 *
 * Backup and restore events written before subjects v2 (`volback.evt.backup.<backupId>`, no host
 * token) pass the subject check: agents cannot publish there under v2 permissions, so only the
 * services could have. `envelope` is a parsed one (`parseMessage`), its data with defaults.
 */
export function checkEventOrigin(subject: string, envelope: Envelope, storedAt: Date): OriginCheck {
  const def = findDefinition(envelope.type);
  if (!def || def.kind !== 'event') {
    return refused(envelope.type, [{ path: 'type', message: `not an event type, on ${subject}` }]);
  }
  const data = envelope.data;
  const ids = def.aggregateId(data as never);
  const expected = eventSubject(def.aggregate, ...ids);
  const tokens = subject.split('.');
  const root = SUBJECT_ROOTS.events.split('.');
  if (root.some((token, i) => tokens[i] !== token) || tokens[root.length] !== def.aggregate) {
    return refused(def.type, [
      {
        path: 'subject',
        message: `a ${def.name} belongs on ${SUBJECT_ROOTS.events}.${def.aggregate}.…, not on ${subject}`,
      },
    ]);
  }
  const hostScoped = isHostScopedAggregate(def.aggregate);
  const dataHost = hostScoped ? ids[0]! : undefined;
  const legacy =
    (def.aggregate === 'backup' || def.aggregate === 'restore') &&
    subject === [SUBJECT_ROOTS.events, def.aggregate, encodeSubjectToken(ids[1]!)].join('.');
  if (subject !== expected && !legacy) {
    const wellFormed = tokens.length === root.length + 1 + ids.length;
    const subjectHost = hostScoped && wellFormed ? decodedOrUndefined(tokens[root.length + 1]) : undefined;
    if (dataHost !== undefined && subjectHost !== undefined && subjectHost !== dataHost) {
      return refused(def.type, [
        {
          path: 'data.hostId',
          message: `names host ${JSON.stringify(dataHost)}, but the event is on host ${JSON.stringify(subjectHost)}'s subject ${subject}`,
        },
      ]);
    }
    return refused(def.type, [
      { path: 'subject', message: `the data names ${expected}, but the event is on ${subject}` },
    ]);
  }
  const agent = AGENT_SOURCE.exec(envelope.source)?.[1];
  if (dataHost !== undefined && agent !== undefined && agent !== dataHost) {
    return refused(def.type, [
      {
        path: 'source',
        message: `the agent of ${JSON.stringify(agent)} cannot speak for host ${JSON.stringify(dataHost)} (${subject})`,
      },
    ]);
  }
  const time = Date.parse(envelope.time);
  if (time > storedAt.getTime() + EVENT_TIME_SKEW_MS) {
    return refused(def.type, [
      {
        path: 'time',
        message: `${envelope.time} is more than ${EVENT_TIME_SKEW_MS / 60_000} minutes after the event was stored (${storedAt.toISOString()})`,
      },
    ]);
  }
  return { ok: true };
}

function decodedOrUndefined(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    return decodeSubjectToken(token);
  } catch {
    return undefined;
  }
}
