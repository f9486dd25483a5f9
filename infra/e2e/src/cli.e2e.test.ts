import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { stripVTControlCharacters } from 'node:util';
import { join } from 'node:path';
import { BackupVolume } from '@volback/contracts';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import {
  freePort,
  startDockerEngine,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  sendCommand,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-cli-password';
const TOKEN = 'e2e-cli-write-token';
const HOST_NAME = 'vm';
const PHOTOS = 1200;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Phases a progress view shows, in order (tools/cli/src/progress-view.ts). */
const PHASES = ['queued', 'running', 'quiescing', 'reading', 'writing', 'committing'];

describe('the volback binary against a real stack: names, paging, pipes, progress, maintenance, --to-dir, events', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let gateway: ServiceProcess;
  let scheduler: ServiceProcess;
  let agent: ServiceProcess;
  let catalog: CatalogProcess;
  let catalogPort: number;
  let url: string;
  let events: EventLog;
  let hostId: string;
  let snapshotId: string;

  const env = () => ({ ...process.env, VOLBACK_CATALOG_URL: url, VOLBACK_TOKEN: TOKEN });
  /** Runs a program to its end with the catalog's address in its environment. */
  const runProcess = (command: string, args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(command, args, { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
    });
  const volback = (args: string[]) => runProcess(process.execPath, [CLI_MAIN, ...args]);
  /** A shell pipeline with `volback` as a command, its exit status that of the whole pipe. */
  const shell = (script: string) =>
    runProcess('bash', [
      '-c',
      `set -o pipefail; volback() { "${process.execPath}" "${CLI_MAIN}" "$@"; }; ${script}`,
    ]);
  const json = <T>(run: Run): T => {
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as T;
  };
  const startCatalog = () =>
    startCatalogService(
      'catalog-1',
      {
        VOLBACK_NATS_URL: nats.url,
        VOLBACK_CATALOG_WRITE_TOKEN: TOKEN,
        VOLBACK_CATALOG_PORT: String(catalogPort),
      },
      join(dir, 'catalog'),
      dir,
    );

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-cli-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-cli-test' });
    events = new EventLog(nc);
    await engine.docker.createVolume({ Name: 'photos' });
    await runInVolume(
      engine.docker,
      engine.image,
      'photos',
      `cd "$1" && mkdir -p 2024/01 && i=0 && while [ $i -lt ${PHOTOS} ]; do echo "photo $i" > 2024/01/photo-$i.jpg; i=$((i+1)); done && echo notes > notes.txt && ln -s 2024/01 latest`,
    );
    catalogPort = await freePort();
    url = `http://127.0.0.1:${catalogPort}`;
    [gateway, catalog, scheduler] = await Promise.all([
      startService(
        'gateway',
        'gateway-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startCatalog(),
      startOnDemandScheduler('scheduler-0', nats.url, dir),
    ]);
    agent = await startService(
      'agent',
      'agent-1',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
        VOLBACK_HOST_NAME: HOST_NAME,
      },
      dir,
    );
    await waitUntil(
      'the catalog to list photos',
      async () => {
        const run = await volback(['volumes', '--json']);
        return run.code === 0 && run.stdout.includes('"photos"');
      },
      60_000,
    );
  }, 240_000);

  afterAll(async () => {
    events?.close();
    await Promise.allSettled([agent?.stop(), gateway?.stop(), catalog?.stop(), scheduler?.stop()]);
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('takes host names wherever it takes host ids, shows names, and fails on an unknown host', async () => {
    const hosts = json<Array<{ hostId: string; name: string }>>(await volback(['hosts', '--json']));
    expect(hosts.map((h) => h.name)).toEqual([HOST_NAME]);
    hostId = hosts[0]!.hostId;

    const table = await volback(['volumes']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${HOST_NAME}\\s+photos\\s`, 'm'));
    expect(table.stdout).not.toContain(hostId);

    const byName = json<Array<{ volumeName: string }>>(
      await volback(['volumes', '--host', HOST_NAME, '--json']),
    );
    expect(byName.map((v) => v.volumeName)).toEqual(['photos']);
    const byId = json<Array<{ volumeName: string }>>(await volback(['volumes', '--host', hostId, '--json']));
    expect(byId).toEqual(byName);

    const unknown = await volback(['volumes', '--host', 'no-such-host']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toContain('no host with the id or name "no-such-host"');
    expect((await volback(['backup', 'photos', '--host', 'no-such-host'])).code).toBe(5);
  });

  it('shows backup progress one line per phase, phases never going back; --json progress as JSON lines', async () => {
    const run = await volback(['backup', 'photos', '--host', HOST_NAME, '--wait']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^backup \S+ completed: snapshot [0-9a-f]{8}/);
    const phases = [...run.stderr.matchAll(/^backing up photos: (\w+)/gm)].map((m) => m[1]!);
    expect(phases.length).toBeGreaterThan(0);
    const order = phases.map((p) => PHASES.indexOf(p));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(phases).size).toBe(phases.length);

    // The second backup knows how many files the first one saw: a total, a percentage and a rate.
    const second = await volback(['backup', 'photos', '--wait', '--json']);
    const result = json<{ phase: string; snapshotId: string }>(second);
    expect(result.phase).toBe('Completed');
    snapshotId = result.snapshotId;
    const lines = second.stderr
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { type: string; phase: string; totalFiles?: number; bytesPerSecond: number },
      );
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line.type).toBe('progress');
      expect(line.totalFiles).toBe(PHOTOS + 1);
      expect(typeof line.bytesPerSecond).toBe('number');
    }
    const jsonOrder = lines.map((l) => PHASES.indexOf(l.phase));
    expect(jsonOrder).toEqual([...jsonOrder].sort((a, b) => a - b));
  });

  it('pages find: says on stderr when it cut the list, --all gets every match, the API hands out cursors', async () => {
    await waitUntil('the catalog to project both snapshots', async () => {
      const run = await volback(['snapshots', 'photos', '--json']);
      return run.code === 0 && (JSON.parse(run.stdout) as unknown[]).length === 2;
    });
    const cut = await volback(['find', '*.jpg', '--volume', 'photos', '--snapshots', '1']);
    expect(cut.code, cut.stderr).toBe(0);
    expect(cut.stdout.trim().split('\n')).toHaveLength(500 + 2);
    expect(cut.stderr).toContain('showing the first 500 matches; more exist');

    const all = json<Array<{ path: string }>>(
      await volback(['find', '*.jpg', '--volume', 'photos', '--snapshots', '1', '--all', '--json']),
    );
    expect(new Set(all.map((f) => f.path)).size).toBe(PHOTOS);

    const some = await volback(['find', '*.jpg', '--snapshots', '1', '--limit', '700', '--json']);
    expect(JSON.parse(some.stdout)).toHaveLength(700);
    expect(some.stderr).toContain('showing the first 700 matches');

    // The API itself: pages of 500 with a cursor, the last one without.
    const paths: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await fetch(
        `${url}/v1/hosts/${HOST_NAME}/volumes/photos/find?glob=*.jpg&snapshots=1&limit=500${cursor ? `&cursor=${cursor}` : ''}`,
        { headers: { authorization: `Bearer ${TOKEN}` } },
      );
      expect(res.status).toBe(200);
      const page = (await res.json()) as {
        items: Array<{ path: string }>;
        nextCursor: string | null;
        truncated: boolean;
      };
      paths.push(...page.items.map((i) => i.path));
      expect(page.truncated).toBe(page.nextCursor !== null);
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(new Set(paths).size).toBe(PHOTOS);
  });

  it('ends quietly with exit 0 when the reader of its output goes away', async () => {
    const table = await shell(`volback find '*.jpg' --volume photos --all | head -1`);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^SNAPSHOT/);
    const lines = await shell(`volback events --json --limit 1000 | head -1`);
    expect(lines).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(lines.stdout)).toHaveProperty('type');
  });

  it('restores into a directory here through the tar download, keeping symlinks as symlinks', async () => {
    const target = join(dir, 'restored-here');
    const run = await volback(['restore', snapshotId.slice(0, 8), '--to-dir', target, '--json']);
    const result = json<{ files: number; symlinks: number; skipped: unknown[] }>(run);
    expect(result).toMatchObject({ files: PHOTOS + 1, symlinks: 1, skipped: [] });
    expect(await readFile(join(target, '2024/01/photo-7.jpg'), 'utf8')).toBe('photo 7\n');
    expect((await lstat(join(target, 'latest'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(target, 'latest'))).toBe('2024/01');
    expect(await readdir(join(target, '2024/01'))).toHaveLength(PHOTOS);

    const again = await volback(['restore', snapshotId, '--to-dir', target]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not empty');

    const sub = join(dir, 'restored-sub');
    const part = json<{ files: number }>(
      await volback(['restore', snapshotId, '--to-dir', sub, '--path', '/notes.txt', '--json']),
    );
    expect(part.files).toBe(1);
    expect(await readFile(join(sub, 'notes.txt'), 'utf8')).toBe('notes\n');

    // A sub-directory lands at its own path, as restic's --include puts it.
    const deep = join(dir, 'restored-deep');
    const month = json<{ files: number }>(
      await volback(['restore', snapshotId, '--to-dir', deep, '--path', '/2024/01', '--json']),
    );
    expect(month.files).toBe(PHOTOS);
    expect(await readFile(join(deep, '2024/01/photo-7.jpg'), 'utf8')).toBe('photo 7\n');
    expect(await readdir(deep)).toEqual(['2024']);
  });

  it('asks before restoring over an existing volume, refuses without --yes off a terminal, and names flags in errors', async () => {
    const refused = await volback(['restore', snapshotId, '--to-volume', 'photos', '--existing']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');
    const done = json<{ phase: string }>(
      await volback([
        'restore',
        snapshotId,
        '--to-volume',
        'photos',
        '--existing',
        '--yes',
        '--wait',
        '--json',
      ]),
    );
    expect(done.phase).toBe('Completed');

    const bad = await volback(['restore', snapshotId, '--to-volume', 'bad/name']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--to-volume');
    expect(bad.stderr).not.toMatch(/body\.|volumeName|new-volume/);
    const exists = await volback(['restore', snapshotId, '--to-volume', 'photos']);
    expect(exists.code).toBe(8);
    expect(exists.stderr).toContain('--existing');
    expect(exists.stderr).not.toContain('existing-volume');
  });

  it('forgets, checks and prunes through the gateways and prints each outcome', async () => {
    const forgotten = json<{ status: string; summary: { forgotten: number; kept: number } }>(
      await volback(['forget', 'photos', '--host', HOST_NAME, '--keep-last', '1', '--json']),
    );
    expect(forgotten).toMatchObject({ status: 'Succeeded', summary: { forgotten: 1, kept: 1 } });
    // The gateway keeps its shared lock a while after a session; prune needs the repository to itself.
    await waitUntil(
      'the gateway to release its locks',
      async () => (await readdir(join(dir, 'repo', 'locks')).catch(() => [])).length === 0,
      120_000,
    );
    const pruned = await volback(['prune']);
    expect(pruned.code, pruned.stdout + pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/^prune \S+ done: \d+ packs deleted/);
    const checked = json<{ status: string; operation: string }>(
      await volback(['check', '--read-data', '--json']),
    );
    expect(checked).toMatchObject({ status: 'Succeeded', operation: 'check' });
    const usage = await volback(['forget', 'photos']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--keep-last');
  }, 240_000);

  it('waits for the scheduler to take or refuse a policy change, names flags, and prints a policy for people', async () => {
    // Only labelled volumes by default: the scheduler starts no backup of photos while it runs here.
    const scheduler = await startService(
      'scheduler',
      'scheduler-1',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled' },
      dir,
    );
    try {
      const bad = await volback([
        'policies',
        'set',
        'photos-nightly',
        '--volume',
        'photos',
        '--cron',
        '61 3 * * *',
        '--timezone',
        'Mars/Base',
        '--keep-last',
        '3',
      ]);
      // Every problem at once, as flags, and nothing sent.
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toContain('--cron');
      expect(bad.stderr).toContain('--timezone');
      expect(bad.stderr).toContain('Mars/Base');

      const set = await volback([
        'policies',
        'set',
        'photos-nightly',
        '--volume',
        'photos',
        '--cron',
        '0 3 * * *',
        '--keep-last',
        '3',
      ]);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout.trim()).toBe('policy photos-nightly defined');
      const show = await volback(['policies', 'show', 'photos-nightly']);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).not.toContain('{');
      expect(show.stdout).toMatch(/^schedule\s+0 3 \* \* \* \(UTC\)$/m);
      expect(show.stdout).toMatch(new RegExp(`^scope\\s+volume photos on ${HOST_NAME}$`, 'm'));
      expect(show.stdout).toMatch(/^retention\s+keep last 3$/m);
      expect((await volback(['policies', 'show', 'no-such-policy'])).code).toBe(5);

      const removed = await volback(['policies', 'remove', 'photos-nightly', '--json']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(JSON.parse(removed.stdout)).toMatchObject({ policyId: 'photos-nightly', outcome: 'removed' });
    } finally {
      await scheduler.stop();
    }
  });

  it('prints event history and exits; --follow reconnects after a catalog restart and misses nothing', async () => {
    const history = await volback(['events', '--type', 'io.volback.backup.completed']);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout.trim().split('\n')).toHaveLength(2);
    expect(history.stdout).toContain('backup.completed.v1');

    const follower: ChildProcess = spawn(
      process.execPath,
      [CLI_MAIN, 'events', '--follow', '--json', '--type', 'io.volback.backup.'],
      { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    follower.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => follower.on('close', resolve));
    try {
      // One live event proves the stream is open before the catalog goes away.
      const before = await volback(['backup', 'photos', '--json']);
      const beforeId = json<{ backupId: string }>(before).backupId;
      await waitUntil('the follower to print the first backup', async () => out.includes(beforeId), 60_000);
      await events.outcome(beforeId);

      await catalog.stop();
      const down = await volback(['status']);
      expect(down.code).toBe(7);
      expect(down.stderr).toContain('not answering (connection refused)');
      await waitUntil('the follower to notice', async () => err.includes('reconnecting'), 30_000);

      // Happens while no catalog runs: only the history can bring it to the follower.
      const missedId = `backup-e2e-cli-missed-${Date.now()}`;
      await sendCommand(nc, BackupVolume, {
        backupId: missedId,
        hostId,
        volumeName: 'photos',
        trigger: 'manual',
      });
      await events.outcome(missedId);

      catalog = await startCatalog();
      await waitUntil(
        'the follower to print the backup it missed',
        async () => out.includes(missedId) && /backup\.completed/.test(out.split(missedId).slice(1).join('')),
        60_000,
      );
      expect(err).toContain('reconnected');
      const ids = out
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: string }).id);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      follower.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 240_000);

  it('draws a progress bar that fits the terminal when it runs on one', async () => {
    // `script` gives the CLI a real terminal (a pty) of 72 columns.
    const run = await runProcess('script', [
      '-qec',
      `stty cols 72 rows 20; "${process.execPath}" "${CLI_MAIN}" backup photos --wait`,
      '/dev/null',
    ]);
    expect(run.code, run.stdout).toBe(0);
    // cli-progress redraws after moving the cursor to column 0 (CSI G), ESC 7 / ESC 8 or \r.
    const ESC = String.fromCharCode(27);
    const frames = run.stdout
      .split(new RegExp(`\\r|\\n|${ESC}7|${ESC}8|${ESC}\\[\\d*G`))
      .map((f) => stripVTControlCharacters(f))
      .filter(Boolean);
    expect(frames.join('\n')).toMatch(/(queued|running|quiescing|reading|committing)\s+\[[█░]+\] \d+% ETA /);
    const result = frames.filter((f) => /^backup \S+ completed/.test(f));
    expect(result).toHaveLength(1);
    for (const frame of frames.filter((f) => !result.includes(f)))
      expect(frame.length, frame).toBeLessThanOrEqual(72);
  });
});
