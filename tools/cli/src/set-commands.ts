// Backup sets: `volback sets`, `backup-set`, `restore-set` over the catalog's /v1/sets routes.
import type { Command } from 'commander';
import type { BackupSetInfo, SetBackup, SetRestore } from './api.ts';
import { CatalogRequestError } from './catalog-client.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import { displayTime, enc } from './catalog-lookups.ts';
import type { Runner } from './catalog-commands.ts';
import { table } from './output.ts';
import { UsageError } from './usage-error.ts';

/** How long a set's work may take to appear in the catalog after it was accepted. */
const RECORDED_WITHIN_MS = 60_000;

/** `compose:shop`, `group:billing`, or a bare name the catalog knows under one of them. */
async function resolveSet(ctx: CatalogContext, ref: string, host: string | undefined): Promise<string> {
  if (/^(compose|group):/.test(ref)) return ref;
  const query = host === undefined ? '' : `?hostId=${enc(host)}`;
  const { items } = await ctx.client.get<{ items: BackupSetInfo[] }>(`/v1/sets${query}`);
  const ids = [...new Set(items.filter((s) => s.setId.endsWith(`:${ref}`)).map((s) => s.setId))];
  if (ids.length === 1) return ids[0]!;
  if (ids.length === 0) throw new UsageError(`no set ${ref}: see volback sets`);
  throw new UsageError(`${ref} is ${ids.join(' and ')}: give the full set id`);
}

