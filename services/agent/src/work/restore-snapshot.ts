import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { posix } from 'node:path';
import { RestoreCompleted, RestoreFailed, RestoreStarted, type RestoreSnapshot } from '@volback/contracts';
import { DataPathClient, GatewayBlobStore } from '@volback/data-path';
import type { RepositoryError } from '@volback/repository';
import {
  dumpTree,
  applyNodeMetadata,
  loadBlobsFrom,
  resolveTreePath,
  restoreTree,
  RepositoryErrorCode,
  type BlobSource,
} from '@volback/repository';
import type { z } from 'zod';
import { CONSISTENCY_DEFAULTS, CONSISTENCY_LABELS, stopPlan } from '../domain/consistency.ts';
import { METADATA_PATHS, type RecordedVolume } from './snapshot-layout.ts';
import { WorkError, WorkErrorCode, workErrorOf } from './work-error.ts';
import type { WorkContext } from './work-context.ts';

/** A validated `RestoreSnapshot` command. */
export type RestoreSnapshotCommand = z.output<typeof RestoreSnapshot.schema>;

/** Labels a restored volume carries, recording where it came from. */
export const RESTORED_LABELS = {
  snapshot: 'io.volback.restored-from-snapshot',
  volume: 'io.volback.restored-from-volume',
  restoreId: 'io.volback.restore-id',
} as const;

/** The stop timeout a container's label asks for, when it is a valid one. */
function labelledStopTimeout(labels: Readonly<Record<string, string>>): number {
  const raw = labels[CONSISTENCY_LABELS.stopTimeout]?.trim();
  const seconds = raw && /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  return seconds >= 1 && seconds <= 86_400 ? seconds : CONSISTENCY_DEFAULTS.stopTimeoutSeconds;
}

/** Counts what a restore reads, for its completion event. */
function counting(source: BlobSource): BlobSource & { files: number; bytes: number } {
  const counter = {
    files: 0,
    bytes: 0,
    async loadBlob(type: 'data' | 'tree', id: string) {
      const blob = await source.loadBlob(type, id);
      if (type === 'data') counter.bytes += blob.length;
      return blob;
    },
    async loadTree(id: string) {
      const nodes = await source.loadTree(id);
      counter.files += nodes.filter((n) => n.type === 'file').length;
      return nodes;
    },
    // A file's blobs in batches when the source can (a gateway answers many per round trip).
    async *loadBlobs(type: 'data' | 'tree', ids: readonly string[]) {
      for await (const blob of loadBlobsFrom(source, type, ids)) {
        if (type === 'data') counter.bytes += blob.length;
        yield blob;
      }
    },
  };
  return counter;
}

