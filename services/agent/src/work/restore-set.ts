import {
  RestoreSetCompleted,
  RestoreSetFailed,
  type recreatedContainer,
  type RestoreSet,
} from '@volback/contracts';
import { DataPathClient, GatewayBlobStore } from '@volback/data-path';
import type { z } from 'zod';
import { stopOrder } from '../domain/backup-set.ts';
import {
  distinctRecorded,
  isBuiltInNetworkMode,
  recreationPlan,
  type RecordedInspect,
  type RecreationPlan,
} from '../domain/container-recreation.ts';
import { runRestore } from './restore-snapshot.ts';
import { METADATA_PATHS, readMetadataJson } from './snapshot-layout.ts';
import { WorkError, WorkErrorCode, workErrorOf } from './work-error.ts';
import type { WorkContext } from './work-context.ts';

/** A validated `RestoreSet` command. */
export type RestoreSetCommand = z.output<typeof RestoreSet.schema>;

type Member = RestoreSetCommand['members'][number];
type RecreatedContainer = z.input<typeof recreatedContainer>;

/** The containers a member snapshot recorded (`/.volback/containers.json`); none for a snapshot restic wrote. */
async function recordedContainers(
  ctx: WorkContext,
  command: RestoreSetCommand,
  member: Member,
): Promise<RecordedInspect[]> {
  const client = new DataPathClient(ctx.nc, {
    requester: { kind: 'host', hostId: ctx.hostId },
    grant: member.restoreId,
    repositoryId: command.repositoryId,
    sessionId: `${member.restoreId}.containers`,
    ...ctx.dataPath,
  });
  try {
    const found = await client.findSnapshot(member.snapshotId);
    if (!found.tree) return [];
    const store = await GatewayBlobStore.open(client);
    const value = await readMetadataJson(store, found.tree, METADATA_PATHS.containers);
    return Array.isArray(value) ? (value as RecordedInspect[]) : [];
  } finally {
    await client.flush().catch(() => undefined);
  }
}

/** What the engine says about a plan: the event's view of it, and whether it can be created. */
async function checkPlan(
  ctx: WorkContext,
  plan: RecreationPlan,
): Promise<{ view: RecreatedContainer; present: Set<string>; creatable: boolean }> {
  const engine = ctx.applications;
  const warnings = [...plan.warnings];
  const imagePresent = await engine.imageExists(plan.image);
  if (!imagePresent) {
    warnings.push(
      `image ${plan.image} is not on this host's engine: pull or load it (docker pull ${plan.image}), then restore again`,
    );
  }
  const present = new Set<string>();
  for (const network of plan.networks) {
    if (await engine.networkExists(network)) present.add(network);
    else if (network === plan.networks[0]) {
      warnings.push(`network ${network} does not exist on this engine: created with network mode none`);
    } else warnings.push(`network ${network} does not exist on this engine: not joined`);
  }
  const taken = await engine.containerExists(plan.name);
  if (taken) {
    warnings.push(
      `a container named ${plan.name} exists already: remove it, or restore with a container suffix`,
    );
  }
  const creatable = imagePresent && !taken;
  return {
    view: {
      name: plan.name,
      originalName: plan.originalName,
      image: plan.image,
      imagePresent,
      mounts: [...plan.mounts],
      networks: plan.networks.map((n) => (present.has(n) || isBuiltInNetworkMode(n) ? n : `${n} (missing)`)),
      ports: [...plan.ports],
      restartPolicy: plan.restartPolicy,
      envCount: plan.envCount,
      warnings: warnings.map((w) => w.slice(0, 2000)),
      outcome: creatable ? 'would-create' : 'failed',
    },
    present,
    creatable,
  };
}

/**
 * Restores every member of a set backup into its target (each a restore of its own, with its own
 * events), then, with `recreateContainers`, creates the set's containers again from what the
 * snapshots recorded: mounts pointed at the restored volumes, networks joined where they exist,
 * and the containers that were running started, databases first (the reverse of the set's stop
 * order). A container whose image is not on the engine, or whose name is taken, is not created
 * and is named in the outcome. With `dryRun` nothing is written or created, and
 * `RestoreSetCompleted` lists what would be.
 */
