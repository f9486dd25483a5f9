import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  BackupCompleted,
  BackupFailed,
  BackupPartiallyFailed,
  BackupStarted,
  backupFailureIsRetried,
  type BackupVolume,
  hostIdTag,
  snapshotTags,
  volumeSnapshotPath,
} from '@volback/contracts';
import { DataPathClient, DataPathError, GatewayBlobStore } from '@volback/data-path';
import {
  resolveTreePath,
  snapshotDirectory,
  snapshotTar,
  type BackupProgress,
  type WalkSummary,
  type TreeNode,
} from '@volback/repository';
import { formatBytes, formatDuration } from '@volback/observability';
import type { z } from 'zod';
import { resolveConsistency, type ConsistencyPlan } from '../domain/consistency.ts';
import type { VolumeUser } from '../adapters/volume-access.ts';
import { recordedContainer } from '../domain/container-record.ts';
import { planDumps } from '../domain/database-dump.ts';
import type { TakenDump } from '../adapters/database-dump.ts';
import { dumpFiles, dumpRecords, takeDumps, volumeFilesLeftOut } from './database-dumps.ts';
import { interruptible, WorkInterruptedError } from './interruption.ts';
import { saveVolumeSnapshotTree } from './snapshot-layout.ts';
import { WorkError, WorkErrorCode, workErrorOf } from './work-error.ts';
import type { WorkContext } from './work-context.ts';

/** A validated `BackupVolume` command. */
export type BackupVolumeCommand = z.output<typeof BackupVolume.schema>;

/** Largest number of unreadable files listed in a `BackupPartiallyFailed` event. */
const MAX_LISTED_UNREADABLE = 1000;
/** How often a commit is retried after flushing again, before the volume is read again. */
const COMMIT_ATTEMPTS = 3;
/** Longest wait, when interrupted, for the gateways to make what they received durable. */
const CHECKPOINT_TIMEOUT_MS = 5_000;
/** The plan of a member of a set backup: the set quiesced its containers. */
const NOTHING_TO_QUIESCE: ConsistencyPlan = { mode: 'none', source: 'command', steps: [], warnings: [] };

/** How a backup ended, for a set backup that runs it as one of its members. */
export type BackupOutcome =
  | { readonly ok: true; readonly snapshotId: string }
  | { readonly ok: false; readonly code: string; readonly reason: string };

/** Options of {@link runBackup}. */
export interface BackupRunOptions {
  /**
   * The containers were quiesced already, for the whole set: do nothing to them here, and record
   * them as they were before (`containers.json` keeps their running state, not the quiesced one).
   */
  readonly quiescedBySet?: { readonly usersBefore: readonly VolumeUser[] };
}

/**
 * Runs one backup of a volume on this host: picks the reading method, quiesces the containers
 * that use the volume (always resumed: success, failure, timeout), reads and chunks the data,
 * sends the chunks the repository lacks to the gateways, and commits the snapshot. Publishes
 * started, then exactly one of completed / partially failed / failed; when the agent stops
 * mid-walk (`ctx.signal`), none of them: it throws {@link WorkInterruptedError} so the command is
 * handed back and runs again at the next start.
 */
