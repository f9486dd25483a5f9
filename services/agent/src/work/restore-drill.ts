import { createHash } from 'node:crypto';
import {
  RestoreDrillFailed,
  RestoreDrillPassed,
  volumeSnapshotPath,
  type drillStage,
  type RestoreDrill,
} from '@volback/contracts';
import { DataPathClient, GatewayBlobStore } from '@volback/data-path';
import { resolveTreePath } from '@volback/repository';
import type { z } from 'zod';
import { DRILL_LABEL } from '../domain/inventory.ts';
import { HookFailedError } from '../errors.ts';
import { recreationPlan, type RecordedInspect, type RecreationPlan } from '../domain/container-recreation.ts';
import { latestOfVolume } from './backup-volume.ts';
import { SnapshotVerifier, type VerifyReport } from './drill-verify.ts';
import { runRestore } from './restore-snapshot.ts';
import { METADATA_PATHS, readMetadataJson } from './snapshot-layout.ts';
import { WorkError, WorkErrorCode, workErrorOf } from './work-error.ts';
import type { WorkContext } from './work-context.ts';

/** A validated `RestoreDrill` command. */
export type RestoreDrillCommand = z.output<typeof RestoreDrill.schema>;

type Stage = z.output<typeof drillStage>;

/** Codes of a drill's own failures (the restore's and the engine's pass through as they are). */
export const DrillErrorCode = {
  /** A restored entry differs from the snapshot. */
  Mismatch: 'VOLBACK_DRILL_MISMATCH',
  /** Containers were asked for, but the snapshot records none that mounts the volume. */
  NoContainers: 'VOLBACK_DRILL_NO_CONTAINERS',
  /** A recorded container's image is not on this engine. */
  ImageMissing: 'VOLBACK_DRILL_IMAGE_MISSING',
  /** A container stopped, reported unhealthy, or the health command failed. */
  Unhealthy: 'VOLBACK_DRILL_UNHEALTHY',
} as const;

/** Labels on a drill's scratch volume and containers: no backup of them, and whose they are. */
export const DRILL_LABELS = {
  drillId: DRILL_LABEL,
  /** The policy label that keeps the scheduler from backing the scratch volume up. */
  enabled: 'volback.enabled',
} as const;

/** The scratch volume of a drill: one name per drill id, never a user's. */
export function scratchVolumeName(drillId: string): string {
  return `volback-drill-${createHash('sha256').update(drillId).digest('hex').slice(0, 12)}`;
}

/** A step that failed, with the stage the drill reports. */
class DrillStepError extends WorkError {
  readonly stage: Stage;
  constructor(stage: Stage, code: string, message: string) {
    super(code, message);
    this.stage = stage;
  }
}

/**
 * A recorded container as a drill runs it: mounts of the drilled volume on the scratch volume and
 * no other mount (a drill never touches another volume or a bind mount), no published ports, no
 * network, no restart policy, labelled with the drill.
 */
function drillPlan(recorded: RecordedInspect, command: RestoreDrillCommand, scratch: string): RecreationPlan {
  const plan = recreationPlan(recorded, {
    volumeMap: new Map([[command.volumeName, scratch]]),
    suffix: `-${scratch}`,
    restoreId: command.drillId,
  });
  const mounts = plan.create.HostConfig.Mounts.filter((m) => m.Type === 'volume' && m.Source === scratch);
  return {
    ...plan,
    networks: ['none'],
    ports: [],
    restartPolicy: 'no',
    create: {
      ...plan.create,
      Labels: { ...plan.create.Labels, [DRILL_LABELS.drillId]: command.drillId },
      HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'no' }, Mounts: mounts },
    },
  };
}

/**
 * Runs a restore drill: finds the volume's latest snapshot of this host (its own snapshots need
 * no grant), restores it into a scratch volume with the agent's restore engine, compares every
 * entry with the snapshot ({@link SnapshotVerifier}), and when asked creates the recorded
 * containers on the scratch volume, starts them, waits for them to run (and be healthy) and runs
 * the health command in each. The scratch volume and the containers are removed on every path
 * before the outcome is published: `RestoreDrillPassed` with the timings (`rtoMs`: restore +
 * verify + health), or `RestoreDrillFailed` with the stage that failed. The restore itself
 * publishes no restore events: the drill's outcome is its record.
 */
