import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { posix } from 'node:path';
import {
  hostIdTag,
  RestoreCompleted,
  RestoreFailed,
  RestoreStarted,
  type RestoreSnapshot,
  type restoreSkipped,
} from '@volback/contracts';
import { DataPathClient, GatewayBlobStore } from '@volback/data-path';
import {
  archiveProbe,
  directoryBelow,
  directoryProbe,
  dumpTree,
  applyNodeMetadata,
  loadBlobsFrom,
  planRestore,
  resolveTreePath,
  restoreTree,
  RepositoryError,
  RepositoryErrorCode,
  type BlobSource,
  type RestorePlan,
  type RestorePlanEntries,
  type TargetProbe,
} from '@volback/repository';
import type { z } from 'zod';
import { CONSISTENCY_DEFAULTS, CONSISTENCY_LABELS, stopPlan } from '../domain/consistency.ts';
import { SpecialEntryFilter, type FilteredEntries } from './special-entries.ts';
import { METADATA_PATHS, readMetadataJson, type RecordedVolume } from './snapshot-layout.ts';
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

/**
 * Counts what a restore reads, for its completion event. The trees in `ancestors` are read to
 * find a sub-path, not restored: their first read is not counted.
 */
function counting(
  source: BlobSource,
  ancestors: readonly string[] = [],
): BlobSource & { files: number; bytes: number } {
  const skip = new Set(ancestors);
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
      if (!skip.delete(id)) counter.files += nodes.filter((n) => n.type === 'file').length;
      return nodes;
    },
    // A file's blobs in batches when the source can (a gateway answers many per round trip).
    async *loadBlobs(type: 'data' | 'tree', ids: readonly string[], bytes?: number) {
      for await (const blob of loadBlobsFrom(source, type, ids, bytes)) {
        if (type === 'data') counter.bytes += blob.length;
        yield blob;
      }
    },
  };
  return counter;
}

async function readRecordedVolume(store: BlobSource, rootTree: string): Promise<Partial<RecordedVolume>> {
  const value = await readMetadataJson(store, rootTree, METADATA_PATHS.volume);
  // A snapshot restic wrote, or an older layout: restore the data with defaults.
  return typeof value === 'object' && value !== null ? (value as Partial<RecordedVolume>) : {};
}

/** Most characters of paths a plan lists in its event, over all three kinds. */
const PLAN_PATH_BUDGET = 256 * 1024;
/** Most characters of paths the skipped entries list in an event, over both kinds. */
const SKIPPED_PATH_BUDGET = 64 * 1024;
/** Most paths listed of each kind of skipped entry (the count says how many in all). */
const SKIPPED_PATHS_LISTED = 1000;

/** What a restore left out, as its completion event says it. */
type RestoreSkipped = z.input<typeof restoreSkipped>;

/**
 * What the filter left out, with paths in the target volume (below `targetPath`); undefined
 * when nothing was.
 */
function skippedReport(
  filtered: FilteredEntries,
  volumeRoot: string,
  targetPath: string,
): RestoreSkipped | undefined {
  if (filtered.devices.size === 0 && filtered.stripped.size === 0) return undefined;
  let budget = SKIPPED_PATH_BUDGET;
  const entries = (found: FilteredEntries['devices']) => {
    const paths: string[] = [];
    let bytes = 0;
    for (const [at, node] of found) {
      bytes += node.type === 'file' ? (node.size ?? 0) : 0;
      const path = posix.join(targetPath, posix.relative(volumeRoot, at));
      if (paths.length >= SKIPPED_PATHS_LISTED || path.length > budget) continue;
      budget -= path.length;
      paths.push(path);
    }
    return { count: found.size, bytes, paths };
  };
  return { devices: entries(filtered.devices), specialModes: entries(filtered.stripped) };
}

/**
 * The plan with paths in the volume (below `targetPath`), the directories of `targetPath` the
 * restore would create first among those written, lists cut to fit an event.
 */
function volumePlan(plan: RestorePlan, targetPath: string, createdDirs: readonly string[] = []): RestorePlan {
  let budget = PLAN_PATH_BUDGET;
  const entries = (list: RestorePlanEntries, first: readonly string[] = []): RestorePlanEntries => {
    const paths: string[] = [];
    for (const path of [...first, ...list.paths.map((p) => posix.join(targetPath, p))]) {
      if (path.length > budget) break;
      budget -= path.length;
      paths.push(path);
    }
    return { count: list.count + first.length, bytes: list.bytes, paths };
  };
  return {
    written: entries(plan.written, createdDirs),
    replaced: entries(plan.replaced),
    leftAlone: entries(plan.leftAlone),
  };
}

/**
 * The probe of `targetPath` from one of the whole volume, checked as a restore would: each of its
 * directories is a real directory (never a symlink), or missing; `missing` lists those a restore
 * would create (`/copy/`).
 */
