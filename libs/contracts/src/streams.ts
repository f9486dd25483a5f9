import { decodeSubjectToken, encodeSubjectToken } from './subject-token.ts';

/** Event aggregates; each instance has its own subject, hence its own ordering. */
export const AGGREGATES = [
  'host',
  'volume',
  'container',
  'policy',
  'backup',
  'restore',
  'snapshot',
  'repository',
  'message',
  'notification',
  'drill',
] as const;
/** One of {@link AGGREGATES}. */
export type Aggregate = (typeof AGGREGATES)[number];

/** Where commands go: an agent's host id, or one of the shared services. */
export type CommandTarget = { kind: 'host'; hostId: string } | { kind: 'gateway' } | { kind: 'scheduler' };

/** Subject roots of the five traffic classes (DESIGN.md §2). */
export const SUBJECT_ROOTS = {
  events: 'volback.evt',
  commands: 'volback.cmd',
  data: 'volback.data',
  progress: 'volback.progress',
  heartbeats: 'volback.hb',
} as const;

/** The JetStream streams and what they hold. */
export const STREAMS = {
  /** Every fact, per-aggregate subjects, file storage, limits retention; the system's log. */
  events: { name: 'VOLBACK_EVENTS', subjects: [`${SUBJECT_ROOTS.events}.>`] },
  /** Work to do; each command is consumed once (work-queue retention). */
  commands: { name: 'VOLBACK_COMMANDS', subjects: [`${SUBJECT_ROOTS.commands}.>`] },
  /**
   * Liveness: each host's latest `HostSeen` on `volback.hb.<hostId>`, one message per subject, so
   * heartbeats every 30 s never grow a log (the event log gets no heartbeats).
   */
  heartbeats: { name: 'VOLBACK_HEARTBEATS', subjects: [`${SUBJECT_ROOTS.heartbeats}.>`] },
} as const;

/**
 * How many subject tokens identify one instance of each aggregate: the host-scoped ones put the host
 * id first (`<hostId>.<volumeName>`, `<hostId>.<backupId>`), so NATS permissions can let an agent
 * publish only about its own host; everything else has one id.
 */
export const AGGREGATE_ID_PARTS = {
  host: 1,
  volume: 2,
  container: 2,
  policy: 1,
  backup: 2,
  restore: 2,
  snapshot: 1,
  repository: 1,
  message: 1,
  notification: 2,
  drill: 2,
} as const satisfies Record<Aggregate, number>;

/**
 * Aggregates whose first id token is a host id: an agent may publish on these subjects for its own
 * host only (SECURITY-PLAN §1–2), and consumers check that an event names the host of its subject.
 */
export const HOST_SCOPED_AGGREGATES = ['host', 'volume', 'container', 'backup', 'restore', 'drill'] as const;
/** One of {@link HOST_SCOPED_AGGREGATES}. */
export type HostScopedAggregate = (typeof HOST_SCOPED_AGGREGATES)[number];

/** True for an aggregate whose subjects carry a host id as their first id token. */
export function isHostScopedAggregate(aggregate: Aggregate): aggregate is HostScopedAggregate {
  return (HOST_SCOPED_AGGREGATES as readonly string[]).includes(aggregate);
}

/** `volback.evt.<aggregate>.<id tokens…>`; host-scoped aggregates put the host id first. */
export function eventSubject(aggregate: Aggregate, ...idParts: readonly string[]): string {
  const parts = AGGREGATE_ID_PARTS[aggregate];
  if (idParts.length !== parts) {
    throw new RangeError(
      `an event subject for ${aggregate} needs ${parts} id part(s), got ${idParts.length}`,
    );
  }
  return [SUBJECT_ROOTS.events, aggregate, ...idParts.map(encodeSubjectToken)].join('.');
}

/**
 * The subject filter for every event, every event of one aggregate type, of the instances under an
 * id prefix (every volume of a host), or of one instance (its exact subject: `>` needs a token).
 */
