import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatChunkerPolynomial,
  formatGoTime,
  LocalBackend,
  randomIrreduciblePolynomial,
  repositorySink,
  Repository,
  restore,
  type BlobSink,
} from '@volback/repository';
import { RESTIC, resolveBinary, seqDigest, startDockerEngine, type DockerEngine } from '@volback/testing';
import type Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DUMP_PRESETS,
  DumpErrorCode,
  dumpScript,
  planDumps,
  type DumpSpec,
} from '../domain/database-dump.ts';
import { dumpFiles, dumpRecords, volumeFilesLeftOut } from '../work/database-dumps.ts';
import { saveVolumeSnapshotTree } from '../work/snapshot-layout.ts';
import { DatabaseDumper, DumpFailedError } from './database-dump.ts';
import { VolumeAccess } from './volume-access.ts';

const PASSWORD = 'volback-dump-test-password';
/** `seq 1 N` in busybox; the test computes the same bytes itself. */
const LINES = 6_000_000;

let engine: DockerEngine;
let docker: Dockerode;
let scratch: string;
let repo: Repository;
let volumes: VolumeAccess;
let dumper: DatabaseDumper;
let counter = 0;

beforeAll(async () => {
  engine = await startDockerEngine();
  docker = engine.docker;
  scratch = await mkdtemp(join(tmpdir(), 'volback-dump-'));
  repo = await Repository.init(new LocalBackend(join(scratch, 'repo')), PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
  volumes = new VolumeAccess(docker, { helperImage: engine.image, hostId: 'host-dump', local: true });
  dumper = new DatabaseDumper(docker, { local: true });
  await docker.createVolume({ Name: 'db-data' });
});

afterAll(async () => {
  await engine?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of await docker.listContainers({ all: true })) {
    await docker.getContainer(c.Id).remove({ force: true });
  }
});

/** A running busybox container on the volume `db-data`, network none, with these labels. */
async function database(labels: Record<string, string>): Promise<string> {
  const name = `db-${++counter}`;
  const container = await docker.createContainer({
    name,
    Image: engine.image,
    Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    Labels: labels,
    HostConfig: { Binds: ['db-data:/data'], NetworkMode: 'none' },
  });
  await container.start();
  return name;
}

/** The one dump the labels of the volume's containers ask for. */
async function onlyDump(): Promise<DumpSpec> {
  const plan = planDumps(await volumes.containersUsing('db-data'), 'db-data');
  expect(plan.dumps).toHaveLength(1);
  return plan.dumps[0]!;
}

