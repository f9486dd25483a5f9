import type { databaseDump } from '@volback/contracts';
import {
  emptyWalkSummary,
  formatGoTime,
  goModeFromPosix,
  saveTree,
  type BlobSink,
  type TreeNode,
  type WalkSummary,
} from '@volback/repository';
import type { z } from 'zod';
import type { TakenDump } from '../adapters/database-dump.ts';
import { DUMPS_DIR, type DumpPlan } from '../domain/database-dump.ts';
import type { StoredDumpFile } from './snapshot-layout.ts';
import type { ProgressReporter, WorkContext } from './work-context.ts';

/**
 * Takes a backup's dumps one after the other, each streamed into the sink, before anything is
 * stopped or paused (a dump needs its database running). The first failure fails the backup.
 */
export async function takeDumps(
  ctx: WorkContext,
  plan: DumpPlan,
  sink: BlobSink,
  progress: ProgressReporter,
): Promise<TakenDump[]> {
  const taken: TakenDump[] = [];
  for (const spec of plan.dumps) {
    const done = taken.reduce((sum, d) => sum + d.sizeBytes, 0);
    const dump = await ctx.dumper.take(spec, sink, {
      signal: ctx.signal,
      // Dumps are consistency work done before the files, as pre hooks are: `quiescing`. The
      // walk's bytes are counted on top of the dumps', so the count never goes back.
      onBytes: (bytes) =>
        progress.update({ phase: 'quiescing', bytes: done + bytes, bytesAdded: sink.bytesAdded }),
    });
    ctx.logger.info(
      { container: spec.container.name, preset: spec.preset, bytes: dump.sizeBytes, ms: dump.durationMs },
      `${spec.preset} dump of container ${spec.container.name} taken`,
    );
    taken.push(dump);
  }
  return taken;
}

/** The dumps as the snapshot layout places them. */
export function dumpFiles(taken: readonly TakenDump[]): StoredDumpFile[] {
  return taken.map((d) => ({
    fileName: d.spec.fileName,
    content: d.content,
    size: d.sizeBytes,
    time: d.startedAt,
  }));
}

/** The dumps as `BackupCompleted` records them. */
export function dumpRecords(taken: readonly TakenDump[]): z.input<typeof databaseDump>[] {
  return taken.map((d) => ({
    container: d.spec.container.name,
    preset: d.spec.preset,
    mode: d.spec.mode,
    path: `${DUMPS_DIR}/${d.spec.fileName}`,
    sizeBytes: d.sizeBytes,
    durationMs: d.durationMs,
  }));
}

/**
 * The volume's tree when a dump stands `instead` of its files: an empty directory, so the
 * snapshot keeps its path `/volumes/<name>` and restores give an empty volume.
 */
export async function volumeFilesLeftOut(
  sink: BlobSink,
  now: Date,
): Promise<{ root: TreeNode; summary: WalkSummary }> {
  const time = formatGoTime(BigInt(now.getTime()) * 1_000_000n);
  return {
    root: {
      name: '/',
      type: 'dir',
      mode: goModeFromPosix(0o040755),
      mtime: time,
      atime: time,
      ctime: time,
      uid: 0,
      gid: 0,
      content: null,
      subtree: await saveTree(sink, []),
    },
    summary: emptyWalkSummary(),
  };
}
