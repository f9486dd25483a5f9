import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { LIST_TREE_SCRIPT, runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
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

/** Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits, as restic prints it. */
function nanoseconds(time: string): bigint {
  const parts = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!parts) throw new Error(`not an RFC 3339 time: ${time}`);
  return BigInt(Date.parse(`${parts[1]}${parts[3]}`)) * 1_000_000n + BigInt((parts[2] ?? '').padEnd(9, '0'));
}

/** 20 photos in 2024/01, one in 2024/02, one file at the root. */
const FILL = `
mkdir -p "$1/2024/01" "$1/2024/02"
i=1; while [ $i -le 20 ]; do echo "photo $i" > "$1/2024/01/photo-$i.jpg"; i=$((i+1)); done
echo february > "$1/2024/02/feb.jpg"
echo top > "$1/top.txt"
`;

describe('a volume backed up and restored through the stack, as volback and restic users see it', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let gateways: ServiceProcess[];
  let scheduler: ServiceProcess;
  let agent: ServiceProcess;
  let catalog: CatalogProcess;
  let events: EventLog;
  let snapshotId: string;
  let hostId: string;
  let hostName: string;
  let firstBackup: {
    phase: string;
    snapshotId: string;
    backupId: string;
    stats: { bytesStored: number; bytesAdded: number };
  };
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
  const json = <T>(result: Run): T => {
    expect(result.code, result.stderr + result.stdout).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  /** restic 0.14 on the gateway's repository, with locks as it takes them by default. */
  const restic = async (args: string[]): Promise<string> => {
    try {
      const { stdout } = await run('restic', ['-r', join(dir, 'repo'), '--no-cache', ...args], {
        env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    } catch (error) {
      const e = error as Error & { stderr?: string };
      throw new Error(`restic ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: error });
    }
  };
  /** `volback restore` of 2024/01 of the first snapshot into the existing `photos` volume. */
  const restoreJanuary = (): string[] => [
    'restore',
    snapshotId,
    '--to-volume',
    'photos',
    '--existing',
    '--yes',
    '--path',
    '2024/01',
  ];
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
    // Two gateways: a session's blobs go to both, and each holds the session's lock.
    const gateway = (name: string) =>
      startService(
        'gateway',
        name,
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      );
    [gateways, catalog, scheduler] = await Promise.all([
      // One after the other: the first creates the repository.
      gateway('gateway-1').then(async (first) => [first, await gateway('gateway-2')]),
      startCatalogService(
        'catalog-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: WRITE_TOKEN },
        join(dir, 'catalog'),
        dir,
      ),
      startOnDemandScheduler('scheduler-1', nats.url, dir),
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
    const registered = await events.waitFor('the host', (e) => e.type === 'io.volback.host.registered.v1');
    ({ hostId, name: hostName } = registered.data as { hostId: string; name: string });
    await events.waitFor('photos to be discovered', (e) => e.type === 'io.volback.volume.discovered.v1');
    firstBackup = json<typeof firstBackup>(await volback(['backup', 'photos', '--wait', '--json']));
    expect(firstBackup.phase).toBe('Completed');
    snapshotId = firstBackup.snapshotId;
  }, 180_000);

  afterAll(async () => {
    events?.close();
    await Promise.allSettled([
      agent?.stop(),
      ...(gateways ?? []).map((g) => g.stop()),
      catalog?.stop(),
      scheduler?.stop(),
    ]);
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('restic shows the host name and volback tags, and selects snapshots by them', async () => {
    const tagged = JSON.parse(await restic(['snapshots', '--tag', 'volume:photos', '--json'])) as Array<{
      id: string;
      hostname: string;
      tags: string[];
      paths: string[];
    }>;
    expect(tagged.map((s) => s.id)).toEqual([snapshotId]);
    expect(tagged[0]!.hostname).toBe(hostName);
    expect(hostName).not.toBe(hostId);
    expect(tagged[0]!.tags).toEqual(['volback', 'volume:photos', `host:${hostName}`, `host-id:${hostId}`]);
    expect(tagged[0]!.paths).toEqual(['/volumes/photos']);
    expect(JSON.parse(await restic(['snapshots', '--host', hostName, '--json']))).toHaveLength(1);
    expect(JSON.parse(await restic(['snapshots', '--tag', 'volume:other', '--json']))).toEqual([]);
  });

  it('bytesStored is what the new data takes in the repository (compressed and encrypted)', async () => {
    // One backup into an empty repository: every blob in it is one the backup stored.
    const stats = JSON.parse(await restic(['stats', '--mode', 'raw-data', '--json'])) as {
      total_size: number;
    };
    expect(firstBackup.stats.bytesStored).toBeGreaterThan(0);
    expect(firstBackup.stats.bytesStored).toBe(stats.total_size);
  });

  it('restic check runs right after a backup through the gateway; the next backup finds its parent', async () => {
    await shell('photos', 'echo more > "$1/2024/02/march.jpg"');
    const second = json<{
      phase: string;
      snapshotId: string;
      backupId: string;
      stats: { filesUnmodified: number };
    }>(await volback(['backup', 'photos', '--wait', '--json']));
    expect(second.phase).toBe('Completed');
    // With locks, as restic runs by default: no gateway holds one once the backup committed.
    await restic(['check']);
    const started = events.of(second.backupId).find((e) => e.type === 'io.volback.backup.started.v1');
    expect((started?.data as { parentSnapshotId?: string }).parentSnapshotId).toBe(snapshotId);
    expect(second.stats.filesUnmodified).toBe(22);
    // Both gateways served the backups: a session's requests are spread over the queue group at
    // random, so the few of an incremental of one file can all reach one gateway (a CI run).
    const served = await Promise.all(
      gateways.map(async (g) => {
        const log = await g.log();
        return log.includes(firstBackup.backupId) || log.includes(second.backupId);
      }),
    );
    expect(served).toEqual([true, true]);

    // Nor once a restore completed.
    const restored = json<RestoreView>(
      await volback(['restore', second.snapshotId, '--to-volume', 'photos-copy', '--wait', '--json']),
    );
    expect(restored.phase, JSON.stringify(restored.error)).toBe('Completed');
    await restic(['check']);
  });

  it('a dry run lists what would be written, replaced and left alone, and changes nothing', async () => {
    await shell(
      'photos',
      'rm "$1/2024/01/photo-7.jpg" && echo edited > "$1/2024/01/photo-1.jpg" && echo new > "$1/2024/01/new-since.jpg"',
    );
    const before = await list('photos');
    const planned = json<RestoreView>(await volback([...restoreJanuary(), '--dry-run', '--json']));
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
    const text = await volback([...restoreJanuary(), '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/1 to write .*19 to replace .*1 left alone/);
    expect(text.stdout).toContain('write   /2024/01/photo-7.jpg');
    expect(text.stdout).toContain('keep    /2024/01/new-since.jpg');
    expect(await list('photos')).toBe(before);
  });

  it('a sub-path restored into its volume lands at its own path and brings back a deleted file', async () => {
    const restored = json<RestoreView>(await volback([...restoreJanuary(), '--wait', '--json']));
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
      await volback([...restoreJanuary(), '--target-dir', 'restored', '--wait', '--json']),
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
      '--yes',
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

  it('restored files have the mtimes the snapshot records, to the nanosecond (in place and through the engine)', async () => {
    const listed = (await restic(['ls', '--json', snapshotId, '/volumes/photos/2024/01']))
      .split('\n')
      .filter(Boolean)
      .map(
        (line) => JSON.parse(line) as { struct_type?: string; type?: string; name?: string; mtime?: string },
      )
      .filter((node) => node.struct_type === 'node' && node.type === 'file');
    expect(listed).toHaveLength(20);
    const photos = (await engine.docker.getVolume('photos').inspect()).Mountpoint;
    let exact = 0;
    for (const node of listed) {
      const recorded = nanoseconds(node.mtime!);
      for (const restored of [
        join(photos, '2024/01', node.name!),
        join(boundDir, 'copy/2024/01', node.name!),
      ]) {
        expect((await lstat(restored, { bigint: true })).mtimeNs, restored).toBe(recorded);
      }
      if (recorded % 1000n !== 0n) exact++;
    }
    // The recorded times have digits below the microsecond, which a double of seconds cannot hold.
    expect(exact).toBeGreaterThan(0);
  });
});
