import {
  BackupSetCompleted,
  BackupSetFailed,
  BackupSetPartiallyFailed,
  BackupSetStarted,
  memberBackupId,
  setSnapshotTags,
  type BackupSet,
} from '@volback/contracts';
import type { z } from 'zod';
import { setConsistencyPlan, setMembers } from '../domain/backup-set.ts';
import { runBackup } from './backup-volume.ts';
import { WorkError, WorkErrorCode, workErrorOf } from './work-error.ts';
import type { WorkContext } from './work-context.ts';

/** A validated `BackupSet` command. */
export type BackupSetCommand = z.output<typeof BackupSet.schema>;

/**
 * Backs up every volume of a set at one point in time: finds the set's containers and volumes on
 * the engine, quiesces the containers once (each as its labels say, dependents first, databases
 * last; started again in reverse), backs each volume up as a backup of its own (its snapshot
 * tagged `volback-set:<backupId>` and `set:<setId>`), resumes on every path, then publishes one
 * outcome: `BackupSetCompleted`, `BackupSetPartiallyFailed` naming the members without a
 * snapshot, or `BackupSetFailed` when none was made.
 */
export async function runBackupSet(ctx: WorkContext, command: BackupSetCommand): Promise<void> {
  const started = ctx.clock();
  const key = { backupId: command.backupId, hostId: command.hostId, setId: command.setId };
  const log = ctx.logger.child({ backupId: command.backupId, setId: command.setId });
  let quiescedContainers: string[] = [];
  try {
    const found = await ctx.applications.inventory();
    const members = setMembers(command.setId, found.containers, found.volumes);
    if (members.volumes.length === 0) {
      throw new WorkError(
        WorkErrorCode.SetNotFound,
        `no container or volume on this host belongs to set ${command.setId} (labels volback.group or com.docker.compose.project)`,
      );
    }
    const plan = setConsistencyPlan(members.containers, {
      volumeName: members.volumes.join(', '),
      allowed: ctx.security.hookContainers,
    });
    for (const warning of plan.warnings) log.warn(warning);
    // Recorded as they run, before the set stops or pauses them.
    const usersBefore = new Map(
      await Promise.all(members.volumes.map(async (v) => [v, await ctx.volumes.containersUsing(v)] as const)),
    );
    const quiesced = await ctx.quiescer.quiesce(command.backupId, plan);
    quiescedContainers = quiesced.quiesced;
    const done: { volumeName: string; backupId: string; snapshotId: string }[] = [];
    const failed: { volumeName: string; backupId: string; code: string; reason: string }[] = [];
    try {
      await ctx.publish(
        BackupSetStarted,
        { ...key, volumes: [...members.volumes], quiescedContainers, startedAt: started.toISOString() },
        `${command.backupId}.started.${ctx.deliveryCount}`,
      );
      for (const volumeName of members.volumes) {
        const backupId = memberBackupId(command.backupId, volumeName);
        const outcome = await runBackup(
          ctx,
          {
            backupId,
            hostId: command.hostId,
            volumeName,
            trigger: command.trigger,
            attempt: 1,
            repositoryId: command.repositoryId,
            consistency: { mode: 'none' },
            excludes: [],
            tags: [
              ...setSnapshotTags({ setId: command.setId, setBackupId: command.backupId }),
              ...command.tags,
            ],
            method: 'auto',
          },
          { quiescedBySet: { usersBefore: usersBefore.get(volumeName) ?? [] } },
        );
        if (outcome.ok) done.push({ volumeName, backupId, snapshotId: outcome.snapshotId });
        else failed.push({ volumeName, backupId, code: outcome.code, reason: outcome.reason });
      }
    } finally {
      const report = await quiesced.resume();
      if (report.errors.length) log.error({ errors: report.errors }, 'some containers could not be resumed');
    }
    const common = {
      ...key,
      repositoryId: command.repositoryId,
      quiescedContainers,
      durationMs: ctx.clock().getTime() - started.getTime(),
      completedAt: ctx.clock().toISOString(),
    };
    if (failed.length === 0) {
      await ctx.publish(BackupSetCompleted, { ...common, members: done }, `${command.backupId}.outcome`);
      log.info(`backup of set ${command.setId} completed: ${done.length} volumes`);
    } else if (done.length > 0) {
      await ctx.publish(
        BackupSetPartiallyFailed,
        { ...common, members: done, failed },
        `${command.backupId}.outcome`,
      );
      log.warn(
        { failed: failed.map((f) => f.volumeName) },
        `backup of set ${command.setId} partially failed`,
      );
    } else {
      throw new WorkError(
        failed[0]!.code,
        `no volume of the set was backed up: ${failed.map((f) => `${f.volumeName}: ${f.reason}`).join('; ')}`.slice(
          0,
          2000,
        ),
      );
    }
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    const failure = workErrorOf(error);
    log.error({ code: failure.code, err: failure.message }, 'backup of the set failed');
    await ctx.publish(
      BackupSetFailed,
      {
        ...key,
        code: failure.code,
        reason: failure.message.slice(0, 2000),
        failedAt: ctx.clock().toISOString(),
      },
      `${command.backupId}.outcome`,
    );
  }
}
