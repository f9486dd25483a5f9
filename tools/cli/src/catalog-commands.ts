// The commands that talk to the catalog over HTTP, one function each, registered on the program
// by registerCatalogCommands. Each returns its exit code; errors are mapped in cli.ts.
import { createInterface } from 'node:readline/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import type { Backup, FoundPage, Host, Operation, Restore, Snapshot, Volume } from './api.ts';
import { CatalogRequestError, type Collected } from './catalog-client.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import {
  displayTime,
  enc,
  hostLabel,
  hostNames,
  listLimit,
  listOptions,
  noteTruncated,
  resolveVolume,
  retentionOf,
} from './catalog-lookups.ts';
import { eventsCommand } from './event-commands.ts';
import { extractTar } from './extract-tar.ts';
import { bytes, table } from './output.ts';
import { createProgressView, progressMode, type ProgressView } from './progress-view.ts';
import {
  policiesListCommand,
  policiesRemoveCommand,
  policiesSetCommand,
  policiesShowCommand,
} from './policy-commands.ts';
import { registerDrillCommands } from './drill-commands.ts';
import { registerSetCommands } from './set-commands.ts';
import { UsageError } from './usage-error.ts';

/** Files a snapshot holds, when its totals are known. */
function snapshotFiles(s: Snapshot): number | undefined {
  return s.stats ? s.stats.filesNew + s.stats.filesChanged + s.stats.filesUnmodified : undefined;
}
/** A backup or a restore: what `--wait` follows to its final phase. */
type Work = Backup | Restore;

/** Asks a yes/no question on the terminal; false unless the answer starts with y. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function workExit(work: Work): number {
  if (work.phase === 'PartiallyFailed') return EXIT.partial;
  if (work.phase === 'Failed') return EXIT.failed;
  return EXIT.ok;
}

/**
 * Follows a backup or restore until its final phase: the live stream for progress, and the
 * resource itself every second (the outcome may come before the stream is open).
 */
/** How long work the catalog accepted may take to appear in it (the scheduler records a backup). */
const WORK_RECORDED_WITHIN_MS = 30_000;

