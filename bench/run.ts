// `npm run bench [-- --size 1G] [-- --shape mixed] [-- --runs 3] [-- --json]`: volback against
// restic (Debian's, and the newest, built into the cache by the bench's set-up) on the same data in
// the same run: full backup, incremental backup after ~1% of the data changed, a backup with
// nothing changed, full restore. Prints wall seconds, MB/s, CPU seconds, peak RSS and repository
// bytes added per shape, tool and phase (medians of the runs, each on a fresh dataset and fresh
// repositories), and the load average. Every restore is compared with its source byte for byte
// after it is timed; a difference fails the run.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E2eBench, type E2eMeasure } from './e2e.ts';
import {
  changeOnePercent,
  makeDataset,
  SHAPES,
  type Shape,
} from '../libs/repository/src/test-support/volume-shapes.ts';
import { assertSameTree } from './verify.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    /** The dataset (libs/repository/src/test-support/volume-shapes.ts). */
    shape: { type: 'string', default: 'few-large' },
    json: { type: 'boolean', default: false },
    dir: { type: 'string' },
    /** Whole runs (fresh dataset and repositories each); every figure is the median. */
    runs: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
    /** Leave out the end-to-end path (needs root for a private Docker Engine). */
    'no-e2e': { type: 'boolean', default: false },
    /** Write V8 CPU profiles of every volback process (CLI, agent, gateway, their workers) here. */
    'cpu-prof': { type: 'string' },
    /** Drop the page cache before every measured command (needs root). */
    cold: { type: 'boolean', default: false },
    /** Only these tools, comma-separated (volback,restic,restic-0.19.1,rustic-0.11.4): for iterating. */
    tools: { type: 'string' },
  },
});

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`--size: not a size: ${text} (e.g. 256M, 1G)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * unit);
}

const MiB = 1024 * 1024;
/** The newest restic release, compared with when built (`restic-latest` in scripts/install-servers.sh). */
const RESTIC_LATEST = '0.19.1';
/** rustic, the fastest implementation of the format (`rustic` in scripts/install-servers.sh). */
const RUSTIC = '0.11.4';

function dirBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

interface Measure {
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

/**
 * Before every measured command and end-to-end phase: the previous one's dirty pages written out
 * (a restore leaves hundreds of MiB; without this the next tool's run pays for their writeback),
 * and with `--cold` the page cache dropped, so every tool reads its source or repository from the
 * disk.
 */
function settle(): void {
  execFileSync('sync');
  if (values.cold) writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

/** Runs a command under GNU time: wall, user+system CPU (children included), peak RSS. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measure> {
  settle();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'VOLBACK_TIME %e %U %S %M', cmd, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const m = /VOLBACK_TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${err}`));
      resolvePromise({
        wallSeconds: Number(m[1]),
        cpuSeconds: Number(m[2]) + Number(m[3]),
        peakRssBytes: Number(m[4]) * 1024,
      });
    });
  });
}

const root = resolve(new URL('..', import.meta.url).pathname);
const size = parseSize(values.size!);
if (!(SHAPES as readonly string[]).includes(values.shape!))
  throw new Error(`--shape: one of ${SHAPES.join(', ')}, not ${values.shape}`);
