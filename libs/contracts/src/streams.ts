import { encodeSubjectToken } from './subject-token.ts';

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
] as const;
/** One of {@link AGGREGATES}. */
export type Aggregate = (typeof AGGREGATES)[number];

/** Where commands go: an agent's host id, or one of the shared services. */
export type CommandTarget = { kind: 'host'; hostId: string } | { kind: 'gateway' } | { kind: 'scheduler' };

/** Subject roots of the four traffic classes (DESIGN.md §2). */
export const SUBJECT_ROOTS = {
  events: 'volback.evt',
  commands: 'volback.cmd',
  data: 'volback.data',
  progress: 'volback.progress',
} as const;

/** The JetStream streams and what they hold. */
export const STREAMS = {
  /** Every fact, per-aggregate subjects, file storage, limits retention; the system's log. */
  events: { name: 'VOLBACK_EVENTS', subjects: [`${SUBJECT_ROOTS.events}.>`] },
  /** Work to do; each command is consumed once (work-queue retention). */
  commands: { name: 'VOLBACK_COMMANDS', subjects: [`${SUBJECT_ROOTS.commands}.>`] },
} as const;

/**
 * How many subject tokens identify one instance of each aggregate: volumes and containers are
 * named per host (`<hostId>.<volumeName>`), everything else has one id.
 */
export const AGGREGATE_ID_PARTS = {
  host: 1,
  volume: 2,
  container: 2,
  policy: 1,
  backup: 1,
  restore: 1,
  snapshot: 1,
  repository: 1,
  message: 1,
} as const satisfies Record<Aggregate, number>;

/** `volback.evt.<aggregate>.<id tokens…>`; host-scoped aggregates use host and name as two tokens. */
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
 * Target tokens of the shared services. A host id equal to one of them would put an agent's
 * commands where that service consumes, so such host ids are refused (see `hostId` in fields.ts).
 */
export const SERVICE_COMMAND_TARGETS = ['gateway', 'scheduler'] as const;

/** True when `hostId` would encode to a shared service's command target token. */
export function isReservedHostId(hostId: string): boolean {
  return (SERVICE_COMMAND_TARGETS as readonly string[]).includes(hostId);
}

function targetToken(target: CommandTarget): string {
  if (target.kind !== 'host') return target.kind;
  if (isReservedHostId(target.hostId)) {
    throw new RangeError(`host id ${JSON.stringify(target.hostId)} is reserved for a service's commands`);
  }
  return encodeSubjectToken(target.hostId);
}

/** `volback.cmd.<target>.<name>`, e.g. `volback.cmd.gateway.prune-repository`. */
export function commandSubject(target: CommandTarget, name: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new RangeError(`command name must be kebab-case: ${name}`);
  return [SUBJECT_ROOTS.commands, targetToken(target), name].join('.');
}

/** Every command for one target: what an agent or a service consumes. */
export function commandSubjectFilter(target: CommandTarget): string {
  return [SUBJECT_ROOTS.commands, targetToken(target), '*'].join('.');
}

/** `volback.progress.<backupId|restoreId>`: live progress, not stored. */
export function progressSubject(workId: string): string {
  return [SUBJECT_ROOTS.progress, encodeSubjectToken(workId)].join('.');
}

/** `volback.data.<operation>`: request–reply between agents and the gateways' queue group. */
export function dataSubject(operation: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(operation))
    throw new RangeError(`data operation must be kebab-case: ${operation}`);
  return [SUBJECT_ROOTS.data, operation].join('.');
}
