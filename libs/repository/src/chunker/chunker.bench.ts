/*
 * Throughput of the chunker on one core: node libs/repository/src/chunker/chunker.bench.ts [MiB]
 * Chunks 256 MiB of random data (fed in 1 MiB buffers, as a file read would) a few times and
 * prints the best and median rates. Random data is the honest case: skipped bytes after each cut
 * are about a third of the input, as in real files.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Chunker } from './chunker.ts';
import { randomIrreduciblePolynomial } from './polynomial.ts';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = 5;

const data = randomFillSync(Buffer.alloc(sizeMiB * MiB));
const pol = randomIrreduciblePolynomial();
const setupStart = performance.now();
new Chunker(pol);
const setupMs = performance.now() - setupStart;

const rates: number[] = [];
let chunkCount = 0;
for (let round = 0; round < rounds; round++) {
  const chunker = new Chunker(pol);
  const start = performance.now();
  chunkCount = 0;
  for (let offset = 0; offset < data.length; offset += MiB) {
    chunkCount += chunker.push(data.subarray(offset, offset + MiB)).length;
  }
  if (chunker.finish()) chunkCount++;
  rates.push(sizeMiB / ((performance.now() - start) / 1000));
}
rates.sort((a, b) => a - b);
console.log(
  `chunked ${sizeMiB} MiB into ${chunkCount} chunks (avg ${((sizeMiB * MiB) / chunkCount / MiB).toFixed(2)} MiB); ` +
    `best ${rates.at(-1)!.toFixed(0)} MiB/s, median ${rates[Math.floor(rounds / 2)]!.toFixed(0)} MiB/s; ` +
    `tables for polynomial 0x${pol.toString(16)} took ${setupMs.toFixed(1)} ms`,
);