export async function runRestoreDrill(ctx: WorkContext, command: RestoreDrillCommand): Promise<void> {
  const started = ctx.clock();
  const key = { drillId: command.drillId, hostId: command.hostId, volumeName: command.volumeName };
  const log = ctx.logger.child({ drillId: command.drillId, volume: command.volumeName });
  const scratch = scratchVolumeName(command.drillId);
  const containers: { id: string; name: string }[] = [];
  let scratchMade = false;
  let stage: Stage = 'snapshot';
  let snapshotId: string | undefined;
  const client = new DataPathClient(ctx.nc, {
    requester: { kind: 'host', hostId: ctx.hostId },
    repositoryId: command.repositoryId,
    sessionId: `${command.drillId}.verify`,
    ...ctx.dataPath,
  });

  /** Removes what the drill made; names what it could not remove. */
  const cleanUp = async (): Promise<string[]> => {
    const left: string[] = [];
    for (const c of containers.splice(0)) {
      await ctx.applications.remove(c.id).catch((error: Error) => {
        log.error({ err: error.message, container: c.name }, 'could not remove a drill container');
        left.push(`container ${c.name}`);
      });
    }
    if (scratchMade || (await ctx.volumes.volumeExists(scratch).catch(() => false))) {
      await ctx.volumes.removeVolume(scratch).then(
        () => (scratchMade = false),
        (error: Error) => {
          log.error({ err: error.message, volume: scratch }, 'could not remove the drill volume');
          left.push(`volume ${scratch}`);
        },
      );
    }
    return left;
  };

  try {
    const found = command.snapshotId
      ? await client.findSnapshot(command.snapshotId)
      : await latestOfVolume(client, command.hostId, volumeSnapshotPath(command.volumeName));
    if (!found.snapshotId || !found.tree) {
      throw new DrillStepError(
        'snapshot',
        WorkErrorCode.SnapshotNotFound,
        command.snapshotId
          ? `snapshot ${command.snapshotId} is not in repository ${command.repositoryId}`
          : `volume ${command.volumeName} has no snapshot of this host in repository ${command.repositoryId}: back it up first`,
      );
    }
    snapshotId = found.snapshotId;
    const rootTree = found.tree;

    stage = 'restore';
    const restoreStart = Date.now();
    // A run of this drill cut short by a crash left its scratch volume (and containers): gone first.
    if (await ctx.volumes.volumeExists(scratch)) {
      for (const user of await ctx.volumes.containersUsing(scratch)) await ctx.applications.remove(user.id);
      await ctx.volumes.removeVolume(scratch);
    }
    scratchMade = true;
    const restored = await runRestore(
      // The drill's outcome is the record: its restore publishes no restore events.
      { ...ctx, publish: async () => undefined },
      {
        restoreId: `${command.drillId}.restore`,
        hostId: command.hostId,
        snapshotId,
        repositoryId: command.repositoryId,
        target: { kind: 'new-volume', volumeName: scratch },
        dryRun: false,
        preserveSpecialModes: false,
      },
      { labels: { [DRILL_LABELS.drillId]: command.drillId, [DRILL_LABELS.enabled]: 'false' } },
    );
    if (!restored.ok) throw new DrillStepError('restore', restored.code, restored.reason);
    const restoreMs = Date.now() - restoreStart;

    stage = 'verify';
    const verifyStart = Date.now();
    const store = await GatewayBlobStore.open(client);
    const volumeRoot = found.paths.find((p) => p.startsWith('/volumes/')) ?? '/';
    const volumeTree = (await resolveTreePath(store, rootTree, volumeRoot)).tree;
    const verifier = await SnapshotVerifier.load(store, volumeTree, store.chunkerPolynomial);
    const directPath = await ctx.volumes.directPath(await ctx.volumes.inspectVolume(scratch));
    let report: VerifyReport;
    if (directPath) report = await verifier.compareDirectory(directPath);
    else {
      const archive = await ctx.volumes.exportArchive(scratch, ctx.signal);
      try {
        report = await verifier.compareArchive(archive.stream);
      } finally {
        await archive.close();
      }
    }
    const verifyMs = Date.now() - verifyStart;
    if (report.mismatchCount > 0) {
      const first = report.mismatches[0]!;
      const error = new DrillStepError(
        'verify',
        DrillErrorCode.Mismatch,
        `${report.mismatchCount} entries differ from snapshot ${snapshotId.slice(0, 8)}, e.g. ${first.path}: ${first.problem}`,
      );
      throw Object.assign(error, { report });
    }

    const healthStart = Date.now();
    if (command.containers || command.health) {
      stage = 'containers';
      const value = await readMetadataJson(store, rootTree, METADATA_PATHS.containers);
      const recorded = (Array.isArray(value) ? (value as RecordedInspect[]) : []).filter((c) =>
        (c.Mounts ?? []).some((m) => m.Type === 'volume' && m.Name === command.volumeName),
      );
      if (recorded.length === 0) {
        throw new DrillStepError(
          'containers',
          DrillErrorCode.NoContainers,
          `snapshot ${snapshotId.slice(0, 8)} records no container that mounts ${command.volumeName}: nothing to start for the health check`,
        );
      }
      for (const plan of recorded.map((c) => drillPlan(c, command, scratch))) {
        if (!(await ctx.applications.imageExists(plan.image))) {
          throw new DrillStepError(
            'containers',
            DrillErrorCode.ImageMissing,
            `image ${plan.image} of container ${plan.originalName} is not on this host's engine (docker pull ${plan.image})`,
          );
        }
        const id = await ctx.applications.create(plan, new Set(['none']));
        containers.push({ id, name: plan.name });
        await ctx.applications.start(id);
      }
      stage = 'health';
      const deadline = healthStart + command.healthTimeoutSeconds * 1000;
      for (const c of containers) {
        const why = await ctx.applications.waitHealthy(c.id, Math.max(1000, deadline - Date.now()));
        if (why) throw new DrillStepError('health', DrillErrorCode.Unhealthy, `container ${c.name} ${why}`);
        if (!command.health) continue;
        const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        await ctx.applications.check(c.id, c.name, command.health, seconds).catch((error: unknown) => {
          const message =
            error instanceof HookFailedError
              ? error.message.replace(/^post hook/, 'health command')
              : workErrorOf(error).message;
          throw new DrillStepError('health', DrillErrorCode.Unhealthy, message);
        });
      }
    }
    const healthMs = containers.length ? Date.now() - healthStart : 0;
    const startedContainers = containers.map((c) => c.name);

    const leftBehind = await cleanUp();
    if (leftBehind.length) {
      log.warn({ leftBehind }, 'the drill passed, but not everything it made could be removed');
    }
    const rtoMs = restoreMs + verifyMs + healthMs;
    await ctx.publish(
      RestoreDrillPassed,
      {
        ...key,
        snapshotId,
        scratchVolume: scratch,
        files: report.files,
        dirs: report.dirs,
        symlinks: report.symlinks,
        bytes: report.bytes,
        containers: startedContainers,
        ...(command.health && startedContainers.length ? { health: command.health } : {}),
        restoreMs,
        verifyMs,
        healthMs,
        rtoMs,
        startedAt: started.toISOString(),
        completedAt: ctx.clock().toISOString(),
      },
      'outcome',
    );
    log.info({ snapshotId, files: report.files, rtoMs }, 'restore drill passed');
  } catch (error) {
    const failure = workErrorOf(error);
    const failedStage = error instanceof DrillStepError ? error.stage : stage;
    const report = (error as { report?: VerifyReport }).report;
    const leftBehind = await cleanUp();
    log.error({ code: failure.code, stage: failedStage, err: failure.message }, 'restore drill failed');
    await ctx.publish(
      RestoreDrillFailed,
      {
        ...key,
        ...(snapshotId ? { snapshotId } : {}),
        stage: failedStage,
        code: failure.code,
        reason: failure.message.slice(0, 4000),
        mismatches: report?.mismatches ?? [],
        mismatchCount: report?.mismatchCount ?? 0,
        durationMs: ctx.clock().getTime() - started.getTime(),
        leftBehind,
        failedAt: ctx.clock().toISOString(),
      },
      'outcome',
    );
  } finally {
    await client
      .flush()
      .catch((error: Error) => log.warn({ err: error.message }, 'could not end the drill session'));
  }
}