export async function runRestoreSet(ctx: WorkContext, command: RestoreSetCommand): Promise<void> {
  const started = ctx.clock();
  const key = {
    restoreId: command.restoreId,
    hostId: command.hostId,
    setId: command.setId,
    setBackupId: command.setBackupId,
  };
  const log = ctx.logger.child({ restoreId: command.restoreId, setId: command.setId });
  const restored: Member[] = [];
  let containers: RecreatedContainer[] = [];
  let failedVolume: string | undefined;
  try {
    for (const member of command.members) {
      const outcome = await runRestore(ctx, {
        restoreId: member.restoreId,
        hostId: command.hostId,
        snapshotId: member.snapshotId,
        repositoryId: command.repositoryId,
        target: member.target,
        dryRun: command.dryRun,
        preserveSpecialModes: false,
      });
      if (!outcome.ok) {
        failedVolume = member.volumeName;
        throw new WorkError(
          WorkErrorCode.SetMemberFailed,
          `volume ${member.volumeName} (snapshot ${member.snapshotId.slice(0, 8)}) was not restored: ${outcome.reason}`,
        );
      }
      restored.push(member);
    }

    if (command.recreateContainers) {
      const volumeMap = new Map(command.members.map((m) => [m.volumeName, m.target.volumeName] as const));
      const recorded = distinctRecorded(
        await Promise.all(command.members.map((m) => recordedContainers(ctx, command, m))),
      );
      const plans = recorded.map((c) =>
        recreationPlan(c, { volumeMap, suffix: command.containerSuffix, restoreId: command.restoreId }),
      );
      // Start order: databases first, the reverse of the order a set backup stops them in.
      const ordered = stopOrder(plans.map((plan) => ({ name: plan.originalName, labels: plan.labels, plan })))
        .reverse()
        .map((c) => c.plan);
      const checked = [];
      for (const plan of ordered) checked.push({ plan, ...(await checkPlan(ctx, plan)) });
      containers = checked.map((c) => c.view);
      if (!command.dryRun) {
        const ids = new Map<string, string>();
        for (const c of checked) {
          if (!c.creatable) continue;
          try {
            ids.set(c.plan.name, await ctx.applications.create(c.plan, c.present));
            c.view.outcome = 'created';
          } catch (error) {
            c.view.outcome = 'failed';
            c.view.warnings.push(`not created: ${workErrorOf(error).message}`.slice(0, 2000));
          }
        }
        for (const c of checked) {
          const id = ids.get(c.plan.name);
          if (!id || !c.plan.wasRunning || !command.startContainers) continue;
          try {
            await ctx.applications.start(id);
            c.view.outcome = 'started';
          } catch (error) {
            c.view.warnings.push(`created but not started: ${workErrorOf(error).message}`.slice(0, 2000));
          }
        }
        const failed = containers.filter((c) => c.outcome === 'failed');
        if (failed.length) {
          throw new WorkError(
            WorkErrorCode.ContainerNotRecreated,
            `the volumes were restored, but ${failed.length} of ${containers.length} containers were not created: ` +
              failed.map((c) => `${c.name}: ${c.warnings.at(-1) ?? 'failed'}`).join('; '),
          );
        }
      }
    }
    await ctx.publish(
      RestoreSetCompleted,
      {
        ...key,
        dryRun: command.dryRun,
        members: restored,
        containers,
        durationMs: ctx.clock().getTime() - started.getTime(),
        completedAt: ctx.clock().toISOString(),
      },
      `${command.restoreId}.outcome`,
    );
    log.info(
      { volumes: restored.length, containers: containers.map((c) => `${c.name}: ${c.outcome}`) },
      command.dryRun ? 'restore of the set planned (dry run)' : 'restore of the set completed',
    );
  } catch (error) {
    const failure = workErrorOf(error);
    log.error({ code: failure.code, err: failure.message }, 'restore of the set failed');
    await ctx.publish(
      RestoreSetFailed,
      {
        ...key,
        code: failure.code,
        reason: failure.message.slice(0, 2000),
        ...(failedVolume ? { failedVolume } : {}),
        members: restored,
        containers,
        failedAt: ctx.clock().toISOString(),
      },
      `${command.restoreId}.outcome`,
    );
  }
}
