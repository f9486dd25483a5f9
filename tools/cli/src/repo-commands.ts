import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir, hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { pipeline } from 'node:stream/promises';
import {
  backup,
  check,
  dumpTar,
  forget,
  formatChunkerPolynomial,
  listSnapshot,
  openBackend,
  prune,
  randomIrreduciblePolynomial,
  Repository,
  restore,
  type ForgetPolicy,
} from '@volback/repository';
import { bytes, table, type Output } from './output.ts';
import { UsageError } from './usage-error.ts';

/** Parsed options shared by the `repo` commands. */
export interface RepoFlags {
  repo?: string;
  'password-file'?: string;
  json?: boolean;
  tag?: string[];
  host?: string[];
  path?: string[];
  parent?: string;
  /** false with `--no-cache`: no chunk cache. */
  cache?: boolean;
  /** `--with-atime`: record access times (else a node's atime is its mtime). */
  'with-atime'?: boolean;
  target?: string;
  'read-data'?: boolean;
  'read-data-subset'?: string;
  'dry-run'?: boolean;
  prune?: boolean;
  'keep-last'?: string;
  'keep-hourly'?: string;
  'keep-daily'?: string;
  'keep-weekly'?: string;
  'keep-monthly'?: string;
  'keep-yearly'?: string;
  'keep-within'?: string;
  'keep-within-hourly'?: string;
  'keep-within-daily'?: string;
  'keep-within-weekly'?: string;
  'keep-within-monthly'?: string;
  'keep-within-yearly'?: string;
  'keep-tag'?: string[];
  'max-unused'?: string;
  'new-password-file'?: string;
}

/**
 * The chunk cache of one backup source: below the cache directory (`VOLBACK_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/volback`, else `~/.cache/volback`), per repository, host and source path.
 */
function chunkCacheDir(env: NodeJS.ProcessEnv, repoId: string, hostname: string, source: string): string {
  const root =
    env['VOLBACK_CACHE_DIR'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'volback');
  const key = createHash('sha256').update(`${hostname}\0${source}`).digest('hex').slice(0, 32);
  return join(root, 'chunks', repoId, key);
}

/** Exit code of a run whose result is partial (restic uses 3 for a backup with unreadable files). */
export const EXIT_PARTIAL = 3;

async function password(flags: RepoFlags, env: NodeJS.ProcessEnv): Promise<string> {
  if (flags['password-file']) {
    const text = (await readFile(flags['password-file'], 'utf8')).replace(/\r?\n$/, '');
    if (!text) throw new UsageError(`password file ${flags['password-file']} is empty`);
    return text;
  }
  const fromEnv = env['VOLBACK_PASSWORD'] ?? env['RESTIC_PASSWORD'];
  if (!fromEnv) throw new UsageError('no password: set VOLBACK_PASSWORD or pass --password-file');
  return fromEnv;
}

function location(flags: RepoFlags, env: NodeJS.ProcessEnv): string {
  const repo = flags.repo ?? env['VOLBACK_REPOSITORY'] ?? env['RESTIC_REPOSITORY'];
  if (!repo) throw new UsageError('no repository: pass --repo <path|s3:http://host:port/bucket[/prefix]>');
  return repo;
}

function count(flags: RepoFlags, name: keyof RepoFlags): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new UsageError(`--${name} must be a whole number, got ${String(raw)}`);
  return value;
}

function fraction(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(raw);
  const value = m ? Number(m[1]) / 100 : Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new UsageError(`not a share between 0 and 1 (or 0%-100%): ${raw}`);
  return value;
}