async function readRecordedVolume(store: BlobSource, rootTree: string): Promise<Partial<RecordedVolume>> {
  try {
    const { node } = await resolveTreePath(store, rootTree, METADATA_PATHS.volume);
    const parts = await Promise.all((node?.content ?? []).map((id) => store.loadBlob('data', id)));
    const value = JSON.parse(Buffer.concat(parts).toString('utf8')) as Partial<RecordedVolume>;
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {}; // a snapshot restic wrote, or an older layout: restore the data with defaults
  }
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(
    Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/**
 * Restores a snapshot (or a path in it) into a new volume, or into an existing one that no
 * running container uses (or whose containers it may stop, and starts again after). Writes
 * straight into the volume's directory when the agent can, else through the Engine's archive
 * API. Nothing is written outside the volume. A new volume is removed again when the restore
 * fails; RestoreStarted, then RestoreCompleted or RestoreFailed.
 */
export async function runRestore(ctx: WorkContext, command: RestoreSnapshotCommand): Promise<void> {
  const started = ctx.clock();
  const key = { restoreId: command.restoreId, hostId: command.hostId, snapshotId: command.snapshotId };
  const log = ctx.logger.child({ restoreId: command.restoreId, snapshotId: command.snapshotId });
  const progress = ctx.progress(command.restoreId, 'restore');
  let createdVolume: string | undefined;
  let resume: (() => Promise<unknown>) | undefined;
  try {
    const target = command.target;
    if (target.kind === 'tar') {
      throw new WorkError(
        WorkErrorCode.TargetUnsupported,
        'agents restore into volumes; a tar download is streamed from the gateways by the catalog',
      );
    }
    const client = new DataPathClient(ctx.nc, {
      repositoryId: command.repositoryId,
      sessionId: command.restoreId,
      ...ctx.dataPath,
    });
    const found = await client.findSnapshot(command.snapshotId);
    if (!found.snapshotId || !found.tree) {
      throw new WorkError(
        WorkErrorCode.SnapshotNotFound,
        `snapshot ${command.snapshotId} is not in the repository`,
      );
    }
    const rootTree = found.tree;
    const store = await GatewayBlobStore.open(client);
    const volumePath = found.paths.find((p) => p.startsWith('/volumes/')) ?? '/';
    const innerPath = posix.join(volumePath, posix.normalize(`/${command.path ?? ''}`));
    const located = await resolveTreePath(store, rootTree, innerPath).catch((error: unknown) => {
      if ((error as RepositoryError).code === RepositoryErrorCode.FileNotFound) {
        throw new WorkError(
          WorkErrorCode.SnapshotNotFound,
          `${innerPath} is not in snapshot ${found.snapshotId}`,
        );
      }
      throw error;
    });

    const recorded = await readRecordedVolume(store, rootTree);
    if (target.kind === 'new-volume') {
      if (await ctx.volumes.volumeExists(target.volumeName)) {
        throw new WorkError(WorkErrorCode.VolumeExists, `volume ${target.volumeName} already exists`);
      }
      await ctx.volumes.createVolume({
        name: target.volumeName,
        driver: typeof recorded.driver === 'string' ? recorded.driver : 'local',
        driverOptions: stringRecord(recorded.driverOptions),
        labels: {
          ...stringRecord(recorded.labels),
          [RESTORED_LABELS.snapshot]: found.snapshotId,
          ...(typeof recorded.name === 'string' ? { [RESTORED_LABELS.volume]: recorded.name } : {}),
          [RESTORED_LABELS.restoreId]: command.restoreId,
        },
      });
      createdVolume = target.volumeName;
    } else {
      const users = await ctx.volumes.containersUsing(target.volumeName);
      const running = users.filter(
        (c) => c.state === 'running' || c.state === 'paused' || c.state === 'restarting',
      );
      if (running.length && !target.stopContainers) {
        throw new WorkError(
          WorkErrorCode.VolumeInUse,
          `volume ${target.volumeName} is used by running containers (${running.map((c) => c.name).join(', ')}); ` +
            'restore with stopContainers to stop them for the restore',
        );
      }
      if (running.length) {
        // Each container gets the stop timeout its `volback.stop.timeout` label asks for.
        const plan = stopPlan(
          running.map((c) => ({ id: c.id, name: c.name, timeoutSeconds: labelledStopTimeout(c.labels) })),
        );
        const quiesced = await ctx.quiescer.quiesce(command.restoreId, plan);
        resume = () => quiesced.resume();
      }
    }
    const volume = await ctx.volumes.inspectVolume(target.volumeName);

    await ctx.publish(
      RestoreStarted,
      { ...key, target, startedAt: started.toISOString() },
      `${command.restoreId}.started.${ctx.deliveryCount}`,
    );
    const source = counting(store);
    const directPath = await ctx.volumes.directPath(volume);
    const writable =
      directPath &&
      (await access(directPath, constants.W_OK).then(
        () => true,
        () => false,
      ));
    if (writable) {
      const summary = await restoreTree(source, {
        tree: rootTree,
        path: innerPath,
        target: directPath,
        onProgress: (p) => progress.update({ files: p.files, bytes: p.bytes }),
      });
      if (summary.errors.length) {
        throw new WorkError(
          WorkErrorCode.RestoreIncomplete,
          `${summary.errors.length} entries could not be restored, e.g. ` +
            summary.errors
              .slice(0, 5)
              .map((e) => `${e.path.slice(directPath.length) || '/'}: ${e.reason}`)
              .join('; '),
        );
      }
      if (located.node?.type === 'dir') await applyNodeMetadata(located.node, directPath);
    } else {
      const archive = await dumpTree(source, rootTree, innerPath, { rootEntry: true });
      await ctx.volumes.importArchive(target.volumeName, archive, ctx.signal);
    }
    await resume?.();
    resume = undefined;
    await ctx.publish(
      RestoreCompleted,
      {
        ...key,
        target,
        files: source.files,
        bytes: source.bytes,
        durationMs: ctx.clock().getTime() - started.getTime(),
        completedAt: ctx.clock().toISOString(),
      },
      `${command.restoreId}.outcome`,
    );
    log.info({ files: source.files, bytes: source.bytes, volume: target.volumeName }, 'restore completed');
  } catch (error) {
    const failure = workErrorOf(error);
    log.error({ code: failure.code, err: failure.message }, 'restore failed');
    if (createdVolume) {
      await ctx.volumes
        .removeVolume(createdVolume)
        .catch((removeError: Error) =>
          log.error(
            { err: removeError.message, volume: createdVolume },
            'could not remove the volume the failed restore created',
          ),
        );
    }
    await ctx.publish(
      RestoreFailed,
      {
        ...key,
        code: failure.code,
        reason:
          `${failure.message}${createdVolume ? ` (volume ${createdVolume} was removed again)` : ''}`.slice(
            0,
            2000,
          ),
        failedAt: ctx.clock().toISOString(),
      },
      `${command.restoreId}.outcome`,
    );
  } finally {
    await resume?.();
    progress.end();
  }
}
