import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import {
  startDockerEngine,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-reimport-password';
const TOKEN = 'e2e-reimport-write-token';
const HOST_NAME = 'old-host';

/** `<md5> <path>` of every file below the directory given as $1 (busybox and GNU alike). */
const MD5_TREE = `cd "$1" && find . -type f | LC_ALL=C sort | while IFS= read -r p; do printf '%s %s\\n' "$(md5sum < "$p" | cut -c1-32)" "$p"; done`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
interface Snapshot {
  snapshotId: string;
  hostId: string;
  volumeName: string;
  origin: string;
  backupId: string | null;
}
interface Operation {
  operation: string;
  status: string;
  summary: { imported: number; alreadyKnown: number; skipped: number; snapshots: number };
}

describe('re-import: a new event log learns the snapshots of the repository', () => {
  let engine: DockerEngine;
  let dir: string;
  let url = '';
  const running: Array<{ stop(): Promise<void> }> = [];

  const volback = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: url, VOLBACK_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
    });
  const json = <T>(run: Run): T => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    return JSON.parse(run.stdout) as T;
  };

  /** NATS, a gateway on the repository and a catalog: a stack with an empty event log. */
  const startStack = async (name: string): Promise<{ nats: NatsServer; catalog: CatalogProcess }> => {
    const nats = await startNatsServer();
    running.push(nats);
    const [gateway, catalog, scheduler] = await Promise.all([
      startService(
        'gateway',
        `${name}-gateway`,
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startCatalogService(
        `${name}-catalog`,
        {
          VOLBACK_NATS_URL: nats.url,
          VOLBACK_CATALOG_WRITE_TOKEN: TOKEN,
        },
        join(dir, `${name}-catalog`),
        dir,
      ),
      startOnDemandScheduler(`${name}-scheduler`, nats.url, dir),
    ]);
    running.push(gateway, catalog, scheduler);
    url = catalog.url;
    return { nats, catalog };
  };

  let hostId = '';
  let first = '';
  let second = '';
  let firstTree = '';
  let knownBefore: Operation | undefined;

  beforeAll(async () => {
    engine = await startDockerEngine();
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-reimport-'));
    await engine.docker.createVolume({ Name: 'photos' });
    await runInVolume(
      engine.docker,
      engine.image,
      'photos',
      'cd "$1" && mkdir -p 2024 && dd if=/dev/urandom of=2024/big.bin bs=1024 count=3072 2>/dev/null && echo notes > notes.txt && i=0 && while [ $i -lt 50 ]; do echo "photo $i" > 2024/p-$i.jpg; i=$((i+1)); done',
    );

    // The first life of the system: two backups of the volume.
    const { nats } = await startStack('first');
    const agent: ServiceProcess = await startService(
      'agent',
      'first-agent',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
        VOLBACK_HOST_NAME: HOST_NAME,
      },
      dir,
    );
    running.push(agent);
    await waitUntil(
      'the catalog to list photos',
      async () => (await volback(['volumes', '--json'])).stdout.includes('"photos"'),
      60_000,
    );
    first = json<{ snapshotId: string }>(await volback(['backup', 'photos', '--wait', '--json'])).snapshotId;
    firstTree = await runInVolume(engine.docker, engine.image, 'photos', MD5_TREE);
    await runInVolume(
      engine.docker,
      engine.image,
      'photos',
      'cd "$1" && echo changed > notes.txt && echo new > added.txt',
    );
    second = json<{ snapshotId: string }>(await volback(['backup', 'photos', '--wait', '--json'])).snapshotId;
    hostId = json<Array<{ hostId: string }>>(await volback(['hosts', '--json']))[0]!.hostId;
    // While the log is whole, the gateway finds both snapshots in it: nothing to import.
    knownBefore = json<Operation>(await volback(['import', '--json']));

    // The event log is lost: everything stops; the repository is all that is left.
    for (const service of running.splice(0).reverse()) await service.stop();
  }, 300_000);

  afterAll(async () => {
    for (const service of running.splice(0).reverse()) await service.stop().catch(() => undefined);
    await engine?.stop();
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('imports nothing while the log knows every snapshot (its backup outcomes)', () => {
    expect(knownBefore).toMatchObject({
      status: 'Succeeded',
      summary: { snapshots: 2, imported: 0, alreadyKnown: 2, skipped: 0 },
    });
  });

  it('imports both snapshots into a new log, with their volume and host, once however often it runs', async () => {
    await startStack('second');
    // The new log knows nothing of the volume.
    expect((await volback(['snapshots', 'photos'])).code).toBe(5);

    const op = json<Operation>(await volback(['import', '--json']));
    expect(op).toMatchObject({
      operation: 'import',
      status: 'Succeeded',
      summary: { snapshots: 2, imported: 2, alreadyKnown: 0, skipped: 0 },
    });
    const text = await volback(['import']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/done: 0 snapshots imported, 2 already known, 0 skipped/);

    const snapshots = json<Snapshot[]>(await volback(['snapshots', 'photos', '--json']));
    expect(snapshots.map((s) => s.snapshotId).sort()).toEqual([first, second].sort());
    for (const s of snapshots) {
      expect(s).toMatchObject({ hostId, volumeName: 'photos', origin: 'import', backupId: null });
    }
    const hosts = json<Array<{ hostId: string; name: string }>>(await volback(['hosts', '--json']));
    expect(hosts).toEqual([expect.objectContaining({ hostId, name: HOST_NAME })]);
    const table = await volback(['snapshots', 'photos']);
    expect(table.stdout).toContain('imported');
  }, 180_000);

  it('restores an imported snapshot through the stack with its original bytes', async () => {
    const target = join(dir, 'restored');
    const run = json<{ files: number }>(await volback(['restore', first, '--to-dir', target, '--json']));
    expect(run.files).toBe(52);
    const { stdout } = await promisify(execFile)('sh', ['-c', MD5_TREE, 'sh', target]);
    expect(stdout).toBe(firstTree);
    expect(firstTree).toContain('./2024/big.bin');
  }, 180_000);
});
