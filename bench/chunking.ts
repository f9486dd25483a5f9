// `node bench/chunking.ts [--size 512M] [--small 5000] [--small-size 8K] [--rounds 3]`: reading,
// chunking and hashing files on the main thread (createReadStream → chunkStream → SHA-256, as
// backup does) against the ChunkPool with one and two workers: one large file, the large file
// twice at once, and many small files one after another and several at once. Prints the best of
// the rounds: wall MiB/s (and files/s, µs per file), CPU seconds of the process and of the main
// thread. The files are read once before timing, so the page cache serves every run. Before the
// rounds, every case chunks its files once more with the chunk ids kept, and they must equal the
// main thread's, file by file and in order: a fast wrong chunking fails the run.
import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChunkPool } from '../libs/repository/src/chunker/chunk-pool.ts';
import { chunkStream } from '../libs/repository/src/chunker/chunker.ts';
import { parseChunkerPolynomial } from '../libs/repository/src/chunker/polynomial.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512M' },
    small: { type: 'string', default: '5000' },
    'small-size': { type: 'string', default: '8K' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string' },
  },
});

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text} (e.g. 8K, 256M, 1G)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * unit);
}

const MiB = 1024 * 1024;
const size = parseSize(values.size);
const smallCount = Number(values.small);
const smallSize = parseSize(values['small-size']);
const rounds = Number(values.rounds);
const pol = parseChunkerPolynomial('3da3358b4dc173');

const root = mkdtempSync(join(values.dir ?? tmpdir(), 'volback-bench-chunking-'));
const big = join(root, 'big.bin');
const smallFiles: string[] = [];

function makeFiles(): void {
  const fd = openSync(big, 'w');
  const block = Buffer.allocUnsafe(64 * MiB);
  for (let written = 0; written < size; written += block.length) {
    randomFillSync(block);
    writeSync(fd, block, 0, Math.min(block.length, size - written));
  }
  closeSync(fd);
  const smallDir = join(root, 'small');
  mkdirSync(smallDir);
  const bytes = Buffer.allocUnsafe(smallSize);
  for (let i = 0; i < smallCount; i++) {
    const path = join(smallDir, `f${i}`);
    const out = openSync(path, 'w');
    writeSync(out, randomFillSync(bytes));
    closeSync(out);
    smallFiles.push(path);
  }
  readFileSync(big); // into the page cache
}

/** A way to chunk one file to its end; returns the bytes seen, and the chunk ids into `ids` when given. */
type Chunking = (path: string, ids?: string[]) => Promise<number>;

async function inThread(path: string, ids?: string[]): Promise<number> {
  let bytes = 0;
  for await (const chunk of chunkStream(createReadStream(path, { highWaterMark: MiB }), pol)) {
    const id = createHash('sha256').update(chunk.data).digest('hex');
    ids?.push(id);
    bytes += chunk.length;
  }
  return bytes;
}

function throughPool(pool: ChunkPool): Chunking {
  return async (path, ids) => {
    let bytes = 0;
    for await (const chunk of pool.chunkFile(path)) {
      ids?.push(chunk.id);
      bytes += chunk.length;
    }
    return bytes;
  };
}

/**
 * Chunks the paths with `parallel` files in flight at a time; with `ids`, the chunk ids of each
 * path go to `ids[i]` (i: its place in `paths`).
 */
async function chunkAll(
  chunking: Chunking,
  paths: string[],
  parallel: number,
  ids?: string[][],
): Promise<number> {
  let next = 0;
  let bytes = 0;
  const lane = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      const read = await chunking(paths[i]!, ids ? (ids[i] = []) : undefined);
      bytes += read;
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return bytes;
}

/**
 * Chunks `paths` as a case does, keeping the ids, and compares them with the main thread's
 * (`reference`, by path): throws naming the case and the first file that differs.
 */
async function verify(
  label: string,
  chunking: Chunking,
  paths: string[],
  parallel: number,
  reference: ReadonlyMap<string, readonly string[]>,
): Promise<number> {
  const ids: string[][] = [];
  await chunkAll(chunking, paths, parallel, ids);
  let chunks = 0;
  paths.forEach((path, i) => {
    const want = reference.get(path)!;
    const got = ids[i] ?? [];
    const at = want.findIndex((id, n) => got[n] !== id);
    if (at !== -1 || got.length !== want.length) {
      const where =
        at !== -1
          ? `chunk ${at}: ${got[at] ?? 'none'}, not ${want[at]}`
          : `${got.length} chunks, not ${want.length}`;
      throw new Error(`${label}: other chunk ids than the main thread for ${path} (${where})`);
    }
    chunks += got.length;
  });
  return chunks;
}