export function eventSubjectFilter(aggregate?: Aggregate, ...idParts: readonly string[]): string {
  if (!aggregate) return `${SUBJECT_ROOTS.events}.>`;
  if (idParts.length === AGGREGATE_ID_PARTS[aggregate]) return eventSubject(aggregate, ...idParts);
  if (idParts.length > AGGREGATE_ID_PARTS[aggregate]) {
    throw new RangeError(
      `${aggregate} ids have ${AGGREGATE_ID_PARTS[aggregate]} part(s), got ${idParts.length}`,
    );
  }
  return [SUBJECT_ROOTS.events, aggregate, ...idParts.map(encodeSubjectToken), '>'].join('.');
}

/**
 * Target tokens of the shared services. Agents' commands live under `volback.cmd.host.…`, so a host
 * id equal to one of them no longer lands in that service's queue; such host ids stay refused (see
 * `hostId` in fields.ts) so that logs and subjects never read ambiguously.
 */
export const SERVICE_COMMAND_TARGETS = ['gateway', 'scheduler'] as const;

/** True when `hostId` would encode to a shared service's command target token. */
export function isReservedHostId(hostId: string): boolean {
  return (SERVICE_COMMAND_TARGETS as readonly string[]).includes(hostId);
}

/** The host id's token, refusing the ids reserved for services. */
function hostToken(hostId: string): string {
  if (isReservedHostId(hostId)) {
    throw new RangeError(`host id ${JSON.stringify(hostId)} is reserved for a service`);
  }
  return encodeSubjectToken(hostId);
}

/** `host.<H>` for an agent, `gateway` or `scheduler` for a service. */
function targetTokens(target: CommandTarget): string[] {
  return target.kind === 'host' ? ['host', hostToken(target.hostId)] : [target.kind];
}

function kebabCase(what: string, name: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new RangeError(`${what} must be kebab-case: ${name}`);
  return name;
}

/**
 * `volback.cmd.host.<H>.<name>` for an agent, `volback.cmd.gateway.<name>` or
 * `volback.cmd.scheduler.<name>` for a service.
 */
export function commandSubject(target: CommandTarget, name: string): string {
  return [SUBJECT_ROOTS.commands, ...targetTokens(target), kebabCase('command name', name)].join('.');
}

/** Every command for one target: what an agent or a service consumes. */
export function commandSubjectFilter(target: CommandTarget): string {
  return [SUBJECT_ROOTS.commands, ...targetTokens(target), '*'].join('.');
}

/** `volback.progress.<H>.<backupId|restoreId>`: live progress of a host's work, not stored. */
export function progressSubject(hostId: string, workId: string): string {
  return [SUBJECT_ROOTS.progress, hostToken(hostId), encodeSubjectToken(workId)].join('.');
}

/** The progress of every host's work (`volback.progress.>`), or of one host's. */
export function progressSubjectFilter(hostId?: string): string {
  return hostId === undefined
    ? `${SUBJECT_ROOTS.progress}.>`
    : [SUBJECT_ROOTS.progress, hostToken(hostId), '>'].join('.');
}

/** Reads host and work id from a progress subject; undefined when it is not one. */
export function parseProgressSubject(subject: string): { hostId: string; workId: string } | undefined {
  const root = SUBJECT_ROOTS.progress.split('.');
  const tokens = subject.split('.');
  if (tokens.length !== root.length + 2 || root.some((token, i) => tokens[i] !== token)) return undefined;
  try {
    return {
      hostId: decodeSubjectToken(tokens[root.length]!),
      workId: decodeSubjectToken(tokens[root.length + 1]!),
    };
  } catch {
    return undefined;
  }
}

/** `volback.hb.<H>`: where host H's agent publishes its heartbeat (`HostSeen`); the stream keeps the last. */
export function heartbeatSubject(hostId: string): string {
  return [SUBJECT_ROOTS.heartbeats, hostToken(hostId)].join('.');
}

/** Every host's heartbeat: `volback.hb.>`. */
export function heartbeatSubjectFilter(): string {
  return `${SUBJECT_ROOTS.heartbeats}.>`;
}

