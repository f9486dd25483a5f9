import { z } from 'zod';
import { defineEvent } from '../define.ts';
import { hostId, reason, timestamp, volumeName, workId } from '../fields.ts';
import { policyCoverage, policyScope, policySpec } from '../policy.ts';

export const PolicyDefined = defineEvent({
  name: 'PolicyDefined',
  aggregate: 'policy',
  what: 'defined',
  description:
    "A backup policy was defined or replaced, from the API, from labels, or from the scheduler's configuration (its default).",
  schema: z.object({
    policyId: workId,
    scope: policyScope,
    /** `api` policies win over `labels` policies for the same scope; `configuration` is the scheduler's default. */
    origin: z.enum(['api', 'labels', 'configuration']),
    policy: policySpec,
    /** For the `configuration` default: which volumes the default policies protect. */
    coverage: policyCoverage.optional(),
    definedBy: z.string().max(200).optional(),
    definedAt: timestamp,
  }),
  aggregateId: (d) => [d.policyId],
});

export const PolicyRemoved = defineEvent({
  name: 'PolicyRemoved',
  aggregate: 'policy',
  what: 'removed',
  description: 'A policy was removed; its volumes fall back to the next policy by precedence.',
  schema: z.object({ policyId: workId, removedBy: z.string().max(200).optional(), removedAt: timestamp }),
  aggregateId: (d) => [d.policyId],
});

export const PolicyRejected = defineEvent({
  name: 'PolicyRejected',
  aggregate: 'policy',
  what: 'rejected',
  description: 'A label or API policy was invalid; the volume keeps its last valid policy.',
  schema: z.object({
    policyId: workId,
    hostId: hostId.optional(),
    volumeName: volumeName.optional(),
    /** The offending label, when the policy came from labels. */
    label: z.string().max(1000).optional(),
    value: z.string().max(10_000).optional(),
    reason,
    /** Every problem found, each with the field at fault (`reason` joins them); absent on older events. */
    issues: z
      .array(z.object({ field: z.string().min(1).max(200), message: z.string().min(1).max(2000) }))
      .max(100)
      .optional(),
    rejectedAt: timestamp,
  }),
  aggregateId: (d) => [d.policyId],
});
