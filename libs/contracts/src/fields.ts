import { z } from 'zod';
import { isReservedHostId, SERVICE_COMMAND_TARGETS } from './streams.ts';

/** Printable ASCII without spaces: ids we generate or receive from Docker. */
const idPattern = /^[\x21-\x7e]+$/;

/**
 * Id of a policy a user names (`PUT /v1/policies/<id>`): a letter or digit, then letters, digits
 * and `_ . : @ -`, at most 200. It stands in URL paths, file names and (encoded) subjects, so `.`,
 * `..`, `*`, `>`, `/` and spaces are refused; the scheduler's label policies
 * (`labels:<hostId>:<volumeName>`) fit it too. Removal still takes any id, so a policy stored
 * before this rule can be removed.
 */
export const policyId = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/,
    'a letter or digit, then letters, digits, _ . : @ - (no .., *, >, / or spaces)',
  );

/**
 * A Docker host as volback knows it: stable across agent restarts. `gateway` and `scheduler` are
 * refused: before subjects v2 an agent's commands (`volback.cmd.<hostId>.…`) would have landed in
 * that service's queue, and the names stay reserved so no subject or log reads ambiguously.
 */
export const hostId = z
  .string()
  .min(1)
  .max(128)
  .regex(idPattern, 'printable ASCII without spaces')
  .refine((id) => !isReservedHostId(id), `reserved for a service (${SERVICE_COMMAND_TARGETS.join(', ')})`);
/** Docker's rule for volume names (anonymous volumes have 64 hex digits, which also match). */
export const volumeName = z
  .string()
  .max(255)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/, 'a Docker volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+');
/** A full Docker container id. */
export const containerId = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits');
/** A container name as Docker shows it, without the leading slash. */
export const containerName = z
  .string()
  .max(255)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a Docker container name');
/** A restic snapshot id (SHA-256 of the snapshot file, hex). */
export const snapshotId = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits');
/** Id of a unit of work (backup, restore, maintenance run) or a policy; may be derived from names. */
export const workId = z.string().min(1).max(200).regex(idPattern, 'printable ASCII without spaces');
/** Name of a configured repository (`default` unless several are configured). */
export const repositoryId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _, at most 63');
/** An RFC 3339 time with offset. */
export const timestamp = z.iso.datetime({ offset: true });
/** A byte or item count. */
export const count = z.number().int().nonnegative();
/** A duration in milliseconds. */
export const durationMs = z.number().int().nonnegative();
/** Docker labels. */
export const labels = z.record(z.string().max(1000), z.string().max(10_000));
/** Why something failed or was refused, for an operator to read. */
export const reason = z.string().min(1).max(4000);
/** A path inside a volume or snapshot, `/`-separated, relative to its root. */
export const innerPath = z.string().max(4096);

/** An error code from a service's code table, e.g. `VOLBACK_HOOK_FAILED`. */
export const errorCode = z.string().regex(/^[A-Z][A-Z0-9_]{2,63}$/);

/** What started a backup. */
export const backupTrigger = z.enum([
  'schedule',
  'catch-up',
  'volume-discovered',
  'container-stopped',
  'manual',
  'retry',
]);

/** How the containers using a volume are kept consistent during its backup. */
export const consistency = z.discriminatedUnion('mode', [
  /** Back up while containers run (crash-consistent at best). */
  z.object({ mode: z.literal('none') }),
  /** Stop the containers for the backup, start them again after, on every path. */
  z.object({ mode: z.literal('stop'), timeoutSeconds: z.number().int().positive().max(86_400).default(30) }),
  /** Pause (freeze) the containers for the backup, unpause after, on every path. */
  z.object({ mode: z.literal('pause') }),
  /** Run exec hooks in a container before and after (a database dump, a flush). */
  z.object({
    mode: z.literal('hooks'),
    container: containerName,
    pre: z.array(z.string().min(1)).max(64).optional(),
    post: z.array(z.string().min(1)).max(64).optional(),
    timeoutSeconds: z.number().int().positive().max(86_400).default(300),
  }),
]);

/** A restic duration such as `1y2m3d4h`. */
const resticDuration = /^(?:\d+y)?(?:\d+m)?(?:\d+d)?(?:\d+h)?$/;

/** restic's forget policy: which snapshots to keep. At least one rule must keep a snapshot. */
export const retention = z
  .object({
    keepLast: count.optional(),
    keepHourly: count.optional(),
    keepDaily: count.optional(),
    keepWeekly: count.optional(),
    keepMonthly: count.optional(),
    keepYearly: count.optional(),
    /** A restic duration such as `1y2m3d4h`. */
    keepWithin: z.string().regex(resticDuration).min(2).optional(),
    keepTags: z.array(z.string().min(1)).optional(),
  })
  // `keepLast: 0`, `keepWithin: '0d'` or `keepTags: []` keep nothing: forget would delete every snapshot.
  .refine(
    (r) =>
      [r.keepLast, r.keepHourly, r.keepDaily, r.keepWeekly, r.keepMonthly, r.keepYearly].some(
        (n) => (n ?? 0) > 0,
      ) ||
      /[1-9]/.test(r.keepWithin ?? '') ||
      (r.keepTags?.length ?? 0) > 0,
    'a retention policy must keep something',
  );

/** A cron schedule with its time zone. */
export const schedule = z.object({
  /** 5 or 6 fields (seconds first when 6), as croner reads it. */
  cron: z
    .string()
    .min(9)
    .max(200)
    .regex(/^\S+(\s+\S+){4,5}$/, 'a cron expression of 5 or 6 fields'),
  timezone: z.string().min(1).max(64).default('UTC'),
});
