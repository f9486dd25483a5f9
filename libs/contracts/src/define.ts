import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { commandTypeName, envelopeSchema, eventTypeName, type Envelope } from './envelope.ts';
import { ContractErrorCode, ContractViolationError, toContractIssues } from './errors.ts';
import { commandSubject, eventSubject, type Aggregate, type CommandTarget } from './streams.ts';

/** An event: a fact in the past tense (`BackupCompleted`), appended to its aggregate's subject. */
export interface EventDefinition<
  Name extends string = string,
  Type extends string = string,
  Schema extends z.ZodType = z.ZodType,
> {
  readonly kind: 'event';
  /** PascalCase, past tense. */
  readonly name: Name;
  readonly aggregate: Aggregate;
  /** The `type` attribute, `io.volback.<aggregate>.<what>.v<version>`. */
  readonly type: Type;
  readonly version: number;
  /** One sentence for the JSON Schema and the docs: what happened. */
  readonly description: string;
  /** Schema of `data`. */
  readonly schema: Schema;
  /** The aggregate instance this event belongs to, as subject id parts (host and name for volumes). */
  aggregateId(data: z.output<Schema>): readonly string[];
}

/** A command: work to do, in the imperative (`BackupVolume`), addressed to one target. */
export interface CommandDefinition<
  Name extends string = string,
  Type extends string = string,
  Schema extends z.ZodType = z.ZodType,
> {
  readonly kind: 'command';
  /** PascalCase, imperative. */
  readonly name: Name;
  /** kebab-case name, the last subject token. */
  readonly commandName: string;
  /** The `type` attribute, `io.volback.cmd.<commandName>.v<version>`. */
  readonly type: Type;
  readonly version: number;
  readonly description: string;
  readonly schema: Schema;
  /** Who runs it: an agent (by host id), the gateways or the scheduler. */
  target(data: z.output<Schema>): CommandTarget;
}

/** Any event or command definition. */
export type MessageDefinition = EventDefinition | CommandDefinition;

/** Declares an event; its `type` is derived from aggregate, `what` and version. */
export function defineEvent<
  const Name extends string,
  const A extends Aggregate,
  const What extends string,
  Schema extends z.ZodType,
>(spec: {
  name: Name;
  aggregate: A;
  what: What;
  description: string;
  schema: Schema;
  aggregateId: (data: z.output<Schema>) => readonly string[];
}): EventDefinition<Name, `io.volback.${A}.${What}.v1`, Schema> {
  return {
    kind: 'event',
    name: spec.name,
    aggregate: spec.aggregate,
    type: eventTypeName(spec.aggregate, spec.what, 1) as `io.volback.${A}.${What}.v1`,
    version: 1,
    description: spec.description,
    schema: spec.schema,
    aggregateId: spec.aggregateId,
  };
}

/**
 * Declares a command; its `type` is derived from its kebab-case name and `version` (1 unless
 * given: a breaking change is a new version, see the README's Versioning).
 */
export function defineCommand<
  const Name extends string,
  const Cmd extends string,
  Schema extends z.ZodType,
  const Version extends number = 1,
>(spec: {
  name: Name;
  commandName: Cmd;
  version?: Version;
  description: string;
  schema: Schema;
  target: (data: z.output<Schema>) => CommandTarget;
}): CommandDefinition<Name, `io.volback.cmd.${Cmd}.v${Version}`, Schema> {
  const version = spec.version ?? 1;
  return {
    kind: 'command',
    name: spec.name,
    commandName: spec.commandName,
    type: commandTypeName(spec.commandName, version) as `io.volback.cmd.${Cmd}.v${Version}`,
    version,
    description: spec.description,
    schema: spec.schema,
    target: spec.target,
  };
}

/** A message ready to publish: its NATS subject and its envelope. */
export interface OutgoingMessage<Type extends string = string, Data = unknown> {
  readonly subject: string;
  readonly envelope: Envelope<Type, Data>;
}

/** Envelope attributes the emitter chooses. */
export interface EnvelopeOptions {
  /** Emitter, e.g. `volback://agent/<hostId>`. */
  source: string;
  /** Defaults to a random UUID; pass a deterministic id to make re-publishing idempotent. */
  id?: string;
  time?: Date;
  causationid?: string;
  correlationid?: string;
}

function validate<Schema extends z.ZodType>(
  def: MessageDefinition,
  schema: Schema,
  data: unknown,
): z.output<Schema> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new ContractViolationError(
      ContractErrorCode.InvalidData,
      toContractIssues(parsed.error, 'data'),
      def.type,
    );
  }
  return parsed.data;
}

function envelope<Type extends string, Data>(
  type: Type,
  subject: string,
  data: Data,
  options: EnvelopeOptions,
): Envelope<Type, Data> {
  const time = options.time ?? new Date();
  const built: Envelope<Type, Data> = {
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    source: options.source,
    type,
    // An invalid Date is reported as a bad `time` below rather than a RangeError from toISOString.
    time: Number.isNaN(time.getTime()) ? String(time) : time.toISOString(),
    subject,
    datacontenttype: 'application/json',
    ...(options.causationid ? { causationid: options.causationid } : {}),
    ...(options.correlationid ? { correlationid: options.correlationid } : {}),
    data,
  };
  // Never publish what every receiver would reject (an empty source or id, a bad time).
  const checked = envelopeSchema.safeParse(built);
  if (!checked.success) {
    throw new ContractViolationError(
      ContractErrorCode.InvalidEnvelope,
      toContractIssues(checked.error),
      type,
    );
  }
  return built;
}

/** Validates `data` and wraps it as an event on its aggregate's subject; throws {@link ContractViolationError}. */
export function createEvent<Type extends string, Schema extends z.ZodType>(
  def: EventDefinition<string, Type, Schema>,
  data: z.input<Schema>,
  options: EnvelopeOptions,
): OutgoingMessage<Type, z.output<Schema>> {
  const valid = validate(def, def.schema, data);
  const idParts = def.aggregateId(valid);
  return {
    subject: eventSubject(def.aggregate, ...idParts),
    envelope: envelope(def.type, idParts.join('/'), valid, options),
  };
}

/** Validates `data` and wraps it as a command on its target's subject; throws {@link ContractViolationError}. */
export function createCommand<Type extends string, Schema extends z.ZodType>(
  def: CommandDefinition<string, Type, Schema>,
  data: z.input<Schema>,
  options: EnvelopeOptions,
): OutgoingMessage<Type, z.output<Schema>> {
  const valid = validate(def, def.schema, data);
  const target = def.target(valid);
  const subject = commandSubject(target, def.commandName);
  return {
    subject,
    envelope: envelope(
      def.type,
      target.kind === 'host' ? `host/${target.hostId}` : target.kind,
      valid,
      options,
    ),
  };
}

/** {@link createEvent} or {@link createCommand}, by the definition's kind: for code that handles any message. */
export function createMessage(
  def: MessageDefinition,
  data: unknown,
  options: EnvelopeOptions,
): OutgoingMessage {
  return def.kind === 'event' ? createEvent(def, data, options) : createCommand(def, data, options);
}