async function probeBelow(
  volume: TargetProbe,
  targetPath: string,
): Promise<{ probe: TargetProbe; missing: string[] }> {
  const names = targetPath.split('/').filter(Boolean);
  for (let i = 0; i < names.length; i++) {
    const at = `/${names.slice(0, i + 1).join('/')}`;
    const kind = await volume.kind(at);
    if (kind === 'dir') continue;
    if (kind === 'other') {
      throw new RepositoryError(
        RepositoryErrorCode.UnsafePath,
        `${at} in the volume is not a directory (a symlink is never followed): refusing to restore through it`,
      );
    }
    return { probe: NOTHING_THERE, missing: directoriesOf(names.slice(0, i), names.slice(i)) };
  }
  return {
    probe: {
      kind: (path) => volume.kind(posix.join(targetPath, path)),
      list: (path) => volume.list(posix.join(targetPath, path)),
    },
    missing: [],
  };
}

/** `/a/b/`, `/a/b/c/` for `existing` [a] and `created` [b, c]: the directories a restore makes. */
function directoriesOf(existing: readonly string[], created: readonly string[]): string[] {
  return created.map((_, i) => `/${[...existing, ...created.slice(0, i + 1)].join('/')}/`);
}

/** The probe of a target directory that does not exist yet. */
const NOTHING_THERE: TargetProbe = { kind: async () => 'missing', list: async () => [] };

/** The ids of the trees read to reach `names` below `tree` (the tree of each parent). */
async function ancestorTrees(store: BlobSource, tree: string, names: readonly string[]): Promise<string[]> {
  const trees: string[] = [];
  for (const name of names.slice(0, -1)) {
    trees.push(tree);
    const node = (await store.loadTree(tree)).find((n) => n.name === name);
    if (node?.type !== 'dir' || !node.subtree) break;
    tree = node.subtree;
  }
  if (names.length > 0) trees.push(tree);
  return trees;
}

