import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { CatalogClient, CatalogRequestError } from './catalog-client.ts';
import { bytes, createOutput, table, type Output } from './output.ts';
import { UsageError } from './usage-error.ts';

export const CATALOG_USAGE = `usage: volback <command> [options]     (talks to the catalog over HTTP)

commands:
  status                                   hosts, volumes by protection, work in progress
  hosts                                    Docker hosts, online or offline
  volumes [--host h] [--all]               volumes and their protection (--all: removed ones too)
  snapshots <volume> [--host h]            snapshots of a volume, newest first
  ls <snapshot> [path]                     a directory of a snapshot (volume-relative path)
  find <glob> [--volume v] [--host h]      files by name or glob across snapshots ('*.sql', 'app/**/conf*')
  backup <volume> [--host h] [--wait]      back up now; --wait follows it to the end with progress
  restore <snapshot> --to-volume <name> [--existing [--stop-containers]] [--path p]
          [--target-dir d] [--dry-run] [--host h] [--wait]
                                           --path p lands at p in the volume (below --target-dir d
                                           when given); --dry-run lists what would be written,
                                           replaced and left alone, and writes nothing
  dump <snapshot> [path] > file.tar        a snapshot sub-tree as a tar stream
  policies [list] | show <id> | remove <id>
  policies set <id> (--default | --volume v [--host h]) --cron '0 3 * * *' [--timezone tz]
           [--keep-last n] [--keep-daily n] [--keep-weekly n] [--keep-monthly n] [--exclude p]
           [--consistency none|stop|pause] [--disabled]
  events [--follow] [--host h] [--volume v] [--type prefix]   the live event stream (until Ctrl-C)
  catalog rebuild                          empty the catalog's read model and replay the event log

options: --catalog <url> (VOLBACK_CATALOG_URL, default http://127.0.0.1:8080),
         --token <token> (VOLBACK_TOKEN), --json for scripts.
exit codes: 0 ok, 1 error, 2 usage, 3 backup partially failed, 4 backup or restore failed,
            5 not found, 6 not allowed (token), 7 catalog or repository unreachable, 8 conflict.`;

/** Commands this module runs (everything but `repo`). */
export const CATALOG_COMMANDS = new Set([
  'status',
  'hosts',
  'volumes',
  'snapshots',
  'ls',
  'find',
  'backup',
  'restore',
  'dump',
  'policies',
  'events',
  'catalog',
]);

/** Exit code of a failed call. */
export function exitCodeOf(error: CatalogRequestError): number {
  if (error.status === 404) return 5;
  if (error.status === 401 || error.status === 403) return 6;
  if (error.status === 0 || error.status === 503) return 7;
  if (error.status === 409) return 8;
  if (error.status === 400) return 2;
  return 1;
}

interface Volume {
  hostId: string;
  volumeName: string;
  removedAt: string | null;
  sizeBytes: number | null;
  protection: {
    status: string;
    lastSuccessAt: string | null;
    lastBackup: { phase: string; at: string } | null;
    /** The scheduler's next planned backup, when it announced one. */
    nextDueAt: string | null;
  };
  usedBy: Array<{ containerName: string }>;
}
interface Snapshot {
  snapshotId: string;
  shortId: string;
  hostId: string;
  volumeName: string;
  time: string;
  partial: boolean;
  stats: {
    bytesRead: number;
    bytesAdded: number;
    filesNew: number;
    filesChanged: number;
    filesUnmodified: number;
  };
}
interface Work {
  phase: string;
  error: { code: string; reason: string } | null;
  [key: string]: unknown;
}

const enc = encodeURIComponent;
const ago = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');

async function resolveVolume(client: CatalogClient, name: string, host: string | undefined): Promise<Volume> {
  const found = await client.all<Volume>(
    `/v1/volumes?name=${enc(name)}&includeRemoved=true${host ? `&host=${enc(host)}` : ''}`,
  );
  if (found.length === 0) {
    throw new CatalogRequestError(
      'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
      404,
      `no volume ${JSON.stringify(name)}${host ? ` on ${host}` : ''}`,
    );
  }
  const live = found.filter((v) => !v.removedAt);
  const candidates = live.length ? live : found;
  if (candidates.length > 1) {
    throw new UsageError(
      `volume ${JSON.stringify(name)} exists on several hosts (${candidates.map((v) => v.hostId).join(', ')}): add --host`,
    );
  }
  return candidates[0]!;
}

