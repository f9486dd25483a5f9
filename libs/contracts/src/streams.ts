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

/** `volback.evt.<aggregate>.<id tokens…>`; host-scoped aggregates use host and name as two tokens. */
export function eventSubject(aggregate: Aggregate, ...idParts: readonly string[]): string {
  if (idParts.length === 0) throw new RangeError(`an event subject for ${aggregate} needs an id`);
  return [SUBJECT_ROOTS.events, aggregate, ...idParts.map(encodeSubjectToken)].join('.');
}

/** The subject filter for every event of one aggregate type, or of one instance. */
export function eventSubjectFilter(aggregate?: Aggregate, ...idParts: readonly string[]): string {
  if (!aggregate) return `${SUBJECT_ROOTS.events}.>`;
  return [SUBJECT_ROOTS.events, aggregate, ...idParts.map(encodeSubjectToken), '>'].join('.');
}

function targetToken(target: CommandTarget): string {
  return target.kind === 'host' ? encodeSubjectToken(target.hostId) : target.kind;
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
  if (!/^[a-z][a-z0-9-]*$/.test(operation)) throw new RangeError(`data operation must be kebab-case: ${operation}`);
  return [SUBJECT_ROOTS.data, operation].join('.');
}