interface Result {
  seconds: number;
  cpuSeconds: number;
  mainCpuSeconds: number;
  bytes: number;
}

interface Case {
  section: string;
  label: string;
  files?: number;
  chunking: Chunking;
  paths: string[];
  parallel: number;
  best?: Result;
}

async function measure(run: () => Promise<number>): Promise<Result> {
  const cpu = process.cpuUsage();
  const mainCpu = process.threadCpuUsage();
  const start = performance.now();
  const bytes = await run();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const mainUsed = process.threadCpuUsage(mainCpu);
  return {
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    mainCpuSeconds: (mainUsed.user + mainUsed.system) / 1e6,
    bytes,
  };
}

function row({ label, files, best: r }: Case): string {
  const rate = `${(r!.bytes / MiB / r!.seconds).toFixed(0).padStart(5)} MiB/s`;
  const perFile = files
    ? `  ${(files / r!.seconds).toFixed(0).padStart(6)} files/s ${((r!.seconds / files) * 1e6).toFixed(0).padStart(4)} µs/file`
    : '';
  return (
    `  ${label.padEnd(40)} ${rate}${perFile}   wall ${r!.seconds.toFixed(2)} s, ` +
    `CPU ${r!.cpuSeconds.toFixed(2)} s, main thread ${r!.mainCpuSeconds.toFixed(2)} s`
  );
}

async function main(): Promise<void> {
  makeFiles();
  console.log(
    `${availableParallelism()} cores, node ${process.version}; large file ${(size / MiB).toFixed(0)} MiB, ` +
      `${smallCount} small files of ${smallSize} bytes; best of ${rounds} interleaved rounds`,
  );
  const pools = [new ChunkPool(pol, { workers: 1 }), new ChunkPool(pol, { workers: 2 })];
  const large = 'one large file';
  const twice = 'the large file twice at once';
  const small = `${smallCount} small files`;
  const cases: Case[] = [
    {
      section: large,
      label: 'main thread (createReadStream+chunkStream)',
      chunking: inThread,
      paths: [big],
      parallel: 1,
    },
    ...pools.map((pool) => ({
      section: large,
      label: `ChunkPool, ${pool.size} worker(s)`,
      chunking: throughPool(pool),
      paths: [big],
      parallel: 1,
    })),
    { section: twice, label: 'main thread', chunking: inThread, paths: [big, big], parallel: 2 },
    ...pools.map((pool) => ({
      section: twice,
      label: `ChunkPool, ${pool.size} worker(s)`,
      chunking: throughPool(pool),
      paths: [big, big],
      parallel: 2,
    })),
    ...[1, 8].map((parallel) => ({
      section: small,
      label: `main thread, ${parallel} at a time`,
      files: smallCount,
      chunking: inThread,
      paths: smallFiles,
      parallel,
    })),
    ...pools.flatMap((pool) =>
      [1, 8].map((parallel) => ({
        section: small,
        label: `ChunkPool, ${pool.size} worker(s), ${parallel} at a time`,
        files: smallCount,
        chunking: throughPool(pool),
        paths: smallFiles,
        parallel,
      })),
    ),
  ];
  try {
    // Warm up: spawn the workers, compile the hot paths.
    for (const pool of pools) await chunkAll(throughPool(pool), [big, ...smallFiles.slice(0, 200)], 2);
    await chunkAll(inThread, [big, ...smallFiles.slice(0, 200)], 1);
    // Not timed: every case gives the main thread's chunk ids, file by file.
    const reference = new Map<string, string[]>();
    for (const path of [big, ...smallFiles]) {
      const ids: string[] = [];
      await inThread(path, ids);
      reference.set(path, ids);
    }
    let compared = 0;
    for (const c of cases)
      compared += await verify(`${c.section}, ${c.label}`, c.chunking, c.paths, c.parallel, reference);
    console.log(`chunk ids verified: ${compared} chunks in ${cases.length} cases equal the main thread's`);
    // Rounds interleave the cases, so that a slow spell of the machine does not favour one.
    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        const result = await measure(() => chunkAll(c.chunking, c.paths, c.parallel));
        if (!c.best || result.seconds < c.best.seconds) c.best = result;
      }
    }
    let section = '';
    for (const c of cases) {
      if (c.section !== section) console.log(`\n${(section = c.section)}`);
      console.log(row(c));
    }
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