export async function runBackup(
  ctx: WorkContext,
  command: BackupVolumeCommand,
  options: BackupRunOptions = {},
): Promise<BackupOutcome> {
  const started = ctx.clock();
  const key = { backupId: command.backupId, hostId: command.hostId, volumeName: command.volumeName };
  const log = ctx.logger.child({ backupId: command.backupId, volumeName: command.volumeName });
  const progress = ctx.progress(command.backupId, 'backup');
  /** Makes what was sent so far durable on the gateways (before an interrupted run hands back). */
  let checkpoint: (() => Promise<void>) | undefined;
  try {
    const volume = await ctx.volumes.inspectVolume(command.volumeName);
    const containers = options.quiescedBySet
      ? options.quiescedBySet.usersBefore
      : await ctx.volumes.containersUsing(command.volumeName);
    const plan = options.quiescedBySet
      ? NOTHING_TO_QUIESCE
      : resolveConsistency(command.consistency, containers, {
          volumeName: command.volumeName,
          allowed: ctx.security.hookContainers,
        });
    const dumpPlan = planDumps(containers, command.volumeName);
    for (const warning of dumpPlan.warnings) log.warn(warning);
    const directPath = command.method === 'archive' ? undefined : await ctx.volumes.directPath(volume);
    if (command.method === 'direct' && !directPath) {
      throw new WorkError(
        WorkErrorCode.DirectReadUnavailable,
        `the agent cannot read ${volume.mountpoint ?? 'the volume'} directly; use method auto or archive`,
      );
    }
    const method = directPath ? 'direct' : 'archive';

    const client = new DataPathClient(ctx.nc, {
      requester: { kind: 'host', hostId: ctx.hostId },
      repositoryId: command.repositoryId,
      sessionId: command.backupId,
      ...ctx.dataPath,
    });
    const path = volumeSnapshotPath(command.volumeName);
    const hostName = await ctx.hostName();
    const parent = command.parentSnapshotId
      ? await client.findSnapshot(command.parentSnapshotId)
      : await latestOfVolume(client, command.hostId, path);
    const parentSnapshotId = parent.snapshotId ?? undefined;

    let committed:
      { snapshotId: string; summary: WalkSummary; bytesStored: number; dumps: TakenDump[] } | undefined;
    for (let pass = 1; !committed; pass++) {
      const store = await GatewayBlobStore.open(client);
      const sink = interruptible(store, ctx.signal, command.backupId);
      checkpoint = async () => {
        await store.drain();
        await client.flush();
      };
      let parentTree: string | undefined;
      if (parent.tree && method === 'direct') {
        parentTree = await resolveTreePath(store, parent.tree, path).then(
          (found) => found.tree || undefined,
          () => undefined,
        );
      }
      const dumps = await takeDumps(ctx, dumpPlan, sink, progress);
      const dumped = dumps.reduce((sum, d) => sum + d.sizeBytes, 0);
      progress.update({ phase: 'quiescing' });
      const quiesced = await ctx.quiescer.quiesce(command.backupId, plan);
      let walked: { root: TreeNode; summary: WalkSummary };
      try {
        if (pass === 1) {
          await ctx.publish(
            BackupStarted,
            {
              ...key,
              method,
              ...(parentSnapshotId ? { parentSnapshotId } : {}),
              quiescedContainers: quiesced.quiesced,
              startedAt: started.toISOString(),
            },
            `${command.backupId}.started.${ctx.deliveryCount}`,
          );
        }
        const onProgress = (p: BackupProgress) =>
          progress.update({
            phase: 'reading',
            files: p.files,
            dirs: p.dirs,
            bytes: dumped + p.bytesRead,
            bytesAdded: p.bytesAdded,
          });
        const onError = (file: string, error: Error) =>
          log.warn({ path: file, err: error.message }, 'unreadable entry; the backup goes on without it');
        const onWarning = (file: string, error: Error) =>
          log.warn({ path: file, err: error.message }, 'entry backed up without part of its metadata');
        if (dumpPlan.skipVolumeFiles) {
          walked = await volumeFilesLeftOut(sink, started);
        } else if (directPath) {
          walked = await snapshotDirectory(sink, {
            source: directPath,
            // One cache per volume; its entries prove nothing beyond the parent's nodes.
            ...(ctx.chunkCacheRoot
              ? {
                  chunkCacheDir: join(
                    ctx.chunkCacheRoot,
                    createHash('sha256').update(command.volumeName).digest('hex').slice(0, 32),
                  ),
                }
              : {}),
            ...(parentTree ? { parentTree } : {}),
            excludes: command.excludes,
            onProgress,
            onError,
            onWarning,
          });
        } else {
          const archive = await ctx.volumes.exportArchive(command.volumeName, ctx.signal);
          try {
            walked = await snapshotTar(sink, archive.stream, {
              excludes: command.excludes,
              onProgress,
              onError,
              onWarning,
            });
          } finally {
            await archive.close();
          }
        }
      } finally {
        const report = await quiesced.resume();
        if (report.errors.length)
          log.error({ errors: report.errors }, 'some containers could not be resumed');
      }

      progress.update({ phase: 'committing' });
      const recorded = containers.map((c) => {
        const { record, warning } = recordedContainer(c.inspect, ctx.security.containersJsonEnv);
        if (warning) log.warn({ container: c.name }, warning);
        return record;
      });
      const tree = await saveVolumeSnapshotTree(store, {
        volumeRoot: walked.root,
        volume: {
          name: volume.name,
          driver: volume.driver,
          driverOptions: { ...volume.driverOptions },
          labels: { ...volume.labels },
        },
        containers: recorded,
        dumps: dumpFiles(dumps),
        now: started,
      });
      await store.drain();
      const { snapshotId, bytesStored } = await commit(client, {
        tree,
        paths: [path],
        hostname: hostName,
        time: started.toISOString(),
        ...(parentSnapshotId ? { parent: parentSnapshotId } : {}),
        tags: snapshotTags({
          hostId: command.hostId,
          hostName,
          volumeName: command.volumeName,
          extra: command.tags,
        }),
      });
      if (snapshotId) committed = { snapshotId, summary: walked.summary, bytesStored, dumps };
      else if (pass >= 2) {
        throw new WorkError(
          WorkErrorCode.CommitFailed,
          'the gateways kept reporting chunks of this backup as missing after it was sent twice',
        );
      } else log.warn('chunks were lost by a gateway before they were written; reading the volume again');
    }

    const { summary, snapshotId } = committed;
    const stats = {
      filesNew: summary.filesNew,
      filesChanged: summary.filesChanged,
      filesUnmodified: summary.filesUnmodified,
      dirsNew: summary.dirsNew,
      dirsChanged: summary.dirsChanged,
      dirsUnmodified: summary.dirsUnmodified,
      bytesRead: summary.bytesRead,
      totalBytes: summary.totalBytes,
      bytesAdded: summary.bytesAdded,
      bytesStored: committed.bytesStored,
      durationMs: ctx.clock().getTime() - started.getTime(),
    };
    const completedAt = ctx.clock().toISOString();
    const dumps = committed.dumps.length ? { dumps: dumpRecords(committed.dumps) } : {};
    if (summary.errors.length) {
      await ctx.publish(
        BackupPartiallyFailed,
        {
          ...key,
          snapshotId,
          repositoryId: command.repositoryId,
          stats,
          unreadable: summary.errors.slice(0, MAX_LISTED_UNREADABLE).map((e) => ({
            path: e.path.slice(0, 4096),
            reason: e.reason.slice(0, 2000),
          })),
          unreadableCount: summary.errors.length,
          ...dumps,
          completedAt,
        },
        `${command.backupId}.outcome`,
      );
    } else {
      await ctx.publish(
        BackupCompleted,
        { ...key, snapshotId, repositoryId: command.repositoryId, stats, ...dumps, completedAt },
        `${command.backupId}.outcome`,
      );
    }
    log.debug({ snapshotId, ...stats, unreadable: summary.errors.length }, 'backup statistics');
    const files = summary.filesNew + summary.filesChanged + summary.filesUnmodified;
    log.info(
      `backup of ${command.volumeName} ${summary.errors.length ? `partially failed (${summary.errors.length} unreadable)` : 'completed'}: ` +
        `snapshot ${snapshotId.slice(0, 8)}, ${files} files, ${formatBytes(summary.totalBytes)} ` +
        `(${formatBytes(summary.bytesAdded)} new), ${formatDuration(stats.durationMs)}` +
        (committed.dumps.length
          ? `, dumps: ${committed.dumps.map((d) => `${d.spec.fileName} ${formatBytes(d.sizeBytes)}`).join(', ')}`
          : ''),
    );
    return { ok: true, snapshotId };
  } catch (error) {
    if (ctx.signal.aborted) {
      // Stopping is not failing: the command is handed back and runs again at the next start.
      await Promise.race([
        checkpoint?.().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, CHECKPOINT_TIMEOUT_MS).unref()),
      ]);
      log.info(
        { cause: (error as Error).message },
        'backup interrupted by shutdown; it runs again when the agent is back',
      );
      throw error instanceof WorkInterruptedError ? error : new WorkInterruptedError(command.backupId);
    }
    const failure = workErrorOf(error);
    log.error({ code: failure.code, err: failure.message }, 'backup failed');
    await ctx.publish(
      BackupFailed,
      {
        ...key,
        code: failure.code,
        reason: failure.message.slice(0, 2000),
        attempt: command.attempt,
        willRetry: backupFailureIsRetried({
          attempt: command.attempt,
          maxAttempts: command.maxAttempts,
          code: failure.code,
        }),
        failedAt: ctx.clock().toISOString(),
      },
      `${command.backupId}.outcome`,
    );
    return { ok: false, code: failure.code, reason: failure.message.slice(0, 2000) };
  } finally {
    progress.end();
  }
}