/** Polls `path` until `done`; a 404 is "not recorded yet" for a while. */
async function follow<T>(ctx: CatalogContext, path: string, done: (value: T) => boolean): Promise<T> {
  const recordedBy = Date.now() + RECORDED_WITHIN_MS;
  for (;;) {
    const value = await ctx.client.get<T>(path).catch((error: unknown) => {
      if (error instanceof CatalogRequestError && error.status === 404 && Date.now() < recordedBy)
        return null;
      throw error;
    });
    if (value !== null && done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function setsCommand(ctx: CatalogContext, o: { host?: string }): Promise<number> {
  const query = o.host === undefined ? '' : `?hostId=${enc(o.host)}`;
  const { items } = await ctx.client.get<{ items: BackupSetInfo[] }>(`/v1/sets${query}`);
  ctx.out.result(items, () =>
    items.length === 0
      ? 'no sets (label containers or volumes with volback.group, or run them with docker compose)'
      : table(
          ['SET', 'HOST', 'VOLUMES', 'CONTAINERS', 'LAST BACKUP', 'PHASE'],
          items.map((s) => [
            s.setId,
            s.hostId,
            s.volumes.join(','),
            s.containers.join(','),
            s.lastBackup ? displayTime(s.lastBackup.finishedAt ?? s.lastBackup.startedAt ?? '') : '-',
            s.lastBackup?.phase ?? '-',
          ]),
        ),
  );
  return EXIT.ok;
}

function setBackupText(b: SetBackup): string {
  const members = b.members.map((m) => `  ${m.volumeName}: snapshot ${m.snapshotId.slice(0, 8)}`);
  const failed = b.failed.map((f) => `  ${f.volumeName}: FAILED ${f.reason} (${f.code})`);
  const head =
    b.phase === 'Failed'
      ? `backup ${b.backupId} of ${b.setId} failed: ${b.error?.reason ?? ''} (${b.error?.code ?? ''})`
      : `backup ${b.backupId} of ${b.setId} ${b.phase === 'Completed' ? 'completed' : 'partially failed'}` +
        (b.quiescedContainers.length ? ` (quiesced ${b.quiescedContainers.join(', ')})` : '');
  return [head, ...members, ...failed].join('\n');
}

async function backupSetCommand(
  ctx: CatalogContext,
  ref: string,
  o: { host?: string; wait?: boolean },
): Promise<number> {
  const setId = await resolveSet(ctx, ref, o.host);
  const { backupId } = await ctx.client.send<{ backupId: string }>('POST', `/v1/sets/${enc(setId)}/backups`, {
    ...(o.host !== undefined ? { hostId: o.host } : {}),
    requestedBy: 'volback-cli',
  });
  if (!o.wait) {
    ctx.out.result(
      { backupId, phase: 'Queued' },
      () => `backup ${backupId} of ${setId} queued (follow it with --wait)`,
    );
    return EXIT.ok;
  }
  const done = await follow<SetBackup>(ctx, `/v1/set-backups/${enc(backupId)}`, (b) => b.phase !== 'Running');
  ctx.out.result(done, () => setBackupText(done));
  return done.phase === 'Completed' ? EXIT.ok : done.phase === 'PartiallyFailed' ? EXIT.partial : EXIT.failed;
}

interface RestoreSetOptions {
  host?: string;
  backup?: string;
  toHost?: string;
  inPlace?: boolean;
  suffix?: string;
  recreateContainers?: boolean;
  containerSuffix?: string;
  start?: boolean;
  dryRun?: boolean;
  wait?: boolean;
}

function setRestoreText(r: SetRestore): string {
  const verb = r.dryRun ? 'would restore' : 'restored';
  const lines = [
    r.phase === 'Failed'
      ? `restore ${r.restoreId} of ${r.setId} failed: ${r.error?.reason ?? ''} (${r.error?.code ?? ''})`
      : `restore ${r.restoreId} of ${r.setId} (backup ${r.setBackupId}) ${r.dryRun ? 'planned (dry run, nothing written)' : 'completed'}`,
    ...r.members.map(
      (m) =>
        `  volume ${m.volumeName} (snapshot ${m.snapshotId.slice(0, 8)}) ${verb} into ${m.target.volumeName}` +
        (m.target.kind === 'existing-volume' ? ' (in place)' : ''),
    ),
  ];
  for (const c of r.containers) {
    const x = c as SetRestore['containers'][number] & {
      image?: string;
      imagePresent?: boolean;
      mounts?: string[];
      networks?: string[];
      ports?: string[];
      restartPolicy?: string;
      envCount?: number;
      warnings?: string[];
    };
    const what =
      {
        'would-create': 'would create',
        created: 'created',
        started: 'created and started',
        failed: 'NOT created',
      }[x.outcome] ?? x.outcome;
    lines.push(`  container ${x.name}: ${what}`);
    lines.push(`    image ${x.image ?? '?'}${x.imagePresent === false ? ' (NOT on the engine)' : ''}`);
    if (x.mounts?.length) lines.push(`    mounts ${x.mounts.join(', ')}`);
    if (x.networks?.length) lines.push(`    networks ${x.networks.join(', ')}`);
    if (x.ports?.length) lines.push(`    ports ${x.ports.join(', ')}`);
    lines.push(`    restart ${x.restartPolicy ?? 'no'}, ${x.envCount ?? 0} env variables`);
    for (const w of x.warnings ?? []) lines.push(`    warning: ${w}`);
  }
  return lines.join('\n');
}

async function restoreSetCommand(ctx: CatalogContext, ref: string, o: RestoreSetOptions): Promise<number> {
  if (o.inPlace && o.suffix !== undefined) throw new UsageError('--in-place and --suffix exclude each other');
  const setId = await resolveSet(ctx, ref, o.host);
  const { restoreId } = await ctx.client.send<{ restoreId: string; setBackupId: string }>(
    'POST',
    `/v1/sets/${enc(setId)}/restores`,
    {
      ...(o.host !== undefined ? { hostId: o.host } : {}),
      ...(o.backup !== undefined ? { setBackupId: o.backup } : {}),
      ...(o.toHost !== undefined ? { toHostId: o.toHost } : {}),
      inPlace: Boolean(o.inPlace),
      ...(o.suffix !== undefined ? { volumeSuffix: o.suffix } : {}),
      recreateContainers: Boolean(o.recreateContainers),
      ...(o.containerSuffix !== undefined ? { containerSuffix: o.containerSuffix } : {}),
      startContainers: o.start !== false,
      dryRun: Boolean(o.dryRun),
      requestedBy: 'volback-cli',
    },
  );
  // A dry run is only useful with its answer: it is always followed.
  if (!o.wait && !o.dryRun) {
    ctx.out.result(
      { restoreId, phase: 'Queued' },
      () => `restore ${restoreId} of ${setId} queued (follow it with --wait)`,
    );
    return EXIT.ok;
  }
  const done = await follow<SetRestore>(
    ctx,
    `/v1/set-restores/${enc(restoreId)}`,
    (r) => r.phase !== 'Queued',
  );
  ctx.out.result(done, () => setRestoreText(done));
  return done.phase === 'Completed' ? EXIT.ok : EXIT.failed;
}

/** Adds `sets`, `backup-set` and `restore-set` to `program`. */
export function registerSetCommands(program: Command, run: Runner): void {
  program
    .command('sets')
    .description('backup sets (compose projects, volback.group labels) and their last backup')
    .option('--host <host>', 'only this host (name or id)')
    .action((o: { host?: string }, cmd: Command) => run(cmd, (ctx) => setsCommand(ctx, o)));

  program
    .command('backup-set')
    .description('back up every volume of a set now, at one point in time')
    .argument('<set>', 'compose:<project>, group:<name>, or the bare name')
    .option('--host <host>', 'the host of the set, when several have one of that name')
    .option('-w, --wait', 'follow it to the end')
    .action((set: string, o, cmd: Command) => run(cmd, (ctx) => backupSetCommand(ctx, set, o)));

  program
    .command('restore-set')
    .description("restore every volume of a set's backup, and optionally recreate its containers")
    .argument('<set>', 'compose:<project>, group:<name>, or the bare name')
    .option('--host <host>', 'the host of the set, when several have one of that name')
    .option('--backup <id>', 'this set backup (default: the newest with snapshots)')
    .option('--to-host <host>', "restore on this host (name or id); the set's own by default")
    .option('--in-place', 'into the volumes of the same names (their containers stopped meanwhile)')
    .option('--suffix <suffix>', 'append to each volume name (default -restored)')
    .option(
      '--recreate-containers',
      'create the containers again from the configuration the snapshots recorded',
    )
    .option('--container-suffix <suffix>', 'append to each recreated container name (default: none)')
    .option('--no-start', 'create the containers but do not start them')
    .option('-n, --dry-run', 'print what would be restored and created; change nothing')
    .option('-w, --wait', 'follow it to the end')
    .action((set: string, o: RestoreSetOptions, cmd: Command) =>
      run(cmd, (ctx) => restoreSetCommand(ctx, set, o)),
    );
}
