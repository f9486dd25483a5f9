import type {
  CheckRepository,
  ForgetSnapshots,
  PruneRepository,
  RepositoryChecked,
  RepositoryMaintenanceFailed,
  RepositoryPruned,
  SnapshotsForgotten,
} from '@volback/contracts';
import { volumeSnapshotPath } from '@volback/contracts';
import type {
  CheckReport,
  ForgetDecision,
  ForgetPolicy,
  PruneSummary,
  Snapshot,
  SnapshotFilter,
} from '@volback/repository';
import type { z } from 'zod';
import { snapshotHostId } from './snapshot-selection.ts';

/** A parsed `ForgetSnapshots` command. */
export type ForgetCommand = z.output<typeof ForgetSnapshots.schema>;
/** A parsed `PruneRepository` command. */
export type PruneCommand = z.output<typeof PruneRepository.schema>;
/** A parsed `CheckRepository` command. */
export type CheckCommand = z.output<typeof CheckRepository.schema>;

/** Codes of `RepositoryMaintenanceFailed`. */
export const MaintenanceFailureCode = {
  /** Another holder's lock stops the operation (prune while backups run): the scheduler retries later. */
  Locked: 'REPOSITORY_LOCKED',
  /** The repository's storage did not answer or refused a request. */
  Unavailable: 'REPOSITORY_UNAVAILABLE',
  /** The command names a repository no gateway of this group serves. */
  UnknownRepository: 'UNKNOWN_REPOSITORY',
  /** The retention policy cannot be applied (an unreadable duration). */
  InvalidPolicy: 'INVALID_POLICY',
  /** The repository holds something the operation cannot read (damaged files): run check. */
  RepositoryDamaged: 'REPOSITORY_DAMAGED',
  /** Anything else; the gateway's log has the details. */
  Failed: 'MAINTENANCE_FAILED',
} as const;
/** One of {@link MaintenanceFailureCode}. */
export type MaintenanceFailureCode = (typeof MaintenanceFailureCode)[keyof typeof MaintenanceFailureCode];

/** Most check errors one event carries (the contract's limit). */
const MAX_CHECK_ERRORS = 1000;

/** restic's forget policy for a command's retention (`keepTags` entries are `a,b` tag lists, as in restic). */
export function forgetPolicy(retention: ForgetCommand['retention']): ForgetPolicy {
  return {
    ...(retention.keepLast !== undefined ? { keepLast: retention.keepLast } : {}),
    ...(retention.keepHourly !== undefined ? { keepHourly: retention.keepHourly } : {}),
    ...(retention.keepDaily !== undefined ? { keepDaily: retention.keepDaily } : {}),
    ...(retention.keepWeekly !== undefined ? { keepWeekly: retention.keepWeekly } : {}),
    ...(retention.keepMonthly !== undefined ? { keepMonthly: retention.keepMonthly } : {}),
    ...(retention.keepYearly !== undefined ? { keepYearly: retention.keepYearly } : {}),
    ...(retention.keepWithin !== undefined ? { keepWithin: retention.keepWithin } : {}),
    ...(retention.keepTags?.length ? { keepTags: retention.keepTags.map((t) => t.split(',')) } : {}),
  };
}

/**
 * The snapshots a forget command is about: one volume (restic `--path`) of one host, which agents
 * tag `host-id:<hostId>` (their `hostname` is the host's name, which may change); snapshots
 * written before those tags have the host id as `hostname`. All of them are one group, so a
 * renamed host keeps one retention.
 */
export function forgetSelection(command: ForgetCommand): {
  filter: SnapshotFilter;
  select: (snapshot: Snapshot) => boolean;
  groupBy: (snapshot: Snapshot) => string;
} {
  return {
    filter: { paths: [volumeSnapshotPath(command.volumeName)] },
    // By the host-id tag alone when there is one: a host cannot push another's snapshots out of
    // their retention by naming itself after it.
    select: (s) => snapshotHostId(s) === command.hostId,
    groupBy: () => 'volume',
  };
}

/**
 * `SnapshotsForgotten` for a forget's decisions. A dry run forgets nothing: `forgotten` is empty
 * and `kept` lists only what the policy keeps (the event has no field for "would forget").
 */
export function snapshotsForgotten(
  command: ForgetCommand,
  decisions: readonly ForgetDecision[],
  now: Date,
): z.input<typeof SnapshotsForgotten.schema> {
  return {
    operationId: command.operationId,
    repositoryId: command.repositoryId,
    hostId: command.hostId,
    volumeName: command.volumeName,
    retention: command.retention,
    forgotten: command.dryRun ? [] : decisions.filter((d) => !d.keep).map((d) => d.id),
    kept: decisions.filter((d) => d.keep).map((d) => d.id),
    forgottenAt: now.toISOString(),
  };
}

/**
 * `RepositoryPruned` for a prune's summary. `packsDeleted` counts every pack file removed: unused
 * ones and those no index named (left by interrupted backups).
 */
export function repositoryPruned(
  command: PruneCommand,
  summary: PruneSummary,
  now: Date,
): z.input<typeof RepositoryPruned.schema> {
  return {
    operationId: command.operationId,
    repositoryId: command.repositoryId,
    packsDeleted: summary.packsDeleted + summary.orphanedPacksDeleted,
    packsRepacked: summary.packsRepacked,
    blobsRemoved: summary.blobsRemoved,
    bytesFreed: summary.bytesFreed,
    durationMs: Math.max(0, Math.round(summary.durationMs)),
    prunedAt: now.toISOString(),
  };
}

/** `RepositoryChecked` for a check's report (at most 1000 errors, each cut to 4000 characters). */
export function repositoryChecked(
  command: CheckCommand,
  report: CheckReport,
  durationMs: number,
  now: Date,
): z.input<typeof RepositoryChecked.schema> {
  return {
    operationId: command.operationId,
    repositoryId: command.repositoryId,
    ok: report.ok,
    readDataFraction: command.readDataFraction,
    packsChecked: report.packs,
    errors: report.errors.slice(0, MAX_CHECK_ERRORS).map((e) => e.slice(0, 4000)),
    damagedBlobs: report.damagedBlobs.filter((id) => /^[0-9a-f]{64}$/.test(id)),
    damagedSnapshots: report.damagedSnapshots,
    durationMs: Math.max(0, Math.round(durationMs)),
    checkedAt: now.toISOString(),
  };
}

/** `RepositoryMaintenanceFailed`: the operation did not run or stopped; `reason` is for an operator. */
export function maintenanceFailed(
  command: { operationId: string; repositoryId: string },
  operation: 'forget' | 'prune' | 'check',
  code: MaintenanceFailureCode,
  reason: string,
  now: Date,
): z.input<typeof RepositoryMaintenanceFailed.schema> {
  return {
    operationId: command.operationId,
    repositoryId: command.repositoryId,
    operation,
    code,
    reason: reason.slice(0, 4000) || code,
    failedAt: now.toISOString(),
  };
}