function positional(args: readonly string[], index: number, what: string): string {
  const value = args[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

/** Runs one `volback repo <command>`; returns the exit code. */
export async function runRepoCommand(
  command: string,
  args: readonly string[],
  flags: RepoFlags,
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const backend = openBackend(location(flags, env), env);
  let repo: Repository | undefined;
  try {
    if (command === 'init') {
      const pol = formatChunkerPolynomial(randomIrreduciblePolynomial());
      const repo = await Repository.init(backend, await password(flags, env), { chunkerPolynomial: pol });
      out.result(
        { id: repo.config.id, location: backend.location, version: repo.version },
        () =>
          `created volback repository ${repo.config.id.slice(0, 10)} at ${backend.location} (restic format v${repo.version})\n` +
          'Keep the password safe: without it the data cannot be read.',
      );
      return 0;
    }
    repo = await Repository.open(backend, await password(flags, env));
    switch (command) {
      case 'backup': {
        const source = positional(args, 0, 'the directory to back up');
        const hostname = flags.host?.[0] ?? osHostname();
        const summary = await backup(repo, {
          source,
          ...(flags.cache === false
            ? {}
            : { chunkCacheDir: chunkCacheDir(env, repo.config.id, hostname, resolve(source)) }),
          ...(flags.parent ? { parent: flags.parent } : {}),
          ...(flags['with-atime'] ? { withAtime: true } : {}),
          hostname,
          ...(flags.tag?.length ? { tags: flags.tag } : {}),
          onProgress: (p) =>
            out.progress(
              `${p.files} files, ${bytes(p.bytesRead)} read, ${bytes(p.bytesAdded)} added  ${p.currentPath}`,
            ),
          onError: (path, error) => out.warn(`${path}: ${error.message}`),
          onWarning: (path, error) => out.warn(`${path}: ${error.message}`),
        });
        out.result(summary, () =>
          [
            `Files: ${summary.filesNew} new, ${summary.filesChanged} changed, ${summary.filesUnmodified} unmodified`,
            `Dirs:  ${summary.dirsNew} new, ${summary.dirsChanged} changed, ${summary.dirsUnmodified} unmodified`,
            `Added to the repository: ${bytes(summary.bytesAdded)} (${bytes(summary.bytesStored)} stored)`,
            `processed ${bytes(summary.bytesRead)} in ${(summary.durationMs / 1000).toFixed(1)}s` +
              (summary.bytesReused
                ? ` (${bytes(summary.bytesReused)} of changed files unchanged by the chunk cache)`
                : ''),
            `snapshot ${summary.snapshotId.slice(0, 8)} saved`,
            ...(summary.errors.length
              ? [`${summary.errors.length} entries could not be read (see warnings)`]
              : []),
          ].join('\n'),
        );
        return summary.errors.length ? EXIT_PARTIAL : 0;
      }
      case 'snapshots': {
        const list = await repo.listSnapshots();
        out.result(
          list.map(({ id, snapshot }) => ({ id, short_id: id.slice(0, 8), ...snapshot })),
          () =>
            table(
              ['ID', 'Time', 'Host', 'Tags', 'Paths'],
              list.map(({ id, snapshot }) => [
                id.slice(0, 8),
                snapshot.time.replace('T', ' ').slice(0, 19),
                snapshot.hostname ?? '',
                (snapshot.tags ?? []).join(','),
                snapshot.paths.join(','),
              ]),
            ) + `\n${list.length} snapshots`,
        );
        return 0;
      }
      case 'ls': {
        const snapshot = positional(args, 0, 'the snapshot id');
        const entries: Array<{ path: string; type: string; size: number; mtime: string }> = [];
        for await (const { path, node } of listSnapshot(repo, snapshot, args[1] ?? '/')) {
          entries.push({ path, type: node.type, size: node.size ?? 0, mtime: node.mtime ?? '' });
        }
        out.result(entries, () => entries.map((e) => e.path).join('\n'));
        return 0;
      }
      case 'restore': {
        const snapshot = positional(args, 0, 'the snapshot id');
        if (!flags.target) throw new UsageError('restore needs --target <directory>');
        const summary = await restore(repo, {
          snapshot,
          target: flags.target,
          ...(flags.path?.[0] ? { path: flags.path[0] } : {}),
          onProgress: (p) => out.progress(`${p.files} files, ${bytes(p.bytes)}  ${p.currentPath}`),
        });
        for (const e of [...summary.warnings, ...summary.errors]) out.warn(`${e.path}: ${e.reason}`);
        out.result(
          summary,
          () =>
            `restored ${summary.files} files, ${summary.dirs} dirs, ${bytes(summary.bytes)} of snapshot ${summary.snapshotId.slice(0, 8)} to ${flags.target}` +
            (summary.errors.length ? `\n${summary.errors.length} entries FAILED to restore` : ''),
        );
        return summary.errors.length ? 1 : 0;
      }
      case 'dump': {
        const snapshot = positional(args, 0, 'the snapshot id');
        if (process.stdout.isTTY)
          throw new UsageError('dump writes a tar archive: redirect stdout to a file or a pipe');
        await pipeline(await dumpTar(repo, snapshot, args[1] ?? '/'), process.stdout);
        return 0;
      }
      case 'check': {
        const readDataFraction = flags['read-data']
          ? 1
          : flags['read-data-subset']
            ? fraction(flags['read-data-subset'])
            : 0;
        const lock = await repo.lock(false);
        try {
          const report = await check(repo, {
            readDataFraction,
            onProgress: (p) => out.progress(`${p.phase}: ${p.done}/${p.total}`),
          });
          out.result(report, () =>
            [
              `${report.snapshots} snapshots, ${report.packs} packs (${report.packsRead} read), ${report.blobs} blobs`,
              ...report.errors.map((e) => `error: ${e}`),
              ...(report.damagedSnapshots.length
                ? [`damaged snapshots: ${report.damagedSnapshots.map((s) => s.slice(0, 8)).join(', ')}`]
                : []),
              ...(report.orphanedPacks.length
                ? [
                    `${report.orphanedPacks.length} packs are in no index (from an interrupted backup); prune removes them`,
                  ]
                : []),
              report.ok ? 'no errors were found' : 'the repository has ERRORS',
            ].join('\n'),
          );
          return report.ok ? 0 : 1;
        } finally {
          await lock.release();
        }
      }
      case 'forget': {
        const policy: ForgetPolicy = {};
        const set = (key: keyof ForgetPolicy, flag: keyof RepoFlags) => {
          const value = count(flags, flag);
          if (value !== undefined) (policy as Record<string, unknown>)[key] = value;
        };
        set('keepLast', 'keep-last');
        set('keepHourly', 'keep-hourly');
        set('keepDaily', 'keep-daily');
        set('keepWeekly', 'keep-weekly');
        set('keepMonthly', 'keep-monthly');
        set('keepYearly', 'keep-yearly');
        const durations = [
          ['keepWithin', 'keep-within'],
          ['keepWithinHourly', 'keep-within-hourly'],
          ['keepWithinDaily', 'keep-within-daily'],
          ['keepWithinWeekly', 'keep-within-weekly'],
          ['keepWithinMonthly', 'keep-within-monthly'],
          ['keepWithinYearly', 'keep-within-yearly'],
        ] as const;
        for (const [key, flag] of durations) if (flags[flag]) policy[key] = flags[flag];
        if (flags['keep-tag']?.length) policy.keepTags = flags['keep-tag'].map((t) => t.split(','));
        const decisions = await forget(repo, policy, {
          filter: {
            ...(flags.host?.length ? { hosts: flags.host } : {}),
            ...(flags.tag?.length ? { tags: flags.tag.map((t) => t.split(',')) } : {}),
            ...(flags.path?.length ? { paths: flags.path } : {}),
          },
          dryRun: Boolean(flags['dry-run']),
        });
        const removed = decisions.filter((d) => !d.keep);
        out.result(
          decisions.map((d) => ({ id: d.id, keep: d.keep, reasons: d.reasons })),
          () =>
            table(
              ['ID', 'Time', 'Host', 'Decision', 'Reasons'],
              decisions.map((d) => [
                d.id.slice(0, 8),
                d.snapshot.time.slice(0, 19),
                d.snapshot.hostname ?? '',
                d.keep ? 'keep' : 'remove',
                d.reasons.join(', '),
              ]),
            ) + `\n${flags['dry-run'] ? 'would remove' : 'removed'} ${removed.length} snapshots`,
        );
        if (flags.prune && !flags['dry-run'] && removed.length) {
          const summary = await prune(repo);
          out.result(
            summary,
            () =>
              `pruned: ${summary.packsDeleted} packs deleted, ${summary.packsRepacked} repacked, ${bytes(summary.bytesFreed)} freed`,
          );
        }
        return 0;
      }
      case 'prune': {
        const summary = await prune(repo, {
          ...(flags['max-unused'] ? { maxUnusedFraction: fraction(flags['max-unused']) } : {}),
          dryRun: Boolean(flags['dry-run']),
        });
        out.result(
          summary,
          () =>
            `${flags['dry-run'] ? 'would delete' : 'deleted'} ${summary.packsDeleted} packs, repacked ${summary.packsRepacked}, ` +
            `removed ${summary.orphanedPacksDeleted} orphaned packs, freed ${bytes(summary.bytesFreed)}`,
        );
        return 0;
      }
      case 'unlock': {
        const removed = await repo.removeStaleLocks();
        out.result({ removed }, () => `removed ${removed} stale locks`);
        return 0;
      }
      case 'key': {
        const sub = positional(args, 0, 'key list|add|remove');
        if (sub === 'list') {
          const keys = await repo.listKeys();
          out.result(keys, () =>
            table(
              ['ID', 'User', 'Host', 'Created'],
              keys.map((k) => [k.id.slice(0, 8), k.username ?? '', k.hostname ?? '', k.created ?? '']),
            ),
          );
          return 0;
        }
        if (sub === 'add') {
          if (!flags['new-password-file']) throw new UsageError('key add needs --new-password-file');
          const id = await repo.addKey(
            (await readFile(flags['new-password-file'], 'utf8')).replace(/\r?\n$/, ''),
          );
          out.result({ id }, () => `saved new key ${id.slice(0, 8)}`);
          return 0;
        }
        if (sub === 'remove') {
          const prefix = positional(args, 1, 'the key id');
          const match = (await repo.listKeys()).filter((k) => k.id.startsWith(prefix));
          if (match.length !== 1)
            throw new UsageError(match.length ? `key prefix ${prefix} is ambiguous` : `no key ${prefix}`);
          await repo.removeKey(match[0]!.id);
          out.result({ removed: match[0]!.id }, () => `removed key ${match[0]!.id.slice(0, 8)}`);
          return 0;
        }
        throw new UsageError(`unknown key command: ${sub}`);
      }
      default:
        throw new UsageError(`unknown command: repo ${command}`);
    }
  } finally {
    await repo?.close(); // stops the worker threads
    await backend.close();
  }
}

/** commander's camelCase option names as the `RepoFlags` keys (`passwordFile` → `password-file`). */
function repoFlags(options: Record<string, unknown>): RepoFlags {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), v]),
  ) as RepoFlags;
}

