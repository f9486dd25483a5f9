import { z } from 'zod';
import { consistency, hostId, repositoryId, retention, schedule, volumeName } from './fields.ts';

/** What a policy applies to. Precedence, most specific first: volume, then default. */
export const policyScope = z.discriminatedUnion('kind', [
  /** Every volume without a more specific policy (when the default mode protects everything). */
  z.object({ kind: z.literal('default') }),
  /** One volume on one host. */
  z.object({ kind: z.literal('volume'), hostId, volumeName }),
]);

/**
 * A scheduled restore drill (`volback.drill.*` labels, or a policy's `drill`): the agent restores
 * the volume's latest snapshot into a scratch volume, checks every file against the snapshot,
 * optionally starts the recorded containers on it and runs `health` in them, then removes it all.
 */
export const drillSpec = z.object({
  schedule,
  /** Start the containers the snapshot recorded on the scratch volume (implied by `health`). */
  containers: z.boolean().default(false),
  /** Run with `sh -c` in each started container; exit 0 passes. Without it, a container must be running (and healthy, if its image has a HEALTHCHECK). */
  health: z.string().min(1).max(2000).optional(),
  /** Longest wait for the containers to be healthy and for `health` to exit. */
  healthTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
});
/** A validated {@link drillSpec}. */
export type DrillSpec = z.output<typeof drillSpec>;

/** How one volume (or every volume, for the default) is protected. */
export const policySpec = z.object({
  enabled: z.boolean().default(true),
  schedule,
  retention,
  /** restic-style exclude patterns, relative to the volume root. */
  excludes: z.array(z.string().min(1).max(4096)).max(1000).default([]),
  consistency: consistency.default({ mode: 'none' }),
  repositoryId: repositoryId.default('default'),
  /** The longest acceptable age of the last successful backup; the default is twice the schedule's period. */
  rpoSeconds: z.number().int().positive().optional(),
  /** A restore drill on its own schedule; none when absent. */
  drill: drillSpec.optional(),
});
/** A validated policy. */
export type PolicySpec = z.output<typeof policySpec>;

/**
 * Which volumes the default policies (configured and API) protect, as the scheduler is configured:
 * every volume (`all`) or only those with labels or an API policy of their own (`labelled`);
 * anonymous volumes only when `includeAnonymous`.
 */
export const policyCoverage = z.object({
  mode: z.enum(['all', 'labelled']),
  includeAnonymous: z.boolean(),
});
/** See {@link policyCoverage}. */
export type PolicyCoverage = z.output<typeof policyCoverage>;