/** The host id of a heartbeat subject; undefined when it is not one (or names a reserved id). */
export function parseHeartbeatSubject(subject: string): string | undefined {
  const root = SUBJECT_ROOTS.heartbeats.split('.');
  const tokens = subject.split('.');
  if (tokens.length !== root.length + 1 || root.some((token, i) => tokens[i] !== token)) return undefined;
  try {
    const hostId = decodeSubjectToken(tokens[root.length]!);
    return isReservedHostId(hostId) ? undefined : hostId;
  } catch {
    return undefined;
  }
}

/**
 * Who asks on the data path. The subject names the requester, and NATS permissions let each
 * identity publish only on its own subjects, so the gateway takes the subject as proof of who asks.
 */
export type DataRequester = { kind: 'host'; hostId: string } | { kind: 'catalog' };

function requesterTokens(requester: DataRequester): string[] {
  return requester.kind === 'host' ? ['host', hostToken(requester.hostId)] : ['catalog'];
}

/**
 * `volback.data.host.<H>.<operation>` (an agent) or `volback.data.catalog.<operation>` (the
 * catalog): request–reply with the gateways' queue group.
 */
export function dataSubject(requester: DataRequester, operation: string): string {
  return [SUBJECT_ROOTS.data, ...requesterTokens(requester), kebabCase('data operation', operation)].join(
    '.',
  );
}

/**
 * The subjects a gateway serves for one operation, one per kind of requester
 * (`volback.data.host.*.<operation>`, `volback.data.catalog.<operation>`); without an operation,
 * `volback.data.>`, every request.
 */
export function dataSubjectFilters(operation?: string): string[] {
  if (operation === undefined) return [`${SUBJECT_ROOTS.data}.>`];
  const op = kebabCase('data operation', operation);
  return [`${SUBJECT_ROOTS.data}.host.*.${op}`, `${SUBJECT_ROOTS.data}.catalog.${op}`];
}

/** Reads requester and operation from a data-path subject; undefined when it is not one. */
export function parseDataSubject(
  subject: string,
): { requester: DataRequester; operation: string } | undefined {
  const tokens = subject.split('.');
  const root = SUBJECT_ROOTS.data.split('.');
  if (tokens.length < root.length + 2 || root.some((token, i) => tokens[i] !== token)) return undefined;
  const [kind, ...rest] = tokens.slice(root.length);
  let requester: DataRequester;
  let operation: string | undefined;
  if (kind === 'catalog' && rest.length === 1) {
    requester = { kind: 'catalog' };
    operation = rest[0];
  } else if (kind === 'host' && rest.length === 2) {
    let hostId: string;
    try {
      hostId = decodeSubjectToken(rest[0]!);
    } catch {
      return undefined;
    }
    if (isReservedHostId(hostId)) return undefined;
    requester = { kind: 'host', hostId };
    operation = rest[1];
  } else {
    return undefined;
  }
  if (!operation || !/^[a-z][a-z0-9-]*$/.test(operation)) return undefined;
  return { requester, operation };
}

/**
 * A NATS identity (SECURITY-PLAN §2): an agent of one host, a shared service, a read-only
 * subscriber of the events, or the admin that sets the streams up.
 */
export type NatsIdentity =
  | { kind: 'agent'; hostId: string }
  | { kind: 'service'; service: 'scheduler' | 'catalog' | 'gateway' | 'cli' }
  | { kind: 'subscriber'; name: string }
  | { kind: 'admin' };

/**
 * The prefix of an identity's reply inboxes (nats.js `inboxPrefix`): `_INBOX.host.<H>`,
 * `_INBOX.<service>`, `_INBOX.subscriber.<name>`, `_INBOX.admin`. Each identity may subscribe only
 * below its own prefix, so no one reads another's replies.
 */
export function inboxPrefix(identity: NatsIdentity): string {
  switch (identity.kind) {
    case 'agent':
      return `_INBOX.host.${hostToken(identity.hostId)}`;
    case 'service':
      return `_INBOX.${identity.service}`;
    case 'subscriber':
      return `_INBOX.subscriber.${encodeSubjectToken(identity.name)}`;
    case 'admin':
      return '_INBOX.admin';
  }
}