const shape = values.shape as Shape;
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: a whole number ≥ 1, not ${values.runs}`);
const work = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'volback-bench-'));
const data = join(work, 'data');
mkdirSync(data, { recursive: true });
const log = (line: string) => process.stderr.write(`${line}\n`);
/**
 * Nothing is deleted until every run is done: a run's dataset, repositories and restores are moved
 * aside instead. This disk's ext4 has no journal, and such an ext4 does not reuse an inode for 60 s
 * after its deletion (300 s while its inode table block is unwritten): each file created meanwhile
 * looks through the recently freed ones (`recently_deleted` in the kernel's profile). Restores of
 * `many-small` right after the previous run's 100,000 deletions took 2-4 times as long, for restic
 * as for volback (restic 0.19.1: 4.7 s, then 8-12 s with 11-16 system-s).
 */
const kept = join(work, 'kept');
let keptCount = 0;
function setAside(path: string): void {
  if (!existsSync(path)) return;
  mkdirSync(kept, { recursive: true });
  renameSync(path, join(kept, `${++keptCount}`));
}
const load = () => execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ');
const loadBefore = load();

const env = {
  ...process.env,
  VOLBACK_PASSWORD: 'bench',
  RESTIC_PASSWORD: 'bench',
  RUSTIC_PASSWORD: 'bench',
  RESTIC_CACHE_DIR: join(work, 'restic-cache'),
  // volback's chunk cache (per repository, so each run starts without one) and compile cache.
  VOLBACK_CACHE_DIR: join(work, 'volback-cache'),
};
const cacheBin = join(
  process.env.VOLBACK_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'volback'),
  'bin',
);
/** The newest restic, when the set-up built it (scripts/install-servers.sh restic-latest). */
const resticLatest = join(cacheBin, `restic-${RESTIC_LATEST}`);
/** rustic, when the set-up built it (scripts/install-servers.sh rustic). */
const rustic = join(cacheBin, `rustic-${RUSTIC}`);
/** rustic's options before its command: its own cache in the bench's directory, no progress bars. */
const rusticGlobal = (repo: string) => [
  '-r',
  repo,
  '--cache-dir',
  join(work, 'rustic-cache'),
  '--no-progress',
];
const resticTool = (bin: string) => ({
  init: (repo: string) => [bin, ['-r', repo, 'init', '--repository-version', '2']] as const,
  backup: (repo: string) => [bin, ['-r', repo, 'backup', data, '-q']] as const,
  restore: (repo: string, target: string) =>
    [bin, ['-r', repo, 'restore', 'latest', '--target', target]] as const,
});
/**
 * The command as bin/volback runs it: Node with the CLI's flags (tools/cli/bin/node-flags), the
 * bundle scripts/build-cli.sh made (npm run bench runs it first).
 */
const volbackEntry = [
  ...readFileSync(join(root, 'tools/cli/bin/node-flags'), 'utf8').split(/\s+/).filter(Boolean),
  join(root, 'tools/cli/bin/volback.mjs'),
];
const tools = {
  volback: {
    init: (repo: string) => [process.execPath, [...volbackEntry, 'repo', 'init', '--repo', repo]] as const,
    backup: (repo: string) =>
      [process.execPath, [...volbackEntry, 'repo', 'backup', data, '--repo', repo]] as const,
    restore: (repo: string, target: string) =>
      [
        process.execPath,
        [...volbackEntry, 'repo', 'restore', 'latest', '--repo', repo, '--target', target],
      ] as const,
  },
  restic: resticTool('restic'),
  [`restic-${RESTIC_LATEST}`]: resticTool(resticLatest),
  [`rustic-${RUSTIC}`]: {
    init: (repo: string) => [rustic, [...rusticGlobal(repo), 'init']] as const,
    backup: (repo: string) => [rustic, [...rusticGlobal(repo), 'backup', data]] as const,
    restore: (repo: string, target: string) =>
      [rustic, [...rusticGlobal(repo), 'restore', 'latest', target]] as const,
  },
} as const;
type Tool = 'volback' | 'restic' | `restic-${typeof RESTIC_LATEST}` | `rustic-${typeof RUSTIC}`;
const available: Tool[] = ['volback', 'restic'];
if (existsSync(resticLatest)) available.push(`restic-${RESTIC_LATEST}`);
else log(`bench: ${resticLatest} missing (sh scripts/install-servers.sh restic-latest): not measured`);
if (existsSync(rustic)) available.push(`rustic-${RUSTIC}`);
else log(`bench: ${rustic} missing (sh scripts/install-servers.sh rustic): not measured`);
const chosen = values.tools?.split(',').map((t) => t.trim());
for (const tool of chosen ?? [])
  if (!available.includes(tool as Tool))
    throw new Error(`--tools: ${tool} is not one of ${available.join(', ')} (the ones installed here)`);
const measured = chosen ? available.filter((tool) => chosen.includes(tool)) : available;

interface Row extends Measure {
  shape: Shape;
  tool: Tool | 'volback-e2e';
  phase: 'backup-full' | 'backup-incremental' | 'backup-unchanged' | 'restore';
  mbPerSecond: number;
  repoBytesAdded: number;
}
/** Every run's rows; the table shows their medians. */
const allRows: Row[] = [];
const repos = Object.fromEntries(measured.map((tool) => [tool, join(work, `repo-${tool}`)])) as Record<
  Tool,
  string
>;
const emit = (row: Row) => {
  allRows.push(row);
  if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
};
const toolEnv = (tool: Tool): NodeJS.ProcessEnv =>
  tool === 'volback' && volbackNodeOptions ? { ...env, NODE_OPTIONS: volbackNodeOptions } : env;

/** One backup per tool; `sourceBytes` is what MB/s is counted against. */
async function backupPhase(
  phase: 'backup-full' | 'backup-incremental' | 'backup-unchanged',
  sourceBytes: number,
): Promise<void> {
  for (const tool of measured) {
    const before = dirBytes(repos[tool]);
    const [c, a] = tools[tool].backup(repos[tool]);
    const m = await measure(c, [...a], toolEnv(tool));
    emit({
      shape,
      tool,
      phase,
      ...m,
      mbPerSecond: sourceBytes / MiB / m.wallSeconds,
      repoBytesAdded: dirBytes(repos[tool]) - before,
    });
  }
}

const profile = values['cpu-prof'];
const volbackNodeOptions = profile ? `--cpu-prof --cpu-prof-dir=${resolve(profile)}` : undefined;
let e2e: E2eBench | undefined;
const emitE2e = (phase: Row['phase'], bytes: number, m: E2eMeasure) =>
  emit({ shape, tool: 'volback-e2e', phase, ...m, mbPerSecond: bytes / MiB / m.wallSeconds });

/** One whole run: a fresh dataset and repositories; end-to-end backups in the first run, restores in every run. */
async function oneRun(run: number): Promise<void> {
  setAside(data);
  mkdirSync(data, { recursive: true });
  for (const tool of measured) setAside(repos[tool]);
  log(`bench: run ${run}/${runs}: building a ${(size / MiB).toFixed(0)} MiB ${shape} dataset in ${data}`);
  const { files } = makeDataset(shape, data, size);
  const dataBytes = dirBytes(data);
  log(`bench: ${files} files, ${(dataBytes / MiB).toFixed(1)} MiB`);
  for (const tool of measured) {
    const [c, a] = tools[tool].init(repos[tool]);
    execFileSync(c, [...a], { env, stdio: 'ignore' });
  }
  if (run === 1 && !values['no-e2e'])
    e2e = await E2eBench.start(work, data, env.VOLBACK_PASSWORD, volbackNodeOptions);
  const withE2e = run === 1 ? e2e : undefined;
  // Full backups, then the change, then incrementals, then restores; tools alternate per phase.
  await backupPhase('backup-full', dataBytes);
  if (withE2e) {
    settle();
    emitE2e('backup-full', dataBytes, await withE2e.backup());
  }
  changeOnePercent(shape, data, size);
  if (withE2e) changeOnePercent(shape, withE2e.mountpoint, size); // the same changes (seeded) in the volume
  const changedBytes = dirBytes(data);
  await backupPhase('backup-incremental', changedBytes);
  if (withE2e) {
    settle();
    emitE2e('backup-incremental', changedBytes, await withE2e.backup());
  }
  await backupPhase('backup-unchanged', changedBytes);
  // Restores are kept until the bench ends ({@link setAside}). Their order turns by one each run:
  // on this VM, after about 750 MiB of new page cache the next
  // restore's writes cost several times more in the kernel (restic 0.19.1's `database` restore
  // 1.0 s -> 1.4 s, sys 0.15 -> 0.85 s, the same for volback), so a fixed order favoured the tools
  // restoring first (the end-to-end restore, last, measured 1.31-1.46x restic that way, and
  // 0.98-1.11x against a restic restore run next to it).
  const targets = measured.map((tool) => join(work, `restore-${tool}`));
  for (const target of targets) setAside(target);
  const order: (Tool | 'volback-e2e')[] = [...measured, ...(e2e ? (['volback-e2e'] as const) : [])];
  for (const tool of order.map((_, i) => order[(i + run - 1) % order.length]!)) {
    if (tool === 'volback-e2e') {
      settle();
      const { restoredTo, ...m } = await e2e!.restore();
      const verified = await assertSameTree(e2e!.mountpoint, restoredTo, 'volback-e2e restore');
      log(
        `bench: volback-e2e restore verified: ${verified.files} files, ${(verified.bytes / MiB).toFixed(1)} MiB equal`,
      );
      emitE2e('restore', changedBytes, { ...m, repoBytesAdded: 0 });
      continue;
    }
    const target = join(work, `restore-${tool}`);
    const [c, a] = tools[tool].restore(repos[tool], target);
    const m = await measure(c, [...a], toolEnv(tool));
    // Not timed: the restore is the source, byte for byte (restic puts it under its absolute path).
    const restored = existsSync(join(target, data)) ? join(target, data) : target;
    const verified = await assertSameTree(data, restored, `${tool} restore`);
    log(
      `bench: ${tool} restore verified: ${verified.files} files, ${(verified.bytes / MiB).toFixed(1)} MiB equal`,
    );
    emit({
      shape,
      tool,
      phase: 'restore',
      ...m,
      mbPerSecond: changedBytes / MiB / m.wallSeconds,
      repoBytesAdded: 0,
    });
  }
  for (const target of targets) setAside(target);
}

try {
  for (let run = 1; run <= runs; run++) await oneRun(run);
} finally {
  await e2e?.removeRestores();
  await e2e?.stop();
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
/** One row per tool and phase, each figure the median of its runs. */
const rows: Row[] = [];
for (const row of allRows) {
  if (rows.some((r) => r.tool === row.tool && r.phase === row.phase)) continue;
  const same = allRows.filter((r) => r.tool === row.tool && r.phase === row.phase);
  const of = (field: 'wallSeconds' | 'cpuSeconds' | 'peakRssBytes' | 'mbPerSecond' | 'repoBytesAdded') =>
    median(same.map((r) => r[field]));
  rows.push({
    ...row,
    wallSeconds: of('wallSeconds'),
    cpuSeconds: of('cpuSeconds'),
    peakRssBytes: of('peakRssBytes'),
    mbPerSecond: of('mbPerSecond'),
    repoBytesAdded: of('repoBytesAdded'),
  });
}
log(`bench: load average ${loadBefore} before, ${load()} after; ${runs} run(s), medians`);

if (!values.json) {
  const header = [
    'shape',
    'phase',
    'tool',
    'wall s',
    'MB/s',
    'CPU s',
    'peak RSS MiB',
    'repo +MiB',
    'vs restic (wall)',
    `vs ${RESTIC_LATEST}`,
    `CPU vs ${RESTIC_LATEST}`,
    `vs rustic`,
    `CPU vs rustic`,
  ];
  const lines = rows.map((r) => {
    const ratio = (tool: string, field: 'wallSeconds' | 'cpuSeconds' = 'wallSeconds') => {
      const other = rows.find((o) => o.phase === r.phase && o.tool === tool);
      return !r.tool.startsWith('volback') || !other ? '' : `${(r[field] / other[field]).toFixed(2)}x`;
    };
    return [
      r.shape,
      r.phase,
      r.tool,
      r.wallSeconds.toFixed(2),
      r.mbPerSecond.toFixed(1),
      r.cpuSeconds.toFixed(2),
      (r.peakRssBytes / MiB).toFixed(0),
      (r.repoBytesAdded / MiB).toFixed(1),
      ratio('restic'),
      ratio(`restic-${RESTIC_LATEST}`),
      ratio(`restic-${RESTIC_LATEST}`, 'cpuSeconds'),
      ratio(`rustic-${RUSTIC}`),
      ratio(`rustic-${RUSTIC}`, 'cpuSeconds'),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const l of [header, ...lines])
    process.stdout.write(`${l.map((c, i) => c.padStart(widths[i]!)).join('  ')}\n`);
}
if (!values.keep && !values.dir) {
  rmSync(work, { recursive: true, force: true });
  // A measurement on this disk right after (the next shape's bench) would pay for these deletions.
  execFileSync('sync');
  log('bench: waiting 60 s for ext4 to let the deleted inodes be used again');
  await new Promise((done) => setTimeout(done, 60_000));
}