/** How the dump failed; a dump that succeeds fails the test. */
async function failureOf(spec: DumpSpec): Promise<DumpFailedError> {
  const error = await dumper.take(spec, repositorySink(repo), { signal: new AbortController().signal }).then(
    () => new Error('the dump succeeded'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DumpFailedError);
  return error as DumpFailedError;
}

async function hashOf(stream: NodeJS.ReadableStream): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Runs restic (RESTIC_BIN, else PATH) on the repository; streams its stdout into `hashOf`. */
async function resticHash(args: readonly string[]): Promise<{ sha256: string; size: number }> {
  const child = spawn(resolveBinary(RESTIC), ['-r', join(scratch, 'repo'), '--no-cache', ...args], {
    env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const result = await hashOf(child.stdout);
  const code = await exited;
  if (code !== 0) throw new Error(`restic ${args.join(' ')} exited with ${code}: ${stderr}`);
  return result;
}

async function resticOk(args: readonly string[]): Promise<void> {
  await resticHash(args);
}

describe('a dump streams from docker exec into the snapshot', () => {
  it('writes a 47 MB deterministic dump as /.volback/dumps/<container>.<ext>; restic and volback give back the same bytes', async () => {
    const name = await database({
      'volback.dump': 'command',
      'volback.dump.command': `seq 1 ${LINES}`,
      'volback.dump.extension': 'txt',
      'volback.dump.mode': 'instead',
    });
    const spec = await onlyDump();
    const sink = repositorySink(repo);
    const taken = await dumper.take(spec, sink, { signal: new AbortController().signal });
    const expected = seqDigest(LINES);
    expect(taken.sizeBytes).toBe(expected.size);
    expect(taken.content.length).toBeGreaterThan(5);

    const now = new Date();
    const tree = await saveVolumeSnapshotTree(sink, {
      volumeRoot: (await volumeFilesLeftOut(sink, now)).root,
      volume: { name: 'db-data', driver: 'local', driverOptions: {}, labels: {} },
      containers: [],
      dumps: dumpFiles([taken]),
      now,
    });
    await repo.flush();
    const snapshotId = await repo.saveSnapshot({
      time: formatGoTime(BigInt(now.getTime()) * 1_000_000n),
      tree,
      paths: ['/volumes/db-data'],
      hostname: 'host-dump',
      tags: ['volback', 'volume:db-data'],
    });
    const path = `/.volback/dumps/${name}.txt`;
    expect(dumpRecords([taken])).toEqual([
      {
        container: name,
        preset: 'command',
        mode: 'instead',
        path,
        sizeBytes: expected.size,
        durationMs: taken.durationMs,
      },
    ]);

    // restic reads the file out of the repository as the README's restore steps do.
    expect(await resticHash(['dump', '--tag', 'volume:db-data', 'latest', path])).toEqual(expected);
    await resticOk(['check', '--read-data']);

    // volback restores it as well.
    const target = join(scratch, 'restored');
    const restored = await restore(await Repository.open(repo.backend, PASSWORD), {
      snapshot: snapshotId,
      target,
      path: '/.volback/dumps',
    });
    expect(restored.errors).toEqual([]);
    expect(await hashOf(createReadStream(join(target, `${name}.txt`)))).toEqual(expected);
  }, 180_000);

  it('keeps memory flat while the repository is slower than the dump (backpressure down to the container)', async () => {
    const size = 256 * 1024 * 1024;
    await database({ 'volback.dump': 'command', 'volback.dump.command': `head -c ${size} /dev/zero` });
    const spec = await onlyDump();
    const real = repositorySink(repo);
    // The real repository, made slow: each blob waits 40 ms before it is stored.
    const slow: BlobSink = {
      ...real,
      chunkerPolynomial: real.chunkerPolynomial,
      get bytesAdded() {
        return real.bytesAdded;
      },
      async saveBlob(type, data, id, options) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        await real.saveBlob(type, data, id, options);
      },
    };
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const taken = await dumper.take(spec, slow, { signal: new AbortController().signal });
      expect(taken.sizeBytes).toBe(size);
    } finally {
      clearInterval(sampler);
    }
    // Chunks are at most 8 MiB; a dump held in memory would add 256 MiB.
    expect(peak - baseline).toBeLessThan(96 * 1024 * 1024);
  }, 120_000);
});

describe('a dump that fails fails clearly', () => {
  it('exit status and the end of stderr make the reason; stdout never does', async () => {
    await database({
      'volback.dump': 'command',
      'volback.dump.command':
        'seq 1 100000; echo "pg_dump: error: connection to server on socket failed: FATAL: role \\"app\\" does not exist" >&2; exit 3',
    });
    const spec = await onlyDump();
    const failed = await failureOf(spec);
    expect(failed.code).toBe(DumpErrorCode.Failed);
    expect(failed.exitCode).toBe(3);
    expect(failed.message).toBe(
      `command dump in container ${spec.container.name} exited with 3; stderr (last 200 bytes at most): ` +
        JSON.stringify(
          'pg_dump: error: connection to server on socket failed: FATAL: role "app" does not exist',
        ),
    );
    expect(failed.message).not.toContain('99999');
  });

  it('a dump that runs out of time is cut off and named so', async () => {
    await database({
      'volback.dump': 'command',
      'volback.dump.command': 'echo starting >&2; sleep 30',
      'volback.dump.timeout': '1',
    });
    const spec = await onlyDump();
    const started = Date.now();
    const error = await failureOf(spec);
    expect(error.message).toMatch(
      /^command dump in container \S+ did not finish within 1 s \(killed\); stderr/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    // Killed in the container, not left behind: only the container's own processes remain.
    const top = await docker.getContainer(spec.container.id!).top();
    expect((top.Processes as string[][]).map((p) => p.join(' ')).join('\n')).not.toContain('sleep 30');
  });

  it('a container that is gone cannot run a dump', async () => {
    const name = await database({ 'volback.dump': 'command', 'volback.dump.command': 'true' });
    const spec = await onlyDump();
    await docker.getContainer(name).remove({ force: true });
    const error = await failureOf(spec);
    expect(error.message).toMatch(new RegExp(`^command dump in container ${name} could not run: `));
  });
});

describe('preset scripts', () => {
  it('every preset script is valid sh (checked by busybox sh -n in a container)', async () => {
    const name = await database({});
    for (const preset of DUMP_PRESETS) {
      const script = dumpScript(preset, {
        database: preset === 'sqlite' ? '/data/app.db' : 'shop',
        user: 'backup',
        command: 'cat /data/x',
      });
      const exec = await docker.getContainer(name).exec({
        Cmd: ['sh', '-n', '-c', script],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.resume();
      });
      let info = await exec.inspect();
      while (info.Running) info = await exec.inspect();
      expect(info.ExitCode, preset).toBe(0);
    }
  });
});