/**
 * The newest snapshot of this host's volume: by its `host-id:` tag, else one written before those
 * tags, whose `hostname` is the host id.
 */
export async function latestOfVolume(
  client: DataPathClient,
  hostId: string,
  path: string,
): Promise<Awaited<ReturnType<DataPathClient['findSnapshot']>>> {
  const tagged = await client.findSnapshot('latest', { tags: [hostIdTag(hostId)], path });
  return tagged.snapshotId ? tagged : client.findSnapshot('latest', { hostname: hostId, path });
}

/**
 * Flushes every gateway's open packs and commits. A gateway slow to answer the flush is given
 * more chances; no `snapshotId` when chunks stay missing (a gateway died holding them), so the
 * caller sends them again. `bytesStored`: what the session's new blobs take in packs, as the
 * gateways last reported it (each counts what went through it).
 */
async function commit(
  client: DataPathClient,
  snapshot: Parameters<DataPathClient['commitSnapshot']>[0],
): Promise<{ snapshotId?: string; bytesStored: number }> {
  const stored = new Map<string, number>();
  const bytesStored = () => [...stored.values()].reduce((sum, bytes) => sum + bytes, 0);
  for (let attempt = 1; attempt <= COMMIT_ATTEMPTS; attempt++) {
    for (const reply of await client.flush()) {
      if (reply.bytesStored !== undefined) stored.set(reply.gatewayId, reply.bytesStored);
    }
    try {
      return { snapshotId: await client.commitSnapshot(snapshot), bytesStored: bytesStored() };
    } catch (error) {
      if (!(error instanceof DataPathError && error.missing?.length)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
  return { bytesStored: bytesStored() };
}