/** Publishes RestoreStarted and a RestoreCompleted that carries the plan of a dry run. */
async function completeDryRun(
  ctx: WorkContext,
  command: RestoreSnapshotCommand,
  key: { restoreId: string; hostId: string; snapshotId: string },
  started: Date,
  plan: RestorePlan,
  skipped: RestoreSkipped | undefined,
): Promise<void> {
  const { target } = command;
  await ctx.publish(
    RestoreStarted,
    { ...key, target, startedAt: started.toISOString() },
    `${command.restoreId}.started.${ctx.deliveryCount}`,
  );
  await ctx.publish(
    RestoreCompleted,
    {
      ...key,
      target,
      files: 0,
      bytes: 0,
      durationMs: ctx.clock().getTime() - started.getTime(),
      dryRun: true,
      plan,
      ...(skipped ? { skipped } : {}),
      completedAt: ctx.clock().toISOString(),
    },
    `${command.restoreId}.outcome`,
  );
  ctx.logger.info(
    {
      restoreId: command.restoreId,
      written: plan.written.count,
      replaced: plan.replaced.count,
      leftAlone: plan.leftAlone.count,
    },
    'restore planned (dry run)',
  );
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(
    Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/** How a restore ended, for a set restore that runs it as one of its members. */
export type RestoreOutcome =
  { readonly ok: true } | { readonly ok: false; readonly code: string; readonly reason: string };

/**
 * Restores a snapshot (or a path in it) into a new volume, or into an existing one that no
 * running container uses (or whose containers it may stop, and starts again after). A path
 * lands at its own place below `targetPath` (restic's `--include`). Writes straight into the
 * volume's directory when the agent can, else through the Engine's archive API. Nothing is
 * written outside the volume. A new volume is removed again when the restore fails.
 * With `dryRun` the same checks run, nothing is created, stopped or written, and the completed
 * event carries the plan. RestoreStarted, then RestoreCompleted or RestoreFailed.
 */
export async function runRestore(
  ctx: WorkContext,
  command: RestoreSnapshotCommand,
  /** Labels a new volume gets besides the recorded ones (a drill's scratch volume). */
  options: { readonly labels?: Readonly<Record<string, string>> } = {},
): Promise<RestoreOutcome> {
  const started = ctx.clock();
  const key = { restoreId: command.restoreId, hostId: command.hostId, snapshotId: command.snapshotId };
  const log = ctx.logger.child({ restoreId: command.restoreId, snapshotId: command.snapshotId });
  const progress = ctx.progress(command.restoreId, 'restore');
  let createdVolume: string | undefined;
  let resume: (() => Promise<unknown>) | undefined;
  let client: DataPathClient | undefined;
  try {
    const target = command.target;
    if (target.kind === 'tar') {
      throw new WorkError(
        WorkErrorCode.TargetUnsupported,
        'agents restore into volumes; a tar download is streamed from the gateways by the catalog',
      );
    }
    client = new DataPathClient(ctx.nc, {
      requester: { kind: 'host', hostId: ctx.hostId },
      // The catalog's grant for this restore lets the agent read a snapshot of another host.
      grant: command.restoreId,
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
    // The volume's directory in the snapshot (a snapshot restic wrote: its root).
    const volumeRoot = found.paths.find((p) => p.startsWith('/volumes/')) ?? '/';
    const selected = posix.normalize(`/${command.path ?? ''}`);
    const targetPath = posix.normalize(`/${command.targetPath ?? ''}`);
    const innerPath = posix.join(volumeRoot, selected);
    // A snapshot is trusted with setuid/setgid bits only when this host wrote it and they are asked for.
    const ownSnapshot = (found.tags ?? []).includes(hostIdTag(ctx.hostId));
    if (command.preserveSpecialModes && !ownSnapshot) {
      log.warn('setuid/setgid bits were asked for, but the snapshot is not of this host: they are stripped');
    }
    // Everything the restore reads goes through the filter: no device node, no unasked-for bits.
    const source = new SpecialEntryFilter(store, {
      rootTree,
      within: innerPath,
      keepSpecialModes: command.preserveSpecialModes && ownSnapshot,
    });
    const skipped = () => skippedReport(source.filtered, volumeRoot, targetPath);
    const located = await resolveTreePath(source, rootTree, innerPath).catch((error: unknown) => {
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
      if (command.dryRun) {
        const plan = await planRestore(source, {
          tree: rootTree,
          path: innerPath,
          root: volumeRoot,
          probe: NOTHING_THERE,
        });
        const created = directoriesOf([], targetPath.split('/').filter(Boolean));
        await completeDryRun(ctx, command, key, started, volumePlan(plan, targetPath, created), skipped());
        return { ok: true };
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
          ...options.labels,
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
      if (running.length && !command.dryRun) {
        // Each container gets the stop timeout its `volback.stop.timeout` label asks for.
        const plan = stopPlan(
          running.map((c) => ({ id: c.id, name: c.name, timeoutSeconds: labelledStopTimeout(c.labels) })),
        );
        const quiesced = await ctx.quiescer.quiesce(command.restoreId, plan);
        resume = () => quiesced.resume();
      }
    }
    const volume = await ctx.volumes.inspectVolume(target.volumeName);
    const directPath = await ctx.volumes.directPath(volume);

    if (command.dryRun) {
      let whole: TargetProbe;
      if (directPath) whole = directoryProbe(directPath);
      else {
        const archive = await ctx.volumes.exportArchive(target.volumeName, ctx.signal);
        try {
          whole = await archiveProbe(archive.stream);
        } finally {
          await archive.close();
        }
      }
      const { probe, missing } = await probeBelow(whole, targetPath);
      const plan = await planRestore(source, { tree: rootTree, path: innerPath, root: volumeRoot, probe });
      await completeDryRun(ctx, command, key, started, volumePlan(plan, targetPath, missing), skipped());
      return { ok: true };
    }

    await ctx.publish(
      RestoreStarted,
      { ...key, target, startedAt: started.toISOString() },
      `${command.restoreId}.started.${ctx.deliveryCount}`,
    );
    const writable =
      directPath &&
      (await access(directPath, constants.W_OK).then(
        () => true,
        () => false,
      ));
    let written: { files: number; bytes: number };
    if (writable) {
      const into = (await directoryBelow(directPath, targetPath, true))!;
      const summary = await restoreTree(source, {
        tree: rootTree,
        path: innerPath,
        root: volumeRoot,
        target: into,
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
      // The volume's own metadata only when the whole volume was restored.
      if (selected === '/' && located.node?.type === 'dir') await applyNodeMetadata(located.node, into);
      written = summary;
    } else {
      const volumeTree = (await resolveTreePath(source, rootTree, volumeRoot)).tree;
      const counted = counting(
        source,
        await ancestorTrees(source, volumeTree, selected.split('/').filter(Boolean)),
      );
      const archive = await dumpTree(counted, rootTree, innerPath, {
        rootEntry: true,
        root: volumeRoot,
        under: targetPath.split('/').filter(Boolean),
      });
      await ctx.volumes.importArchive(target.volumeName, archive, ctx.signal);
      written = counted;
    }
    await resume?.();
    resume = undefined;
    const left = skipped();
    await ctx.publish(
      RestoreCompleted,
      {
        ...key,
        target,
        files: written.files,
        bytes: written.bytes,
        durationMs: ctx.clock().getTime() - started.getTime(),
        ...(left ? { skipped: left } : {}),
        completedAt: ctx.clock().toISOString(),
      },
      `${command.restoreId}.outcome`,
    );
    log.info(
      {
        files: written.files,
        bytes: written.bytes,
        volume: target.volumeName,
        ...(left
          ? { devicesSkipped: left.devices.count, specialModesStripped: left.specialModes.count }
          : {}),
      },
      'restore completed',
    );
    return { ok: true };
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
    return { ok: false, code: failure.code, reason: failure.message.slice(0, 2000) };
  } finally {
    await resume?.();
    // Ends the session on every gateway that served it, so none keeps the repository locked.
    await client
      ?.flush()
      .catch((error: Error) =>
        log.warn({ err: error.message }, 'could not end the restore session; the gateways end it when idle'),
      );
    progress.end();
  }
}
