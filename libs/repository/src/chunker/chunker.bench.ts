/*
 * Throughput of the chunker on one core: node libs/repository/src/chunker/chunker.bench.ts [MiB]
 *
 * Chunks 256 MiB of random data, fed in 1 MiB buffers as a file read would, a few rounds, and
 * prints the best and median rates by wall clock and by the process's CPU time (the latter is
 * what one dedicated core would do when the machine is busy with other work). Random data is the
 * honest case: the bytes skipped after each cut are about a third of the input, as in real files.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Chunker } from './chunker.ts';
import { randomIrreduciblePolynomial } from './polynomial.ts';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = 7;

const data = randomFillSync(Buffer.alloc(sizeMiB * MiB));
const pol = randomIrreduciblePolynomial();
const setupStart = performance.now();
new Chunker(pol);
const setupMs = performance.now() - setupStart;

const wallRates: number[] = [];
const cpuRates: number[] = [];
let chunkCount = 0;
for (let round = 0; round < rounds; round++) {
  const chunker = new Chunker(pol);
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  chunkCount = 0;
  for (let offset = 0; offset < data.length; offset += MiB) {
    chunkCount += chunker.push(data.subarray(offset, offset + MiB)).length;
  }
  if (chunker.finish()) chunkCount++;
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  wallRates.push(sizeMiB / wallSeconds);
  cpuRates.push(sizeMiB / ((cpu.user + cpu.system) / 1e6));
}

const summary = (rates: number[]): string => {
  const sorted = [...rates].sort((a, b) => a - b);
  return `best ${sorted.at(-1)!.toFixed(0)}, median ${sorted[Math.floor(rounds / 2)]!.toFixed(0)} MiB/s`;
};
console.log(
  `chunked ${sizeMiB} MiB into ${chunkCount} chunks (average ${(sizeMiB / chunkCount).toFixed(2)} MiB), ` +
    `${rounds} rounds\n  wall clock: ${summary(wallRates)}\n  CPU time:   ${summary(cpuRates)}\n` +
    `  tables for polynomial ${pol.toString(16)}: ${setupMs.toFixed(1)} ms`,
);
