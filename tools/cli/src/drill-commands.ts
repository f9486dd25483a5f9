// Restore drills: `volback drill VOLUME` (run one now) and `volback drills VOLUME` (the history),
// over the catalog's /v1/hosts/{host}/volumes/{volume}/drills and /v1/drills/{id} routes.
import type { Command } from 'commander';
import type { paths } from './api-types.ts';
import { CatalogRequestError } from './catalog-client.ts';
import type { Runner } from './catalog-commands.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import { displayTime, enc, listLimit, listOptions, noteTruncated, resolveVolume } from './catalog-lookups.ts';
import { table } from './output.ts';
import { UsageError } from './usage-error.ts';

type Drill = paths['/v1/drills/{drillId}']['get']['responses'][200]['content']['application/json'];

/** Seconds with one decimal: `12.3 s`. */
const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** One line about a drill that ended. */
function drillLine(d: Drill): string {
  if (d.phase === 'Passed') {
    return `drill ${d.drillId} passed: RTO ${seconds(d.rtoMs)} (restore ${seconds(d.restoreMs)}, verify ${seconds(d.verifyMs)}, health ${seconds(d.healthMs)}); ${d.files ?? 0} files match snapshot ${String(d.snapshotId).slice(0, 8)}${d.containers.length ? `; healthy: ${d.containers.join(', ')}` : ''}`;
  }
  const lines = [
    `drill ${d.drillId} FAILED at ${d.stage ?? '?'}: ${d.error?.reason ?? ''} (${d.error?.code ?? ''})`,
    ...d.mismatches.slice(0, 10).map((m) => `  ${m.path}: ${m.problem}`),
  ];
  if (d.leftBehind.length) lines.push(`  not removed (remove by hand): ${d.leftBehind.join(', ')}`);
  return lines.join('\n');
}

/** Polls the drill until it ended, or `timeoutMs` passed (undefined). */
async function waitForDrill(
  ctx: CatalogContext,
  drillId: string,
  timeoutMs: number,
): Promise<Drill | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const drill = await ctx.client.get<Drill>(`/v1/drills/${enc(drillId)}`).catch((error: unknown) => {
      if (error instanceof CatalogRequestError && error.status === 404) return undefined;
      throw error;
    });
    if (drill && drill.phase !== 'Requested') return drill;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return undefined;
}

async function drillCommand(
  ctx: CatalogContext,
  volumeName: string,
  o: {
    host?: string;
    containers?: boolean;
    health?: string;
    healthTimeout?: string;
    wait?: boolean;
    timeout: string;
  },
): Promise<number> {
  const timeout = Number(o.timeout);
  if (!Number.isInteger(timeout) || timeout < 1) throw new UsageError('--timeout: whole seconds, 1 or more');
  let healthTimeoutSeconds: number | undefined;
  if (o.healthTimeout !== undefined) {
    healthTimeoutSeconds = Number(o.healthTimeout);
    if (!Number.isInteger(healthTimeoutSeconds) || healthTimeoutSeconds < 1 || healthTimeoutSeconds > 3600) {
      throw new UsageError('--health-timeout: whole seconds from 1 to 3600');
    }
  }
  const volume = await resolveVolume(ctx, volumeName, o.host);
  const { drillId } = await ctx.client.send<{ drillId: string }>(
    'POST',
    `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/drills`,
    {
      ...(o.containers ? { containers: true } : {}),
      ...(o.health !== undefined ? { health: o.health } : {}),
      ...(healthTimeoutSeconds !== undefined ? { healthTimeoutSeconds } : {}),
      requestedBy: 'volback-cli',
    },
  );
  if (!o.wait) {
    ctx.out.result({ drillId, phase: 'Requested' }, () => `drill ${drillId} sent (follow it with --wait)`);
    return EXIT.ok;
  }
  ctx.out.progress(
    `drilling ${volume.volumeName}: restore, verify${o.containers || o.health ? ', health' : ''}…`,
  );
  const drill = await waitForDrill(ctx, drillId, timeout * 1000);
  if (!drill) {
    ctx.out.result(
      { drillId, phase: 'Requested' },
      () => `drill ${drillId} has not ended after ${timeout} s; see volback drills ${volume.volumeName}`,
    );
    return EXIT.partial;
  }
  ctx.out.result(drill, () => drillLine(drill));
  return drill.phase === 'Passed' ? EXIT.ok : EXIT.failed;
}

async function drillsCommand(
  ctx: CatalogContext,
  volumeName: string,
  o: { host?: string; limit?: string; all?: boolean },
): Promise<number> {
  const limit = listLimit(o);
  const volume = await resolveVolume(ctx, volumeName, o.host);
  const path = `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/drills`;
  const { items: shown, more } = await ctx.client.collect<Drill>(path, limit);
  ctx.out.result(shown, () =>
    shown.length === 0
      ? `no drill of ${volume.volumeName} yet (volback drill ${volume.volumeName}, or a volback.drill.schedule label)`
      : table(
          ['DRILL', 'AT', 'RESULT', 'RTO', 'SNAPSHOT', 'DETAIL'],
          shown.map((d) => [
            d.drillId,
            displayTime(d.finishedAt ?? d.requestedAt),
            d.phase === 'Failed' ? `FAILED (${d.stage ?? '?'})` : d.phase.toLowerCase(),
            seconds(d.rtoMs),
            d.snapshotId?.slice(0, 8) ?? '-',
            d.phase === 'Failed' ? (d.error?.reason ?? '') : `${d.files ?? 0} files`,
          ]),
        ),
  );
  if (more) noteTruncated(ctx.out, limit, 'drills');
  return EXIT.ok;
}

/** Adds `drill` and `drills` to `program`. */
export function registerDrillCommands(program: Command, run: Runner): void {
  program
    .command('drill')
    .description(
      "restore a volume's latest snapshot into a scratch volume, verify it, remove it (a restore drill)",
    )
    .argument('<volume>', 'volume name')
    .option('--host <host>', 'the host of the volume (name or id), when several have it')
    .option('--containers', 'also start the recorded containers on the scratch volume')
    .option(
      '--health <command>',
      'run this in each started container (sh -c); exit 0 passes (implies --containers)',
    )
    .option(
      '--health-timeout <seconds>',
      'longest wait for the containers to be healthy (default: the policy, else 60)',
    )
    .option('-w, --wait', 'wait for the outcome; exit 0 passed, 4 failed')
    .option('--timeout <seconds>', 'with --wait: give up waiting after this long', '3600')
    .action((volume: string, o, cmd: Command) => run(cmd, (ctx) => drillCommand(ctx, volume, o)));
  listOptions(
    program
      .command('drills')
      .description('restore drills of a volume, newest first, with their RTO')
      .argument('<volume>', 'volume name')
      .option('--host <host>', 'the host of the volume (name or id), when several have it'),
    'drills',
  ).action((volume: string, o, cmd: Command) => run(cmd, (ctx) => drillsCommand(ctx, volume, o)));
}
