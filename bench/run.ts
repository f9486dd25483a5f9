// `npm run bench [-- --size 1G] [-- --json]`: volback against restic on the same data in the same
// run: full backup, incremental backup after ~1% of the data changed, full restore. Prints wall
// seconds, MB/s, CPU seconds, peak RSS and repository bytes added per tool and phase. Every
// restore is compared with its source byte for byte after it is timed; a difference fails the run.
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E2eBench, type E2eMeasure } from './e2e.ts';
import { assertSameTree } from './verify.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    json: { type: 'boolean', default: false },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** Leave out the end-to-end path (needs root for a private Docker Engine). */
    'no-e2e': { type: 'boolean', default: false },
    /** Write V8 CPU profiles of every volback process (CLI, agent, gateway, their workers) here. */
    'cpu-prof': { type: 'string' },
  },
});

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`--size: not a size: ${text} (e.g. 256M, 1G)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * unit);
}

/** xorshift32: the same dataset on every machine. */
class Random {
  #x: number;
  constructor(seed: number) {
    this.#x = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.#x = x >>> 0);
  }
  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    return Buffer.from(words.buffer, 0, n);
  }
}

const MiB = 1024 * 1024;

/**
 * A volume-shaped dataset: database-like files (8 KiB pages, half repeated structure: about 2:1
 * compressible), thousands of small text files, and incompressible binaries.
 */
function makeDataset(root: string, total: number): { files: number } {
  const rnd = new Random(42);
  let files = 0;
  const db = join(root, 'postgres/base');
  const small = join(root, 'app/uploads');
  const bin = join(root, 'media');
  for (const d of [db, small, bin]) mkdirSync(d, { recursive: true });
  // 50% database pages, in 64 MiB files.
  let left = Math.floor(total * 0.5);
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 64 * MiB);
    const fd = openSync(join(db, `1663_${16384 + i}`), 'w');
    const page = Buffer.alloc(8192);
    for (let off = 0; off < size; off += 8192) {
      rnd.bytes(4096).copy(page, 0);
      page.fill((off / 8192) % 251, 4096); // structured half
      writeSync(fd, page, 0, Math.min(8192, size - off));
    }
    closeSync(fd);
    files++;
    left -= size;
  }
  // 10% small files of 1–64 KiB, text-like.
  left = Math.floor(total * 0.1);
  const words = ['volume', 'backup', 'container', 'restore', 'snapshot', 'docker', 'data', 'log'];
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 1024 + (rnd.next() % (63 * 1024)));
    let text = '';
    while (text.length < size) text += `${words[rnd.next() % words.length]} ${rnd.next().toString(36)}\n`;
    const dir = join(small, String(i % 64));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}.txt`), text.slice(0, size));
    files++;
    left -= size;
  }
  // 40% incompressible binaries, 32 MiB each.
  left = total - Math.floor(total * 0.5) - Math.floor(total * 0.1);
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 32 * MiB);
    const fd = openSync(join(bin, `blob${i}.bin`), 'w');
    for (let off = 0; off < size; off += 4 * MiB) writeSync(fd, rnd.bytes(Math.min(4 * MiB, size - off)));
    closeSync(fd);
    files++;
    left -= size;
  }
  return { files };
}

/** Changes about 1% of the dataset: rewrites pages inside the database files, adds small files. */
function changeOnePercent(root: string, total: number): void {
  const rnd = new Random(7);
  const db = join(root, 'postgres/base');
  const names = readdirSync(db).sort();
  let budget = Math.floor(total * 0.01);
  while (budget > 0) {
    const name = names[rnd.next() % names.length]!;
    const size = statSync(join(db, name)).size;
    const fd = openSync(join(db, name), 'r+');
    const pos = (rnd.next() % Math.max(1, Math.floor(size / 8192))) * 8192;
    writeSync(fd, rnd.bytes(8192), 0, 8192, pos);
    closeSync(fd);
    budget -= 8192 * 8; // a changed page dirties its whole chunk; count it generously
  }
  mkdirSync(join(root, 'app/uploads/new'), { recursive: true });
  for (let i = 0; i < 20; i++)
    writeFileSync(join(root, `app/uploads/new/n${i}.txt`), rnd.bytes(2048).toString('base64'));
}

function dirBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

interface Measure {
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
}