async function waitForWork<K extends 'backups' | 'restores'>(
  ctx: CatalogContext,
  kind: K,
  id: string,
  view: ProgressView,
): Promise<K extends 'backups' ? Backup : Restore> {
  const controller = new AbortController();
  const final = (w: Work) => ['Completed', 'PartiallyFailed', 'Failed'].includes(w.phase);
  const stream = ctx.client
    .stream(
      `/v1/events/stream?work=${enc(id)}`,
      (event) => {
        if (event.event === 'progress') view.update(JSON.parse(event.data) as never);
        else if (/\.(completed|partially-failed|failed)\.v\d+$/.test(event.event)) return true;
        return false;
      },
      controller.signal,
    )
    .catch(() => undefined);
  // A backup asked for now is recorded by the scheduler a moment after the catalog answered.
  const recordedBy = Date.now() + WORK_RECORDED_WITHIN_MS;
  try {
    for (;;) {
      const latest = await ctx.client
        .get<K extends 'backups' ? Backup : Restore>(`/v1/${kind}/${enc(id)}`)
        .catch((error: unknown) => {
          if (error instanceof CatalogRequestError && error.status === 404 && Date.now() < recordedBy)
            return null;
          throw error;
        });
      if (latest === null) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      if (final(latest)) return latest;
      view.phase(latest.phase);
      await Promise.race([stream, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
  } finally {
    controller.abort();
    view.stop();
  }
}

/** Waits for a forget, prune, check or import to be recorded as done (its outcome event projected). */
async function waitForOperation(ctx: CatalogContext, operationId: string, what: string): Promise<Operation> {
  const controller = new AbortController();
  const stream = ctx.client
    .stream(
      `/v1/events/stream?work=${enc(operationId)}`,
      (event) =>
        /\.(snapshots-forgotten|pruned|checked|maintenance-failed|import-completed|import-failed)\.v\d+$/.test(
          event.event,
        ),
      controller.signal,
    )
    .catch(() => undefined);
  const view = createProgressView(what, progressMode(ctx.json), undefined);
  try {
    for (;;) {
      const op = await ctx.client.get<Operation>(`/v1/repository/operations/${enc(operationId)}`);
      if (op.status !== 'Requested') return op;
      view.phase('running');
      await Promise.race([stream, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
  } finally {
    controller.abort();
    view.stop();
  }
}

// --- commands ---------------------------------------------------------------------------------

async function statusCommand(ctx: CatalogContext): Promise<number> {
  const s = await ctx.client.get<{
    hosts: { total: number; online: number; offline: number };
    volumes: Record<string, number>;
    backups: { running: number; queued: number; failedLast24h: number; lastCompletedAt: string | null };
    restores: { running: number; queued: number };
    snapshots: number;
    policies: number;
  }>('/v1/status');
  ctx.out.result(s, () =>
    [
      `catalog    ${ctx.client.url}`,
      `hosts      ${s.hosts.online} online, ${s.hosts.offline} offline`,
      `volumes    ${s.volumes['total']} (${s.volumes['protected']} protected, ${s.volumes['atRisk']} at risk, ${s.volumes['unprotected']} never backed up)`,
      `backups    ${s.backups.running} running, ${s.backups.queued} queued, ${s.backups.failedLast24h} failed in 24 h, last completed ${displayTime(s.backups.lastCompletedAt)}`,
      `restores   ${s.restores.running} running, ${s.restores.queued} queued`,
      `snapshots  ${s.snapshots}`,
      `policies   ${s.policies}`,
    ].join('\n'),
  );
  return EXIT.ok;
}

async function hostsCommand(ctx: CatalogContext, o: { limit?: string; all?: boolean }): Promise<number> {
  const { items: hosts, more } = await ctx.client.collect<Host>('/v1/hosts', listLimit(o));
  ctx.out.result(hosts, () =>
    table(
      ['NAME', 'STATUS', 'LAST SEEN', 'VOLUMES', 'CONTAINERS', 'HOST ID'],
      hosts.map((h) => [
        h.name,
        h.status,
        displayTime(h.lastSeenAt),
        String(h.volumes ?? '-'),
        String(h.containers ?? '-'),
        h.hostId,
      ]),
    ),
  );
  if (more) noteTruncated(ctx.out, hosts.length, 'hosts');
  return EXIT.ok;
}

async function volumesCommand(
  ctx: CatalogContext,
  o: { host?: string; removed?: boolean; limit?: string; all?: boolean },
): Promise<number> {
  const { items: volumes, more } = await ctx.client.collect<Volume>(
    `/v1/volumes?includeRemoved=${o.removed ? 'true' : 'false'}${o.host ? `&host=${enc(o.host)}` : ''}`,
    listLimit(o),
  );
  const names = ctx.json ? new Map<string, string>() : await hostNames(ctx);
  ctx.out.result(volumes, () =>
    table(
      ['HOST', 'VOLUME', 'PROTECTION', 'LAST SUCCESS', 'LAST BACKUP', 'NEXT DUE', 'SIZE', 'USED BY'],
      volumes.map((x) => [
        hostLabel(names, x.hostId),
        x.volumeName,
        x.protection.status,
        displayTime(x.protection.lastSuccessAt),
        x.protection.lastBackup?.phase ?? '-',
        displayTime(x.protection.nextDueAt ?? null),
        x.sizeBytes === null ? '-' : bytes(x.sizeBytes),
        x.usedBy.map((u) => u.containerName).join(',') || '-',
      ]),
    ),
  );
  if (more) noteTruncated(ctx.out, volumes.length, 'volumes');
  return EXIT.ok;
}

async function snapshotsCommand(
  ctx: CatalogContext,
  volumeName: string,
  o: { host?: string; limit?: string; all?: boolean },
): Promise<number> {
  const volume = await resolveVolume(ctx, volumeName, o.host);
  const { items: snapshots, more } = await ctx.client.collect<Snapshot>(
    `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/snapshots`,
    listLimit(o),
  );
  const names = ctx.json ? new Map<string, string>() : await hostNames(ctx);
  ctx.out.result(snapshots, () =>
    table(
      ['ID', 'TIME', 'HOST', 'VOLUME', 'FILES', 'READ', 'ADDED', ''],
      snapshots.map((s) => [
        s.shortId,
        displayTime(s.time),
        hostLabel(names, s.hostId),
        s.volumeName,
        s.stats ? String(snapshotFiles(s)) : '-',
        s.stats ? bytes(s.stats.bytesRead) : '-',
        s.stats ? bytes(s.stats.bytesAdded) : '-',
        s.partial ? 'partial' : s.origin === 'import' ? 'imported' : '',
      ]),
    ),
  );
  if (more) noteTruncated(ctx.out, snapshots.length, 'snapshots');
  return EXIT.ok;
}

async function lsCommand(
  ctx: CatalogContext,
  snapshot: string,
  path: string | undefined,
  o: { limit?: string; all?: boolean },
): Promise<number> {
  const tree = await ctx.client.get<{
    path: string;
    entries: Array<{ path: string; type: string; size: number | null; mtime: string | null }>;
  }>(`/v1/snapshots/${enc(snapshot)}/tree?path=${enc(path ?? '/')}`);
  const limit = listLimit(o);
  const entries = tree.entries.slice(0, limit);
  ctx.out.result(entries, () =>
    entries
      .map(
        (e) =>
          `${e.type.padEnd(7)} ${(e.size === null ? '' : bytes(e.size)).padStart(10)}  ${(e.mtime ?? '').slice(0, 19)}  ${e.path}${e.type === 'dir' ? '/' : ''}`,
      )
      .join('\n'),
  );
  if (tree.entries.length > entries.length) noteTruncated(ctx.out, entries.length, 'entries');
  return EXIT.ok;
}

/** A match of `find`, with the volume it is in. */
type Found = FoundPage['items'][number] & { hostId: string; volumeName: string };

/** Matches of `glob` in one volume, page after page, up to `limit`. */
async function findInVolume(
  ctx: CatalogContext,
  volume: Volume,
  glob: string,
  snapshots: string | undefined,
  limit: number,
): Promise<Collected<Found>> {
  const items: Found[] = [];
  let cursor: string | null = null;
  let capped = false;
  do {
    const want = Math.min(5000, Math.max(1, limit - items.length));
    const page: FoundPage = await ctx.client.get<FoundPage>(
      `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/find?glob=${enc(glob)}&limit=${want}${snapshots ? `&snapshots=${enc(snapshots)}` : ''}${cursor ? `&cursor=${enc(cursor)}` : ''}`,
    );
    items.push(...page.items.map((i) => ({ ...i, hostId: volume.hostId, volumeName: volume.volumeName })));
    cursor = page.nextCursor ?? null;
    if (page.truncated && !cursor) capped = true;
  } while (cursor && items.length < limit);
  return { items, more: cursor !== null || capped };
}

async function findCommand(
  ctx: CatalogContext,
  glob: string,
  o: { volume?: string; host?: string; snapshots?: string; limit?: string; all?: boolean },
): Promise<number> {
  const limit = listLimit(o);
  const volumes = o.volume
    ? [await resolveVolume(ctx, o.volume, o.host)]
    : await ctx.client.all<Volume>(`/v1/volumes${o.host ? `?host=${enc(o.host)}` : ''}`);
  const found: Found[] = [];
  let more = false;
  for (const volume of volumes) {
    if (found.length >= limit) {
      more = true;
      break;
    }
    const part = await findInVolume(ctx, volume, glob, o.snapshots, limit - found.length);
    found.push(...part.items);
    more ||= part.more;
  }
  ctx.out.result(found, () =>
    table(
      ['SNAPSHOT', 'TIME', 'VOLUME', 'PATH', 'SIZE'],
      found.map((f) => [
        f.snapshotId.slice(0, 8),
        displayTime(f.snapshotTime),
        f.volumeName,
        f.path,
        f.size === null ? '-' : bytes(f.size),
      ]),
    ),
  );
  if (more) noteTruncated(ctx.out, found.length, 'matches');
  return found.length ? EXIT.ok : EXIT.notFound;
}

async function backupCommand(
  ctx: CatalogContext,
  volumeName: string,
  o: { host?: string; wait?: boolean },
): Promise<number> {
  const volume = await resolveVolume(ctx, volumeName, o.host);
  const { backupId } = await ctx.client.send<{ backupId: string }>(
    'POST',
    `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/backups`,
    { requestedBy: 'volback-cli' },
  );
  if (!o.wait) {
    ctx.out.result({ backupId, phase: 'Queued' }, () => `backup ${backupId} queued (follow it with --wait)`);
    return EXIT.ok;
  }
  // A backup visits every file but reads only changed ones: the last snapshot's file count is the
  // cheap, honest total (its bytes read are not: an incremental backup reads little).
  const last = volume.protection.lastSnapshotId
    ? await ctx.client
        .get<Snapshot>(`/v1/snapshots/${enc(volume.protection.lastSnapshotId)}`)
        .catch(() => null)
    : null;
  const lastFiles = last ? snapshotFiles(last) : undefined;
  const total = lastFiles !== undefined ? { files: lastFiles } : undefined;

  const view = createProgressView(`backing up ${volume.volumeName}`, progressMode(ctx.json), total);
  const work = await waitForWork(ctx, 'backups', backupId, view);
  const stats = work.stats;
  ctx.out.result(work, () =>
    work.phase === 'Failed'
      ? `backup ${backupId} failed: ${work.error?.reason ?? ''} (${work.error?.code ?? ''})`
      : `backup ${backupId} ${work.phase === 'Completed' ? 'completed' : 'partially failed'}: snapshot ${String(work.snapshotId).slice(0, 8)}, ${bytes(stats?.bytesRead ?? 0)} read, ${bytes(stats?.bytesAdded ?? 0)} new`,
  );
  return workExit(work);
}

interface RestoreOptions {
  toVolume?: string;
  toDir?: string;
  existing?: boolean;
  stopContainers?: boolean;
  path?: string;
  targetDir?: string;
  dryRun?: boolean;
  preserveSpecialModes?: boolean;
  host?: string;
  wait?: boolean;
  yes?: boolean;
}

/** What a dry run found it would do. */
type RestorePlan = NonNullable<Restore['plan']>;

/** A dry run's plan: one line of counts, then each listed path with what would happen to it. */
function planText(restoreId: string, into: string, plan: RestorePlan): string {
  const kinds = [
    ['written', 'write  ', 'to write'],
    ['replaced', 'replace', 'to replace'],
    ['leftAlone', 'keep   ', 'left alone'],
  ] as const;
  const lines = [
    `restore ${restoreId} dry run into ${into}, nothing written: ` +
      kinds
        .map(([kind, , label]) =>
          kind === 'leftAlone'
            ? `${plan[kind].count} ${label}`
            : `${plan[kind].count} ${label} (${bytes(plan[kind].bytes)})`,
        )
        .join(', '),
  ];
  for (const [kind, verb] of kinds) {
    for (const path of plan[kind].paths) lines.push(`  ${verb} ${path}`);
    const more = plan[kind].count - plan[kind].paths.length;
    if (more > 0) lines.push(`  ${verb} … ${more} more not listed`);
  }
  return lines.join('\n');
}

/** `restore --to-dir`: the snapshot (or a path of it) as files on this machine, through the tar download. */
async function restoreToDirectory(
  ctx: CatalogContext,
  snapshotId: string,
  o: RestoreOptions,
): Promise<number> {
  const dir = o.toDir!;
  const path = o.path ?? '/';
  // A sub-path lands at its own path under the directory, as restic's --include puts it; the tar
  // names entries relative to the path (a file: its name), so the path's directories come first.
  let prefix: string[] = [];
  if (path !== '/') {
    const tree = await ctx.client.get<{ path: string; entries: Array<{ path: string; type: string }> }>(
      `/v1/snapshots/${enc(snapshotId)}/tree?path=${enc(path)}`,
    );
    const parts = tree.path.split('/').filter(Boolean);
    const isFile =
      tree.entries.length === 1 && tree.entries[0]!.path === tree.path && tree.entries[0]!.type !== 'dir';
    prefix = isFile ? parts.slice(0, -1) : parts;
  }
  const body = await ctx.client.download(`/v1/snapshots/${enc(snapshotId)}/tar?path=${enc(path)}`);
  const result = await extractTar(Readable.fromWeb(body as never), dir, prefix);
  for (const s of result.skipped) ctx.out.warn(`not restored: ${s.name} (${s.reason})`);
  ctx.out.result(
    { directory: dir, ...result },
    () =>
      `restored ${result.files} files, ${result.dirs} directories, ${result.symlinks} symlinks (${bytes(result.bytes)}) into ${dir}${result.skipped.length ? `; ${result.skipped.length} entries not restored` : ''}`,
  );
  return result.skipped.length ? EXIT.partial : EXIT.ok;
}

async function restoreCommand(ctx: CatalogContext, snapshotId: string, o: RestoreOptions): Promise<number> {
  if (o.toDir && o.toVolume) throw new UsageError('give --to-volume or --to-dir, not both');
  if (o.toDir && (o.targetDir || o.dryRun))
    throw new UsageError('--target-dir and --dry-run are for restores into a volume (--to-volume)');
  if (o.toDir) return restoreToDirectory(ctx, snapshotId, o);
  const toVolume = o.toVolume;
  if (!toVolume)
    throw new UsageError('--to-volume <name> or --to-dir <dir> is required (or download with dump)');
  if (o.existing && !o.yes && !o.dryRun) {
    // Merging into a volume in use replaces files: a person confirms, a script says --yes.
    if (!process.stdin.isTTY || !process.stderr.isTTY)
      throw new UsageError(
        `--existing restores into ${JSON.stringify(toVolume)} over its files: pass --yes to confirm when not on a terminal`,
      );
    const ok = await confirm(
      `Restore snapshot ${snapshotId.slice(0, 8)} into the existing volume ${JSON.stringify(toVolume)}? Its files with the same paths are replaced.`,
    );
    if (!ok) {
      ctx.out.notice('restore cancelled');
      return EXIT.error;
    }
  }
  const { restoreId } = await ctx.client.send<{ restoreId: string }>('POST', '/v1/restores', {
    snapshotId,
    target: o.existing
      ? { kind: 'existing-volume', volumeName: toVolume, stopContainers: Boolean(o.stopContainers) }
      : { kind: 'new-volume', volumeName: toVolume },
    ...(o.path ? { path: o.path } : {}),
    ...(o.targetDir ? { targetPath: o.targetDir } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(o.preserveSpecialModes ? { preserveSpecialModes: true } : {}),
    ...(o.host ? { hostId: o.host } : {}),
    requestedBy: 'volback-cli',
  });
  // A dry run's answer is its plan: always wait for it.
  if (!o.wait && !o.dryRun) {
    ctx.out.result(
      { restoreId, phase: 'Queued' },
      () => `restore ${restoreId} queued (follow it with --wait)`,
    );
    return EXIT.ok;
  }
  // A restore writes every file of the snapshot (of its path: then no total is known here).
  const snapshot = o.path
    ? null
    : await ctx.client.get<Snapshot>(`/v1/snapshots/${enc(snapshotId)}`).catch(() => null);
  const into = `${toVolume}${o.targetDir ? `:${o.targetDir}` : ''}`;
  const files = snapshot ? snapshotFiles(snapshot) : undefined;
  const view = createProgressView(
    `${o.dryRun ? 'planning a restore into' : 'restoring into'} ${into}`,
    progressMode(ctx.json),
    files !== undefined ? { files } : undefined,
  );
  const work = await waitForWork(ctx, 'restores', restoreId, view);
  ctx.out.result(work, () =>
    work.phase !== 'Completed'
      ? `restore ${restoreId} failed: ${work.error?.reason ?? ''} (${work.error?.code ?? ''})`
      : work.plan
        ? planText(restoreId, into, work.plan)
        : `restore ${restoreId} completed: ${String(work.files)} files, ${bytes(Number(work.bytes ?? 0))} into ${into}`,
  );
  return workExit(work);
}

async function dumpCommand(ctx: CatalogContext, snapshot: string, path: string | undefined): Promise<number> {
  if (process.stdout.isTTY)
    throw new UsageError('dump writes a tar stream: redirect it (> file.tar) or pipe it');
  const body = await ctx.client.download(`/v1/snapshots/${enc(snapshot)}/tar?path=${enc(path ?? '/')}`);
  await pipeline(Readable.fromWeb(body as never), process.stdout);
  return EXIT.ok;
}

async function catalogRebuildCommand(ctx: CatalogContext): Promise<number> {
  await ctx.client.send('POST', '/v1/admin/rebuild');
  ctx.out.result({ status: 'accepted' }, () => 'the catalog is replaying the event log');
  return EXIT.ok;
}

/** `10%` or `0.1` → 0.1. */
function fractionOf(flag: string, raw: string): number {
  const value = raw.endsWith('%') ? Number(raw.slice(0, -1)) / 100 : Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new UsageError(`${flag}: a share between 0 and 1, or 0% to 100%, got ${raw}`);
  return value;
}

function operationExit(op: Operation): number {
  return op.status === 'Succeeded' ? EXIT.ok : EXIT.failed;
}

function operationText(op: Operation): string {
  if (op.error) return `${op.operation} ${op.operationId} failed: ${op.error.reason} (${op.error.code})`;
  const s = op.summary;
  switch (op.operation) {
    case 'forget':
      return `forget ${op.operationId} done: ${String(s['forgotten'])} snapshots forgotten, ${String(s['kept'])} kept (run volback prune to free their data)`;
    case 'prune':
      return `prune ${op.operationId} done: ${String(s['packsDeleted'])} packs deleted, ${String(s['packsRepacked'])} repacked, ${bytes(Number(s['bytesFreed'] ?? 0))} freed`;
    case 'check': {
      const errors = (s['errors'] as string[] | undefined) ?? [];
      return op.status === 'Succeeded'
        ? `check ${op.operationId}: no errors (${String(s['packsChecked'])} packs, ${Math.round(Number(s['readDataFraction'] ?? 0) * 100)}% of data read)`
        : `check ${op.operationId} found damage:\n${errors.map((e) => `  ${e}`).join('\n')}`;
    }
    case 'import':
      return `import ${op.operationId} done: ${String(s['imported'])} snapshots imported, ${String(s['alreadyKnown'])} already known, ${String(s['skipped'])} skipped (not volback's)`;
  }
}

async function runOperation(ctx: CatalogContext, path: string, body: unknown, what: string): Promise<number> {
  const { operationId } = await ctx.client.send<{ operationId: string }>('POST', path, {
    ...(body as object),
    requestedBy: 'volback-cli',
  });
  const op = await waitForOperation(ctx, operationId, what);
  ctx.out.result(op, () => operationText(op));
  return operationExit(op);
}

async function forgetCommand(
  ctx: CatalogContext,
  volumeName: string,
  o: Record<string, unknown>,
): Promise<number> {
  const retention = retentionOf(o);
  if (Object.keys(retention).length === 0)
    throw new UsageError('say what to keep: --keep-last, --keep-daily, … or --keep-within');
  const volume = await resolveVolume(ctx, volumeName, o['host'] as string | undefined);
  return runOperation(
    ctx,
    `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/forget`,
    { retention, dryRun: Boolean(o['dryRun']) },
    `forgetting snapshots of ${volume.volumeName}`,
  );
}

async function pruneCommand(ctx: CatalogContext, o: { maxUnused?: string }): Promise<number> {
  return runOperation(
    ctx,
    '/v1/repository/prune',
    { maxUnusedFraction: fractionOf('--max-unused', o.maxUnused ?? '5%') },
    'pruning the repository',
  );
}

async function checkCommand(
  ctx: CatalogContext,
  o: { readData?: boolean; readDataSubset?: string },
): Promise<number> {
  if (o.readData && o.readDataSubset)
    throw new UsageError('give --read-data or --read-data-subset, not both');
  const fraction = o.readData ? 1 : o.readDataSubset ? fractionOf('--read-data-subset', o.readDataSubset) : 0;
  return runOperation(ctx, '/v1/repository/check', { readDataFraction: fraction }, 'checking the repository');
}

async function importCommand(ctx: CatalogContext): Promise<number> {
  return runOperation(ctx, '/v1/repository/import', {}, 'importing snapshots from the repository');
}

// --- registration -----------------------------------------------------------------------------

/** Runs a command's function with its context; errors reach cli.ts in the CLI's words. */
export type Runner = (command: Command, body: (ctx: CatalogContext) => Promise<number>) => Promise<void>;

/** Commander's collector of a repeatable option. */
export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function keepOptions(command: Command): Command {
  return command
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours')
    .option('--keep-daily <n>', 'keep the newest snapshot of each of the last n days')
    .option('--keep-weekly <n>', 'keep the newest snapshot of each of the last n weeks')
    .option('--keep-monthly <n>', 'keep the newest snapshot of each of the last n months')
    .option('--keep-yearly <n>', 'keep the newest snapshot of each of the last n years');
}

/** Adds every catalog command to `program`; `run` executes each with its context. */
export function registerCatalogCommands(program: Command, run: Runner): void {
  program
    .command('status')
    .description('hosts, volumes by protection, work in progress')
    .action((_o, cmd: Command) => run(cmd, (ctx) => statusCommand(ctx)));

  listOptions(program.command('hosts').description('Docker hosts, online or offline'), 'hosts').action(
    (o, cmd: Command) => run(cmd, (ctx) => hostsCommand(ctx, o)),
  );

  listOptions(
    program
      .command('volumes')
      .description('volumes and their protection')
      .option('--host <host>', 'only this host (name or id)')
      .option('--removed', 'removed volumes too'),
    'volumes',
  ).action((o, cmd: Command) => run(cmd, (ctx) => volumesCommand(ctx, o)));

  listOptions(
    program
      .command('snapshots')
      .description('snapshots of a volume, newest first')
      .argument('<volume>', 'volume name')
      .option('--host <host>', 'the host of the volume (name or id), when several have it'),
    'snapshots',
  ).action((volume: string, o, cmd: Command) => run(cmd, (ctx) => snapshotsCommand(ctx, volume, o)));

  listOptions(
    program
      .command('ls')
      .description('a directory of a snapshot')
      .argument('<snapshot>', 'snapshot id or unique prefix')
      .argument('[path]', 'path inside the volume', '/'),
    'entries',
  ).action((snapshot: string, path: string, o, cmd: Command) =>
    run(cmd, (ctx) => lsCommand(ctx, snapshot, path, o)),
  );

  listOptions(
    program
      .command('find')
      .description("files by name or glob across snapshots ('*.sql', 'app/**/conf*')")
      .argument('<glob>', 'a pattern without / matches base names; with / the volume-relative path')
      .option('--volume <volume>', 'only this volume')
      .option('--host <host>', 'only this host (name or id)')
      .option('--snapshots <n>', 'how many of the newest snapshots of each volume to search (default 10)'),
    'matches',
  ).action((glob: string, o, cmd: Command) => run(cmd, (ctx) => findCommand(ctx, glob, o)));

  program
    .command('backup')
    .description('back up a volume now')
    .argument('<volume>', 'volume name')
    .option('--host <host>', 'the host of the volume (name or id), when several have it')
    .option('-w, --wait', 'follow it to the end with progress')
    .action((volume: string, o, cmd: Command) => run(cmd, (ctx) => backupCommand(ctx, volume, o)));

  program
    .command('restore')
    .description('restore a snapshot into a volume, or into a directory here')
    .argument('<snapshot>', 'snapshot id or unique prefix')
    .option('--to-volume <name>', 'restore into this volume (new unless --existing)')
    .option(
      '--to-dir <dir>',
      'restore into a new or empty directory on this machine (through the tar download)',
    )
    .option('--existing', 'restore into an existing volume, over its files (asks first; --yes to skip)')
    .option('--stop-containers', 'with --existing: stop the containers using the volume meanwhile')
    .option(
      '--path <path>',
      'restore only this path of the volume; it lands at its own place (as restic --include)',
    )
    .option(
      '--target-dir <dir>',
      'with --to-volume: put the restored path below this directory of the volume',
    )
    .option('-n, --dry-run', 'list what would be written, replaced and left alone; write nothing')
    .option(
      '--preserve-special-modes',
      'keep setuid/setgid bits (only for a snapshot of the same host; device nodes never)',
    )
    .option('--host <host>', "restore on this host (name or id); the snapshot's own by default")
    .option('-y, --yes', 'do not ask before restoring into an existing volume')
    .option('-w, --wait', 'follow it to the end with progress')
    .action((snapshot: string, o: RestoreOptions, cmd: Command) =>
      run(cmd, (ctx) => restoreCommand(ctx, snapshot, o)),
    );

  registerSetCommands(program, run);
  registerDrillCommands(program, run);

  program
    .command('dump')
    .description('a snapshot sub-tree as a tar stream (> file.tar)')
    .argument('<snapshot>', 'snapshot id or unique prefix')
    .argument('[path]', 'path inside the volume', '/')
    .action((snapshot: string, path: string, _o, cmd: Command) =>
      run(cmd, (ctx) => dumpCommand(ctx, snapshot, path)),
    );

  const policies = program.command('policies').description('backup policies: list, show, set, remove');
  listOptions(policies.command('list', { isDefault: true }).description('every policy'), 'policies').action(
    (o, cmd: Command) => run(cmd, (ctx) => policiesListCommand(ctx, o)),
  );
  policies
    .command('show')
    .description('one policy')
    .argument('<id>', 'policy id')
    .action((id: string, _o, cmd: Command) => run(cmd, (ctx) => policiesShowCommand(ctx, id)));
  policies
    .command('remove')
    .description('remove a policy (sent to the scheduler)')
    .argument('<id>', 'policy id')
    .action((id: string, _o, cmd: Command) => run(cmd, (ctx) => policiesRemoveCommand(ctx, id)));
  keepOptions(
    policies
      .command('set')
      .description('define or replace a policy (sent to the scheduler)')
      .argument('<id>', 'policy id')
      .option('--default', 'the default policy (volumes without their own)')
      .option('--volume <volume>', 'the policy of one volume')
      .option('--host <host>', 'the host of --volume (name or id)')
      .requiredOption('--cron <cron>', "when to back up, e.g. '0 3 * * *'")
      .option('--timezone <tz>', 'time zone of --cron (default UTC)'),
  )
    .option('--exclude <pattern>', 'leave out matching paths (repeatable)', collect)
    .addOption(
      new Option('--consistency <mode>', 'what to do with containers meanwhile').choices([
        'none',
        'stop',
        'pause',
      ]),
    )
    .option('--disabled', 'define it switched off')
    .option('--drill-cron <cron>', "also run a restore drill at this schedule, e.g. '0 5 * * 0'")
    .option('--drill-containers', 'the drill starts the recorded containers on the scratch volume')
    .option('--drill-health <command>', 'run in each container the drill starts (sh -c); exit 0 passes')
    .action((id: string, o: Record<string, unknown>, cmd: Command) =>
      run(cmd, (ctx) => policiesSetCommand(ctx, id, o)),
    );

  program
    .command('events')
    .description('past events and, with --follow, the live ones')
    .option('-f, --follow', 'keep following the live stream (reconnects; Ctrl-C stops)')
    .option('--since <when>', 'from this long ago (30m, 2h, 1d) or this time (default 24h without --follow)')
    .option('--limit <n>', 'without --follow: the newest n events (1 to 1000)', '100')
    .option('--host <host>', 'only events of this host (name or id)')
    .option('--volume <volume>', 'only events of this volume')
    .option('--type <prefix>', 'only event types starting with this (repeatable)', collect)
    .option('--work <id>', 'only events of this backup, restore or operation')
    .action((o, cmd: Command) => run(cmd, (ctx) => eventsCommand(ctx, o)));

  keepOptions(
    program
      .command('forget')
      .description("forget a volume's snapshots by a retention (through the gateways)")
      .argument('<volume>', 'volume name')
      .option('--host <host>', 'the host of the volume (name or id), when several have it'),
  )
    .option('--keep-within <duration>', 'keep every snapshot of this long back (1y2m3d4h)')
    .option('-n, --dry-run', 'say what would be forgotten, forget nothing')
    .action((volume: string, o: Record<string, unknown>, cmd: Command) =>
      run(cmd, (ctx) => forgetCommand(ctx, volume, o)),
    );

  program
    .command('prune')
    .description('remove data no snapshot uses (through the gateways)')
    .option('--max-unused <share>', 'unused space to tolerate in packs (5%)')
    .action((o, cmd: Command) => run(cmd, (ctx) => pruneCommand(ctx, o)));

  program
    .command('check')
    .description('check the repository (through the gateways)')
    .option('--read-data', 'read back and verify all data')
    .option('--read-data-subset <share>', 'read back this share of the data (10% or 0.1)')
    .action((o, cmd: Command) => run(cmd, (ctx) => checkCommand(ctx, o)));

  program
    .command('import')
    .description("re-import the repository's snapshots the event log does not know (after the log was lost)")
    .action((_o, cmd: Command) => run(cmd, (ctx) => importCommand(ctx)));

  const catalog = program.command('catalog').description("the catalog's own maintenance");
  catalog
    .command('rebuild')
    .description("empty the catalog's read model and replay the event log")
    .action((_o, cmd: Command) => run(cmd, (ctx) => catalogRebuildCommand(ctx)));
}