function progressLine(
  what: string,
  data: { phase?: string; files?: number; bytes?: number; bytesAdded?: number },
): string {
  return `${what}: ${data.phase ?? ''} ${data.files ?? 0} files, ${bytes(data.bytes ?? 0)}${data.bytesAdded !== undefined ? `, ${bytes(data.bytesAdded)} new` : ''}`;
}

/**
 * Follows a backup or restore until its final phase: the live stream for progress, and the
 * resource itself every second (the outcome may come before the stream is open).
 */
async function waitFor(
  client: CatalogClient,
  out: Output,
  kind: 'backups' | 'restores',
  id: string,
  what: string,
): Promise<Work> {
  const controller = new AbortController();
  let latest: Work | undefined;
  const final = (w: Work) => ['Completed', 'PartiallyFailed', 'Failed'].includes(w.phase);
  const stream = client
    .stream(
      `/v1/events/stream?work=${enc(id)}`,
      (event) => {
        if (event.event === 'progress') out.progress(progressLine(what, JSON.parse(event.data) as never));
        else if (/\.(completed|partially-failed|failed)\.v\d+$/.test(event.event)) return true;
        return false;
      },
      controller.signal,
    )
    .catch(() => undefined);
  try {
    for (;;) {
      latest = await client.get<Work>(`/v1/${kind}/${enc(id)}`);
      if (final(latest)) return latest;
      if (latest.phase === 'Queued') out.progress(`${what}: queued`);
      await Promise.race([stream, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
  } finally {
    controller.abort();
  }
}

interface RestorePlanEntries {
  count: number;
  bytes: number;
  paths: string[];
}
type RestorePlan = Record<'written' | 'replaced' | 'leftAlone', RestorePlanEntries>;

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

function workExit(work: Work): number {
  if (work.phase === 'PartiallyFailed') return 3;
  if (work.phase === 'Failed') return 4;
  return 0;
}

/** Runs a catalog command; returns the exit code. */
export async function runCatalogCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        catalog: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        host: { type: 'string' },
        volume: { type: 'string' },
        all: { type: 'boolean' },
        wait: { type: 'boolean', short: 'w' },
        'to-volume': { type: 'string' },
        existing: { type: 'boolean' },
        'stop-containers': { type: 'boolean' },
        path: { type: 'string' },
        'target-dir': { type: 'string' },
        'dry-run': { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
        type: { type: 'string', multiple: true },
        default: { type: 'boolean' },
        cron: { type: 'string' },
        timezone: { type: 'string' },
        'keep-last': { type: 'string' },
        'keep-hourly': { type: 'string' },
        'keep-daily': { type: 'string' },
        'keep-weekly': { type: 'string' },
        'keep-monthly': { type: 'string' },
        'keep-yearly': { type: 'string' },
        exclude: { type: 'string', multiple: true },
        consistency: { type: 'string' },
        disabled: { type: 'boolean' },
        snapshots: { type: 'string' },
      },
    });
  } catch (error) {
    process.stderr.write(`volback: ${(error as Error).message}\n\n${CATALOG_USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(`${CATALOG_USAGE}\n`);
    return 0;
  }
  const out = createOutput(Boolean(v.json));
  const client = new CatalogClient({
    url: v.catalog ?? process.env['VOLBACK_CATALOG_URL'] ?? 'http://127.0.0.1:8080',
    token: v.token ?? process.env['VOLBACK_TOKEN'],
  });
  const [command, ...args] = positionals;
  try {
    return await run(command!, args);
  } catch (error) {
    const err = error as Error & { code?: string };
    if (error instanceof UsageError) {
      process.stderr.write(`volback: ${err.message}\n\n${CATALOG_USAGE}\n`);
      return 2;
    }
    if (v.json)
      process.stdout.write(
        `${JSON.stringify({ error: { code: err.code ?? 'VOLBACK_ERROR', message: err.message } })}\n`,
      );
    process.stderr.write(`volback: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
    return error instanceof CatalogRequestError ? exitCodeOf(error) : 1;
  }

  async function run(command: string, args: string[]): Promise<number> {
    const arg = (i: number, name: string) => {
      const value = args[i];
      if (!value) throw new UsageError(`${command}: missing <${name}>`);
      return value;
    };
    switch (command) {
      case 'status': {
        const s = await client.get<{
          hosts: { total: number; online: number; offline: number };
          volumes: Record<string, number>;
          backups: { running: number; queued: number; failedLast24h: number; lastCompletedAt: string | null };
          restores: { running: number; queued: number };
          snapshots: number;
          policies: number;
        }>('/v1/status');
        out.result(s, () =>
          [
            `hosts      ${s.hosts.online} online, ${s.hosts.offline} offline`,
            `volumes    ${s.volumes['total']} (${s.volumes['protected']} protected, ${s.volumes['atRisk']} at risk, ${s.volumes['unprotected']} never backed up)`,
            `backups    ${s.backups.running} running, ${s.backups.queued} queued, ${s.backups.failedLast24h} failed in 24 h, last completed ${ago(s.backups.lastCompletedAt)}`,
            `restores   ${s.restores.running} running, ${s.restores.queued} queued`,
            `snapshots  ${s.snapshots}`,
            `policies   ${s.policies}`,
          ].join('\n'),
        );
        return s.volumes['atRisk'] ? 0 : 0;
      }
      case 'hosts': {
        const hosts = await client.all<{
          hostId: string;
          name: string;
          status: string;
          lastSeenAt: string | null;
          volumes: number | null;
          containers: number | null;
        }>('/v1/hosts');
        out.result(hosts, () =>
          table(
            ['HOST', 'NAME', 'STATUS', 'LAST SEEN', 'VOLUMES', 'CONTAINERS'],
            hosts.map((h) => [
              h.hostId,
              h.name,
              h.status,
              ago(h.lastSeenAt),
              String(h.volumes ?? '-'),
              String(h.containers ?? '-'),
            ]),
          ),
        );
        return 0;
      }
      case 'volumes': {
        const volumes = await client.all<Volume>(
          `/v1/volumes?includeRemoved=${v.all ? 'true' : 'false'}${v.host ? `&host=${enc(v.host)}` : ''}`,
        );
        out.result(volumes, () =>
          table(
            ['HOST', 'VOLUME', 'PROTECTION', 'LAST SUCCESS', 'LAST BACKUP', 'NEXT DUE', 'SIZE', 'USED BY'],
            volumes.map((x) => [
              x.hostId,
              x.volumeName,
              x.protection.status,
              ago(x.protection.lastSuccessAt),
              x.protection.lastBackup?.phase ?? '-',
              ago(x.protection.nextDueAt ?? null),
              x.sizeBytes === null ? '-' : bytes(x.sizeBytes),
              x.usedBy.map((u) => u.containerName).join(',') || '-',
            ]),
          ),
        );
        return 0;
      }
      case 'snapshots': {
        const volume = await resolveVolume(client, arg(0, 'volume'), v.host);
        const snapshots = await client.all<Snapshot>(
          `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/snapshots`,
        );
        out.result(snapshots, () =>
          table(
            ['ID', 'TIME', 'HOST', 'VOLUME', 'FILES', 'READ', 'ADDED', ''],
            snapshots.map((s) => [
              s.shortId,
              ago(s.time),
              s.hostId,
              s.volumeName,
              String(s.stats.filesNew + s.stats.filesChanged + s.stats.filesUnmodified),
              bytes(s.stats.bytesRead),
              bytes(s.stats.bytesAdded),
              s.partial ? 'partial' : '',
            ]),
          ),
        );
        return 0;
      }
      case 'ls': {
        const tree = await client.get<{
          path: string;
          entries: Array<{ path: string; type: string; size: number | null; mtime: string | null }>;
        }>(`/v1/snapshots/${enc(arg(0, 'snapshot'))}/tree?path=${enc(args[1] ?? '/')}`);
        out.result(tree.entries, () =>
          tree.entries
            .map(
              (e) =>
                `${e.type.padEnd(7)} ${(e.size === null ? '' : bytes(e.size)).padStart(10)}  ${(e.mtime ?? '').slice(0, 19)}  ${e.path}${e.type === 'dir' ? '/' : ''}`,
            )
            .join('\n'),
        );
        return 0;
      }
      case 'find': {
        const glob = arg(0, 'glob');
        const volumes = v.volume
          ? [await resolveVolume(client, v.volume, v.host)]
          : await client.all<Volume>(`/v1/volumes${v.host ? `?host=${enc(v.host)}` : ''}`);
        const found: Array<{
          hostId: string;
          volumeName: string;
          path: string;
          type: string;
          size: number | null;
          snapshotId: string;
          snapshotTime: string;
        }> = [];
        for (const volume of volumes) {
          const res = await client.get<{
            items: Array<{
              path: string;
              type: string;
              size: number | null;
              snapshotId: string;
              snapshotTime: string;
            }>;
          }>(
            `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/find?glob=${enc(glob)}${v.snapshots ? `&snapshots=${enc(v.snapshots)}` : ''}`,
          );
          found.push(
            ...res.items.map((i) => ({ ...i, hostId: volume.hostId, volumeName: volume.volumeName })),
          );
        }
        out.result(found, () =>
          table(
            ['SNAPSHOT', 'TIME', 'VOLUME', 'PATH', 'SIZE'],
            found.map((f) => [
              f.snapshotId.slice(0, 8),
              ago(f.snapshotTime),
              f.volumeName,
              f.path,
              f.size === null ? '-' : bytes(f.size),
            ]),
          ),
        );
        return found.length ? 0 : 5;
      }
      case 'backup': {
        const volume = await resolveVolume(client, arg(0, 'volume'), v.host);
        const { backupId } = await client.send<{ backupId: string }>(
          'POST',
          `/v1/hosts/${enc(volume.hostId)}/volumes/${enc(volume.volumeName)}/backups`,
          { requestedBy: 'volback-cli' },
        );
        if (!v.wait) {
          out.result({ backupId, phase: 'Queued' }, () => `backup ${backupId} queued`);
          return 0;
        }
        const work = await waitFor(client, out, 'backups', backupId, `backing up ${volume.volumeName}`);
        const stats = work['stats'] as Snapshot['stats'] | null;
        out.result(work, () =>
          work.phase === 'Failed'
            ? `backup ${backupId} failed: ${work.error?.reason ?? ''} (${work.error?.code ?? ''})`
            : `backup ${backupId} ${work.phase === 'Completed' ? 'completed' : 'partially failed'}: snapshot ${String(work['snapshotId']).slice(0, 8)}, ${bytes(stats?.bytesRead ?? 0)} read, ${bytes(stats?.bytesAdded ?? 0)} new`,
        );
        return workExit(work);
      }
      case 'restore': {
        const snapshotId = arg(0, 'snapshot');
        const toVolume = v['to-volume'];
        if (!toVolume)
          throw new UsageError('restore: --to-volume <name> is required (or download with dump)');
        const { restoreId } = await client.send<{ restoreId: string }>('POST', '/v1/restores', {
          snapshotId,
          target: v.existing
            ? { kind: 'existing-volume', volumeName: toVolume, stopContainers: Boolean(v['stop-containers']) }
            : { kind: 'new-volume', volumeName: toVolume },
          ...(v.path ? { path: v.path } : {}),
          ...(v['target-dir'] ? { targetPath: v['target-dir'] } : {}),
          ...(v['dry-run'] ? { dryRun: true } : {}),
          ...(v.host ? { hostId: v.host } : {}),
          requestedBy: 'volback-cli',
        });
        // A dry run's answer is its plan: always wait for it.
        if (!v.wait && !v['dry-run']) {
          out.result({ restoreId, phase: 'Queued' }, () => `restore ${restoreId} queued`);
          return 0;
        }
        const into = `${toVolume}${v['target-dir'] ? `:${v['target-dir']}` : ''}`;
        const work = await waitFor(
          client,
          out,
          'restores',
          restoreId,
          `${v['dry-run'] ? 'planning a restore into' : 'restoring into'} ${into}`,
        );
        out.result(work, () =>
          work.phase !== 'Completed'
            ? `restore ${restoreId} failed: ${work.error?.reason ?? ''} (${work.error?.code ?? ''})`
            : work['plan']
              ? planText(restoreId, into, work['plan'] as RestorePlan)
              : `restore ${restoreId} completed: ${String(work['files'])} files, ${bytes(Number(work['bytes'] ?? 0))} into ${into}`,
        );
        return workExit(work);
      }
      case 'dump': {
        if (process.stdout.isTTY)
          throw new UsageError('dump writes a tar stream: redirect it (> file.tar) or pipe it');
        const body = await client.download(
          `/v1/snapshots/${enc(arg(0, 'snapshot'))}/tar?path=${enc(args[1] ?? '/')}`,
        );
        await pipeline(Readable.fromWeb(body as never), process.stdout);
        return 0;
      }
      case 'policies':
        return policies(args);
      case 'events': {
        const query = new URLSearchParams();
        if (v.host) query.set('host', v.host);
        if (v.volume) query.set('volume', v.volume);
        if (v.type?.length) query.set('type', v.type.join(','));
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort());
        await client.stream(
          `/v1/events/stream?${query}`,
          (event) => {
            const envelope = JSON.parse(event.data) as {
              type: string;
              time: string;
              subject: string;
              data: unknown;
            };
            if (v.json) process.stdout.write(`${event.data}\n`);
            else
              process.stdout.write(
                `${envelope.time}  ${envelope.type.replace(/^io\.volback\./, '')}  ${envelope.subject}\n`,
              );
          },
          controller.signal,
        );
        return 0;
      }
      case 'catalog': {
        if (args[0] !== 'rebuild') throw new UsageError('catalog: only "catalog rebuild"');
        await client.send('POST', '/v1/admin/rebuild');
        out.result({ status: 'accepted' }, () => 'the catalog is replaying the event log');
        return 0;
      }
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  }

  async function policies(args: string[]): Promise<number> {
    const [sub = 'list', id] = args;
    switch (sub) {
      case 'list': {
        const items = await client.all<{
          policyId: string;
          scope: { kind: string; hostId?: string; volumeName?: string };
          origin: string;
          policy: { schedule?: { cron: string }; enabled?: boolean };
        }>('/v1/policies');
        out.result(items, () =>
          table(
            ['POLICY', 'SCOPE', 'ORIGIN', 'SCHEDULE', 'ENABLED'],
            items.map((p) => [
              p.policyId,
              p.scope.kind === 'volume' ? `${p.scope.hostId}/${p.scope.volumeName}` : 'default',
              p.origin,
              p.policy.schedule?.cron ?? '-',
              p.policy.enabled === false ? 'no' : 'yes',
            ]),
          ),
        );
        return 0;
      }
      case 'show': {
        if (!id) throw new UsageError('policies show <id>');
        const policy = await client.get<unknown>(`/v1/policies/${enc(id)}`);
        out.result(policy, () => JSON.stringify(policy, null, 2));
        return 0;
      }
      case 'remove': {
        if (!id) throw new UsageError('policies remove <id>');
        const res = await client.send<unknown>('DELETE', `/v1/policies/${enc(id)}?requestedBy=volback-cli`);
        out.result(res, () => `removal of policy ${id} sent to the scheduler`);
        return 0;
      }
      case 'set': {
        if (!id) throw new UsageError('policies set <id> …');
        if (!v.cron) throw new UsageError('policies set: --cron is required');
        let scope: object;
        if (v.default) scope = { kind: 'default' };
        else if (v.volume) {
          const volume = await resolveVolume(client, v.volume, v.host);
          scope = { kind: 'volume', hostId: volume.hostId, volumeName: volume.volumeName };
        } else throw new UsageError('policies set: --default or --volume <name>');
        const count = (name: string) => {
          const raw = v[name as keyof typeof v] as string | undefined;
          if (raw === undefined) return undefined;
          if (!/^\d+$/.test(raw)) throw new UsageError(`--${name}: a whole number`);
          return Number(raw);
        };
        const retention = Object.fromEntries(
          (
            [
              ['keepLast', 'keep-last'],
              ['keepHourly', 'keep-hourly'],
              ['keepDaily', 'keep-daily'],
              ['keepWeekly', 'keep-weekly'],
              ['keepMonthly', 'keep-monthly'],
              ['keepYearly', 'keep-yearly'],
            ] as const
          )
            .map(([key, flag]) => [key, count(flag)])
            .filter(([, n]) => n !== undefined),
        );
        const res = await client.send<unknown>('PUT', `/v1/policies/${enc(id)}`, {
          scope,
          policy: {
            enabled: !v.disabled,
            schedule: { cron: v.cron, ...(v.timezone ? { timezone: v.timezone } : {}) },
            retention,
            ...(v.exclude ? { excludes: v.exclude } : {}),
            ...(v.consistency ? { consistency: { mode: v.consistency } } : {}),
          },
          requestedBy: 'volback-cli',
        });
        out.result(res, () => `policy ${id} sent to the scheduler`);
        return 0;
      }
      default:
        throw new UsageError(`policies: unknown subcommand ${sub}`);
    }
  }
}