/** Runs a `repo` command: its positionals, its flags (with the parents'), and returns the exit code. */
export type RepoRunner = (command: Command, body: (flags: RepoFlags) => Promise<number>) => Promise<void>;

const many = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Adds `volback repo …` (the standalone repository mode) to `program`. */
export function registerRepoCommands(
  program: Command,
  run: RepoRunner,
  out: (json: boolean) => Output,
): void {
  const repo = program
    .command('repo')
    .description('standalone repository mode: a restic-format repository on a path or S3, no stack')
    .option(
      '-r, --repo <location>',
      'repository: a path or s3:http://host:port/bucket[/prefix] (VOLBACK_REPOSITORY)',
    )
    .option('-p, --password-file <file>', 'read the password from this file (else VOLBACK_PASSWORD)')
    .addHelpText(
      'after',
      '\npassword: VOLBACK_PASSWORD (or RESTIC_PASSWORD), or --password-file <file>\nS3 credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\nexit codes: 0 ok, 1 error, 2 usage, 3 partial backup, 10 no repository, 11 locked, 12 wrong password',
    );
  const action =
    (name: string) =>
    (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      const positionals = args
        .slice(0, -2)
        .flat()
        .filter((a): a is string => typeof a === 'string');
      return run(cmd, (flags) => runRepoCommand(name, positionals, flags, out(Boolean(flags.json))));
    };
  repo.command('init').description('create a repository (restic format v2)').action(action('init'));
  repo
    .command('backup')
    .description('back up a directory')
    .argument('<dir>', 'the directory')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', many)
    .option('--host <host>', 'host name to record (repeatable)', many)
    .option('--parent <id>', 'compare with this snapshot instead of the latest')
    .option('--no-cache', 'no chunk cache: cut and hash every changed file in full')
    .option(
      '--with-atime',
      'record access times (without: each entry’s atime is its mtime, as restic and rustic)',
    )
    .action(action('backup'));
  repo.command('snapshots').description('list snapshots').action(action('snapshots'));
  repo
    .command('ls')
    .description('list files of a snapshot')
    .argument('<snapshot>', 'snapshot id, prefix or latest')
    .argument('[path]', 'path inside it')
    .action(action('ls'));
  repo
    .command('restore')
    .description('restore a snapshot into a directory')
    .argument('<snapshot>', 'snapshot id, prefix or latest')
    .option('-t, --target <dir>', 'the directory to restore into')
    .option('--path <path>', 'restore only this path (repeatable)', many)
    .action(action('restore'));
  repo
    .command('dump')
    .description('a snapshot sub-tree as a tar stream (> file.tar)')
    .argument('<snapshot>', 'snapshot id, prefix or latest')
    .argument('[path]', 'path inside it')
    .action(action('dump'));
  repo
    .command('check')
    .description('check the repository')
    .option('--read-data', 'read back and verify all data')
    .option('--read-data-subset <share>', 'read back this share of the data (10% or 0.1)')
    .action(action('check'));
  repo
    .command('forget')
    .description('remove snapshots by a retention policy')
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep one per hour for n hours')
    .option('--keep-daily <n>', 'keep one per day for n days')
    .option('--keep-weekly <n>', 'keep one per week for n weeks')
    .option('--keep-monthly <n>', 'keep one per month for n months')
    .option('--keep-yearly <n>', 'keep one per year for n years')
    .option('--keep-within <duration>', 'keep every snapshot this far back (1y2m3d4h)')
    .option('--keep-within-hourly <duration>', 'keep hourly snapshots this far back')
    .option('--keep-within-daily <duration>', 'keep daily snapshots this far back')
    .option('--keep-within-weekly <duration>', 'keep weekly snapshots this far back')
    .option('--keep-within-monthly <duration>', 'keep monthly snapshots this far back')
    .option('--keep-within-yearly <duration>', 'keep yearly snapshots this far back')
    .option('--keep-tag <tag>', 'keep snapshots with this tag (repeatable)', many)
    .option('--host <host>', 'only snapshots of this host (repeatable)', many)
    .option('--tag <tag>', 'only snapshots with this tag (repeatable)', many)
    .option('--path <path>', 'only snapshots of this path (repeatable)', many)
    .option('-n, --dry-run', 'say what would be removed, remove nothing')
    .option('--prune', 'prune afterwards')
    .action(action('forget'));
  repo
    .command('prune')
    .description('remove unreferenced data')
    .option('--max-unused <share>', 'unused space to tolerate in packs (5%)')
    .option('-n, --dry-run', 'say what would be removed, remove nothing')
    .action(action('prune'));
  repo
    .command('key')
    .description('keys: list | add --new-password-file f | remove <id>')
    .argument('<action>', 'list, add or remove')
    .argument('[id]', 'the key id (remove)')
    .option('--new-password-file <file>', 'the new key password (add)')
    .action(action('key'));
  repo.command('unlock').description('remove stale locks').action(action('unlock'));
}

/** The flags of a `repo` command with its parents' (`--repo`, `--password-file`, `--json`). */
export function repoFlagsOf(command: Command): RepoFlags {
  return repoFlags(command.optsWithGlobals());
}
