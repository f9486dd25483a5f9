import { z } from 'zod';

/** CloudEvents 1.0 attributes every volback event and command carries (JSON format). */
export const envelopeSchema = z.object({
  specversion: z.literal('1.0'),
  /** Unique per message; also the `Nats-Msg-Id`, so a retried publish is stored once. */
  id: z.string().min(1).max(200),
  /** Who emitted it, e.g. `volback://agent/<hostId>`. */
  source: z.string().min(1).max(500),
  /** `io.volback.<aggregate>.<what>.v<version>` for events, `io.volback.cmd.<name>.v<version>` for commands. */
  type: z.string().regex(/^io\.volback\.[a-z]+\.[a-z][a-z0-9-]*\.v[1-9][0-9]*$/),
  time: z.iso.datetime({ offset: true }),
  /** The aggregate instance (`<hostId>/<volumeName>`, `<hostId>/<backupId>`, a policy id, …) or the command's target. */
  subject: z.string().min(1).max(1000),
  datacontenttype: z.literal('application/json'),
  /** Id of the message that caused this one (a command's id in its outcome events). */
  causationid: z.string().min(1).max(200).optional(),
  /** Id shared by every message of one piece of work (a backup's id across its command and events). */
  correlationid: z.string().min(1).max(200).optional(),
  data: z.unknown(),
});

/** A CloudEvents 1.0 envelope with typed data. */
export type Envelope<Type extends string = string, Data = unknown> = Omit<
  z.infer<typeof envelopeSchema>,
  'type' | 'data'
> & { type: Type; data: Data };

/** The `type` attribute of an event: `io.volback.<aggregate>.<what>.v<version>`. */
export function eventTypeName(aggregate: string, what: string, version = 1): string {
  return `io.volback.${aggregate}.${what}.v${version}`;
}

/** The `type` attribute of a command: `io.volback.cmd.<name>.v<version>`. */
export function commandTypeName(name: string, version = 1): string {
  return `io.volback.cmd.${name}.v${version}`;
}
