import { z } from 'zod';
import { defineCommand } from '../define.ts';
import { hostId, repositoryId, retention, volumeName, workId } from '../fields.ts';

export const ForgetSnapshots = defineCommand({
  name: 'ForgetSnapshots',
  commandName: 'forget-snapshots',
  description: 'Apply a retention policy to the snapshots of one volume (restic forget semantics).',
  schema: z.object({
    operationId: workId,
    repositoryId: repositoryId.default('default'),
    hostId,
    volumeName,
    retention,
    dryRun: z.boolean().default(false),
  }),
  target: () => ({ kind: 'gateway' }),
});

export const PruneRepository = defineCommand({
  name: 'PruneRepository',
  commandName: 'prune-repository',
  description: 'Remove unreferenced data and repack partly used packs, under an exclusive lock.',
  schema: z.object({
    operationId: workId,
    repositoryId: repositoryId.default('default'),
    /** Largest share of unused space to tolerate in packs instead of repacking them (restic --max-unused). */
    maxUnusedFraction: z.number().min(0).max(1).default(0.05),
  }),
  target: () => ({ kind: 'gateway' }),
});

export const CheckRepository = defineCommand({
  name: 'CheckRepository',
  commandName: 'check-repository',
  description: 'Verify the repository structure and, optionally, read back a share of its data.',
  schema: z.object({
    operationId: workId,
    repositoryId: repositoryId.default('default'),
    /** 0: structure only; 1: read all data (restic check --read-data). */
    readDataFraction: z.number().min(0).max(1).default(0),
  }),
  target: () => ({ kind: 'gateway' }),
});

export const ImportSnapshots = defineCommand({
  name: 'ImportSnapshots',
  commandName: 'import-snapshots',
  description:
    'Re-import the repository\u2019s volback snapshots that the event log does not know (after the log was lost).',
  schema: z.object({
    operationId: workId,
    repositoryId: repositoryId.default('default'),
  }),
  target: () => ({ kind: 'gateway' }),
});
