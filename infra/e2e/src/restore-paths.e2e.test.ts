import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  startCatalogService,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { LIST_TREE_SCRIPT, runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-restore-paths-password';
const WRITE_TOKEN = 'e2e-restore-paths-token';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface PlanEntries {
  count: number;
  bytes: number;
  paths: string[];
}
interface RestoreView {
  restoreId: string;
  phase: string;
  files: number | null;
  dryRun: boolean;
  targetPath: string | null;
  plan: { written: PlanEntries; replaced: PlanEntries; leftAlone: PlanEntries } | null;
  error: { code: string; reason: string } | null;
}

/** 20 photos in 2024/01, one in 2024/02, one file at the root. */
const FILL = `
mkdir -p "$1/2024/01" "$1/2024/02"
i=1; while [ $i -le 20 ]; do echo "photo $i" > "$1/2024/01/photo-$i.jpg"; i=$((i+1)); done
echo february > "$1/2024/02/feb.jpg"
echo top > "$1/top.txt"
`;

describe('restoring a path of a volume: at its own place, into another directory, or as a dry run', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let gateway: ServiceProcess;
  let agent: ServiceProcess;
  let catalog: CatalogProcess;
  let events: EventLog;
  let snapshotId: string;
  /** The host directory behind the `bound` volume, which the agent can only reach through the engine. */
  let boundDir: string;

  const volback = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: catalog.url, VOLBACK_TOKEN: WRITE_TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
    });
  const json = <T>(run: Run): T => {
    expect(run.code, run.stderr + run.stdout).toBe(0);
    return JSON.parse(run.stdout) as T;
  };
  const list = (volume: string) => runInVolume(engine.docker, engine.image, volume, LIST_TREE_SCRIPT);
  const shell = (volume: string, script: string) => runInVolume(engine.docker, engine.image, volume, script);

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-restore-paths-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-restore-paths' });
    events = new EventLog(nc);
    await engine.docker.createVolume({ Name: 'photos' });
    await shell('photos', FILL);
    boundDir = join(dir, 'bound');
    await mkdir(boundDir);
    // A local volume with mount options: the agent does not read or write it in place.
    await engine.docker.createVolume({
      Name: 'bound',
      DriverOpts: { type: 'none', o: 'bind', device: boundDir },
    });
    [gateway, catalog] = await Promise.all([
      startService(
        'gateway',
        'gateway-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startCatalogService(
        'catalog-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: WRITE_TOKEN },
        join(dir, 'catalog'),
        dir,
      ),
    ]);
    agent = await startService(
      'agent',
      'agent-1',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
      },
      dir,
    );
    await events.waitFor('photos to be discovered', (e) => e.type === 'io.volback.volume.discovered.v1');
    const backup = json<{ phase: string; snapshotId: string }>(
      await volback(['backup', 'photos', '--wait', '--json']),
    );
    expect(backup.phase).toBe('Completed');
    snapshotId = backup.snapshotId;
  }, 180_000);

  afterAll(async () => {
    events?.close();
    await Promise.allSettled([agent?.stop(), gateway?.stop(), catalog?.stop()]);
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('a dry run lists what would be written, replaced and left alone, and changes nothing', async () => {
    await shell(
      'photos',
      'rm "$1/2024/01/photo-7.jpg" && echo edited > "$1/2024/01/photo-1.jpg" && echo new > "$1/2024/01/new-since.jpg"',
    );
    const before = await list('photos');
    const planned = json<RestoreView>(
      await volback([
        'restore',
        snapshotId,
        '--to-volume',
        'photos',
        '--existing',
        '--path',
        '2024/01',
        '--dry-run',
        '--json',
      ]),
    );
    expect(planned.phase, JSON.stringify(planned.error)).toBe('Completed');
    expect(planned.dryRun).toBe(true);
    expect(planned.files).toBe(0);
    expect(planned.plan!.written).toEqual({ count: 1, bytes: 8, paths: ['/2024/01/photo-7.jpg'] });
    expect(planned.plan!.replaced.count).toBe(19);
    expect(planned.plan!.replaced.paths).toContain('/2024/01/photo-1.jpg');
    expect(planned.plan!.leftAlone).toEqual({ count: 1, bytes: 0, paths: ['/2024/01/new-since.jpg'] });
    expect(await list('photos')).toBe(before);

    // The catalog's API shows the same plan; the CLI's text names each path.
    const response = await fetch(`${catalog.url}/v1/restores/${encodeURIComponent(planned.restoreId)}`);
    expect(((await response.json()) as RestoreView).plan).toEqual(planned.plan);
    const text = await volback([
      'restore',
      snapshotId,
      '--to-volume',
      'photos',
      '--existing',
      '--path',
      '2024/01',
      '--dry-run',
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/1 to write .*19 to replace .*1 left alone/);
    expect(text.stdout).toContain('write   /2024/01/photo-7.jpg');
    expect(text.stdout).toContain('keep    /2024/01/new-since.jpg');
    expect(await list('photos')).toBe(before);
  });

  it('a sub-path restored into its volume lands at its own path and brings back a deleted file', async () => {
    const restored = json<RestoreView>(
      await volback([
        'restore',
        snapshotId,
        '--to-volume',
        'photos',
        '--existing',
        '--path',
        '2024/01',
        '--wait',
        '--json',
      ]),
    );
    expect(restored.phase, JSON.stringify(restored.error)).toBe('Completed');
    expect(restored.files).toBe(20);
    const after = await shell(
      'photos',
      'cd "$1" && find . -maxdepth 1 | sort && cat 2024/01/photo-7.jpg 2024/01/photo-1.jpg 2024/01/new-since.jpg && ls 2024/01 | wc -l',
    );
    expect(after.split('\n')).toEqual(['.', './2024', './top.txt', 'photo 7', 'photo 1', 'new', '21', '']);
  });

  it('a sub-path restored into another directory of the volume lands below it', async () => {
    const restored = json<RestoreView>(
      await volback([
        'restore',
        snapshotId,
        '--to-volume',
        'photos',
        '--existing',
        '--path',
        '2024/01',
        '--target-dir',
        'restored',
        '--wait',
        '--json',
      ]),
    );
    expect(restored.phase, JSON.stringify(restored.error)).toBe('Completed');
    expect(restored.targetPath).toBe('/restored');
    const tree = await shell('photos', 'cd "$1/restored" && find . | sort | head -4 && ls 2024/01 | wc -l');
    expect(tree.split('\n').slice(0, 5)).toEqual(['.', './2024', './2024/01', './2024/01/photo-1.jpg', '20']);
  });

  it('through the engine (a volume the agent cannot reach in place): dry run, then the restore', async () => {
    const args = [
      'restore',
      snapshotId,
      '--to-volume',
      'bound',
      '--existing',
      '--path',
      '2024/01',
      '--target-dir',
      'copy',
    ];
    const planned = json<RestoreView>(await volback([...args, '--dry-run', '--json']));
    expect(planned.phase, JSON.stringify(planned.error)).toBe('Completed');
    expect(planned.plan!.written.count).toBe(23); // copy/, copy/2024/, copy/2024/01/ and 20 photos
    expect(planned.plan!.written.paths.slice(0, 3)).toEqual(['/copy/', '/copy/2024/', '/copy/2024/01/']);
    expect(await readdir(boundDir)).toEqual([]);

    const restored = json<RestoreView>(await volback([...args, '--wait', '--json']));
    expect(restored.phase, JSON.stringify(restored.error)).toBe('Completed');
    expect(restored.files).toBe(20);
    expect((await readdir(join(boundDir, 'copy/2024/01'))).length).toBe(20);
    expect(await readFile(join(boundDir, 'copy/2024/01/photo-7.jpg'), 'utf8')).toBe('photo 7\n');
    expect(await readdir(boundDir)).toEqual(['copy']);

    const again = json<RestoreView>(await volback([...args, '--dry-run', '--json']));
    expect(again.plan!.written.count).toBe(0);
    expect(again.plan!.replaced.count).toBe(20);
  });
});
