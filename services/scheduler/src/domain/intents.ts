import {
  createCommand,
  createEvent,
  type CommandDefinition,
  type EventDefinition,
  type OutgoingMessage,
} from '@volback/contracts';
import type { z } from 'zod';
import { boundedId } from './ids.ts';

/** One message a decision publishes. */
export type Intent =
  | {
      readonly kind: 'event';
      readonly message: OutgoingMessage;
      /**
       * Store only if the subject is empty (expected last subject sequence 0): the event opens its
       * aggregate (a backup's `BackupRequested`), so it can be stored once, ever, whoever decides.
       */
      readonly firstOnSubject?: boolean;
    }
  | { readonly kind: 'command'; readonly message: OutgoingMessage };

/** What one decision publishes, in order: its events, then the commands they announce. */
export interface Decision {
  /** For logs and metrics, e.g. `backup`, `forget`, `policy-defined`. */
  readonly what: string;
  readonly intents: readonly Intent[];
}

/** Envelope options every scheduler message shares: a deterministic id and the decision's time. */
interface Stamp {
  readonly id: string;
  readonly now: number;
  readonly source: string;
  readonly causationid?: string;
  readonly correlationid?: string;
}

function options(stamp: Stamp) {
  return {
    id: boundedId(stamp.id),
    source: stamp.source,
    time: new Date(stamp.now),
    ...(stamp.causationid ? { causationid: stamp.causationid } : {}),
    ...(stamp.correlationid ? { correlationid: stamp.correlationid } : {}),
  };
}

/** An event intent; throws the contract's error for data that breaks its schema. */
export function eventIntent<S extends z.ZodType>(
  def: EventDefinition<string, string, S>,
  data: z.input<S>,
  stamp: Stamp,
  firstOnSubject = false,
): Intent {
  return {
    kind: 'event',
    message: createEvent(def, data, options(stamp)),
    ...(firstOnSubject ? { firstOnSubject } : {}),
  };
}

/** A command intent; throws the contract's error for data that breaks its schema. */
export function commandIntent<S extends z.ZodType>(
  def: CommandDefinition<string, string, S>,
  data: z.input<S>,
  stamp: Stamp,
): Intent {
  return { kind: 'command', message: createCommand(def, data, options(stamp)) };
}

/** JSON with sorted keys: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}