/** Runs a command under GNU time: wall, user+system CPU (children included), peak RSS. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measure> {
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
const work = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'volback-bench-'));
const data = join(work, 'data');
mkdirSync(data, { recursive: true });
const log = (line: string) => process.stderr.write(`${line}\n`);
log(`bench: building a ${(size / MiB).toFixed(0)} MiB dataset in ${data}`);
const { files } = makeDataset(data, size);
const dataBytes = dirBytes(data);
log(`bench: ${files} files, ${(dataBytes / MiB).toFixed(1)} MiB`);

const env = {
  ...process.env,
  VOLBACK_PASSWORD: 'bench',
  RESTIC_PASSWORD: 'bench',
  RESTIC_CACHE_DIR: join(work, 'restic-cache'),
};
const tools = {
  volback: {
    init: (repo: string) =>
      [process.execPath, [join(root, 'tools/cli/src/main.ts'), 'repo', 'init', '--repo', repo]] as const,
    backup: (repo: string) =>
      [
        process.execPath,
        [join(root, 'tools/cli/src/main.ts'), 'repo', 'backup', data, '--repo', repo],
      ] as const,
    restore: (repo: string, target: string) =>
      [
        process.execPath,
        [
          join(root, 'tools/cli/src/main.ts'),
          'repo',
          'restore',
          'latest',
          '--repo',
          repo,
          '--target',
          target,
        ],
      ] as const,
  },
  restic: {
    init: (repo: string) => ['restic', ['-r', repo, 'init', '--repository-version', '2']] as const,
    backup: (repo: string) => ['restic', ['-r', repo, 'backup', data, '-q']] as const,
    restore: (repo: string, target: string) =>
      ['restic', ['-r', repo, 'restore', 'latest', '--target', target]] as const,
  },
};

interface Row extends Measure {
  tool: 'volback' | 'restic' | 'volback-e2e';
  phase: 'backup-full' | 'backup-incremental' | 'restore';
  mbPerSecond: number;
  repoBytesAdded: number;
}
const rows: Row[] = [];
const repos = { volback: join(work, 'repo-volback'), restic: join(work, 'repo-restic') };
const emit = (row: Row) => {
  rows.push(row);
  if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
};

for (const tool of ['volback', 'restic'] as const) {
  const [c, a] = tools[tool].init(repos[tool]);
  execFileSync(c, [...a], { env, stdio: 'ignore' });
}
const toolEnv = (tool: 'volback' | 'restic'): NodeJS.ProcessEnv =>
  tool === 'volback' && volbackNodeOptions ? { ...env, NODE_OPTIONS: volbackNodeOptions } : env;

/** One backup per tool; `sourceBytes` is what MB/s is counted against. */
async function backupPhase(phase: 'backup-full' | 'backup-incremental', sourceBytes: number): Promise<void> {
  for (const tool of ['volback', 'restic'] as const) {
    const before = dirBytes(repos[tool]);
    const [c, a] = tools[tool].backup(repos[tool]);
    const m = await measure(c, [...a], toolEnv(tool));
    emit({
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
const e2e = values['no-e2e']
  ? undefined
  : await E2eBench.start(work, data, env.VOLBACK_PASSWORD, volbackNodeOptions);
const emitE2e = (phase: Row['phase'], bytes: number, m: E2eMeasure) =>
  emit({ tool: 'volback-e2e', phase, ...m, mbPerSecond: bytes / MiB / m.wallSeconds });

try {
  // Full backups, then the change, then incrementals, then restores; tools alternate per phase.
  await backupPhase('backup-full', dataBytes);
  if (e2e) emitE2e('backup-full', dataBytes, await e2e.backup());
  changeOnePercent(data, size);
  if (e2e) changeOnePercent(e2e.mountpoint, size); // the same changes (seeded) in the volume
  const changedBytes = dirBytes(data);
  await backupPhase('backup-incremental', changedBytes);
  if (e2e) emitE2e('backup-incremental', changedBytes, await e2e.backup());
  for (const tool of ['volback', 'restic'] as const) {
    const target = join(work, `restore-${tool}`);
    rmSync(target, { recursive: true, force: true });
    const [c, a] = tools[tool].restore(repos[tool], target);
    const m = await measure(c, [...a], toolEnv(tool));
    // Not timed: the restore is the source, byte for byte (restic puts it under its absolute path).
    const restored = existsSync(join(target, data)) ? join(target, data) : target;
    const verified = await assertSameTree(data, restored, `${tool} restore`);
    log(
      `bench: ${tool} restore verified: ${verified.files} files, ${(verified.bytes / MiB).toFixed(1)} MiB equal`,
    );
    emit({
      tool,
      phase: 'restore',
      ...m,
      mbPerSecond: changedBytes / MiB / m.wallSeconds,
      repoBytesAdded: 0,
    });
  }
  if (e2e) {
    const { restoredTo, ...m } = await e2e.restore();
    const verified = await assertSameTree(e2e.mountpoint, restoredTo, 'volback-e2e restore');
    log(
      `bench: volback-e2e restore verified: ${verified.files} files, ${(verified.bytes / MiB).toFixed(1)} MiB equal`,
    );
    emitE2e('restore', changedBytes, { ...m, repoBytesAdded: 0 });
  }
} finally {
  await e2e?.stop();
}

if (!values.json) {
  const header = [
    'phase',
    'tool',
    'wall s',
    'MB/s',
    'CPU s',
    'peak RSS MiB',
    'repo +MiB',
    'vs restic (wall)',
  ];
  const lines = rows.map((r) => {
    const other = rows.find((o) => o.phase === r.phase && o.tool === 'restic')!;
    return [
      r.phase,
      r.tool,
      r.wallSeconds.toFixed(2),
      r.mbPerSecond.toFixed(1),
      r.cpuSeconds.toFixed(2),
      (r.peakRssBytes / MiB).toFixed(0),
      (r.repoBytesAdded / MiB).toFixed(1),
      r.tool === 'restic' ? '' : `${(r.wallSeconds / other.wallSeconds).toFixed(2)}x`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const l of [header, ...lines])
    process.stdout.write(`${l.map((c, i) => c.padStart(widths[i]!)).join('  ')}\n`);
}
if (!values.keep && !values.dir) rmSync(work, { recursive: true, force: true });
