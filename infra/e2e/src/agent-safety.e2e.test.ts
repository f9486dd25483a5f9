import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackupVolume, GRANT_TTL_MS, hostIdTag, RestoreSnapshot, type Envelope } from '@volback/contracts';
import { connectNats, drainNats, RestoreGrants, type NatsConnection } from '@volback/messaging';
import {
  formatChunkerPolynomial,
  goModeFromPosix,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  type TreeNode,
} from '@volback/repository';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, sendCommand, startService, type ServiceProcess } from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-agent-safety-password';
const MTIME = '2024-05-06T07:08:09.000000000Z';
/** In a container's environment; must not reach a snapshot whose container asks to exclude env. */
const ENV_SECRET = 'db-password-5b1e-never-in-snapshots';

/** A busybox container that keeps running with `volume` at /data, and stops at once on SIGTERM. */
async function runningContainer(
  engine: DockerEngine,
  name: string,
  volume: string,
  extra: { labels?: Record<string, string>; env?: string[] } = {},
) {
  const container = await engine.docker.createContainer({
    name,
    Image: engine.image,
    Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    Labels: extra.labels ?? {},
    Env: extra.env ?? [],
    HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/data`] },
  });
  await container.start();
  return container;
}

function node(name: string, type: TreeNode['type'], posixMode: number, extra: Partial<TreeNode>): TreeNode {
  return {
    name,
    type,
    mode: goModeFromPosix(posixMode),
    mtime: MTIME,
    uid: 0,
    gid: 0,
    content: null,
    ...extra,
  };
}

/**
 * Writes a repository holding, under `/volumes/crafted`, what a hostile snapshot would: a block
 * device (8:0, the first disk), a character device (1:3), a setuid-root file, a setgid
 * directory and a plain file. One snapshot is tagged as `hostId`'s own, one as another host's.
 */
async function craftRepository(path: string, hostId: string): Promise<{ own: string; foreign: string }> {
  const repo = await Repository.init(new LocalBackend(path), PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
  const script = Buffer.from('#!/bin/sh\nid -u\n');
  const text = Buffer.from('ordinary\n');
  const scriptId = (await repo.saveBlob('data', script)).id;
  const textId = (await repo.saveBlob('data', text)).id;
  const shared = await repo.saveTree([]);
  const crafted = await repo.saveTree([
    node('disk', 'dev', 0o060666, { device: 8 * 256 }),
    node('mem', 'chardev', 0o020666, { device: 1 * 256 + 3 }),
    node('notes.txt', 'file', 0o100644, { size: text.length, content: [textId] }),
    node('shared', 'dir', 0o042775, { subtree: shared }),
    node('su-root', 'file', 0o104755, { size: script.length, content: [scriptId] }),
  ]);
  const volumes = await repo.saveTree([node('crafted', 'dir', 0o040755, { subtree: crafted })]);
  const root = await repo.saveTree([node('volumes', 'dir', 0o040755, { subtree: volumes })]);
  await repo.flush();
  const snapshot = (host: string) =>
    repo.saveSnapshot({
      time: new Date().toISOString(),
      tree: root,
      paths: ['/volumes/crafted'],
      hostname: host,
      tags: ['volback', 'volume:crafted', hostIdTag(host)],
    });
  const own = await snapshot(hostId);
  const foreign = await snapshot('another-host');
  await repo.backend.close();
  return { own, foreign };
}

describe('the agent refuses what commands and snapshots may not do to its host', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let gateway: ServiceProcess;
  let agent: ServiceProcess;
  let events: EventLog;
  let hostId: string;
  let snapshots: { own: string; foreign: string };

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-safety-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-test' });
    events = new EventLog(nc);
    agent = await startService(
      'agent',
      'agent-1',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
        VOLBACK_AGENT_HOOK_CONTAINERS: 'listed-app',
      },
      dir,
    );
    const registered = await events.waitFor('the host to register', (e) =>
      e.type.startsWith('io.volback.host.'),
    );
    hostId = (registered.data as { hostId: string }).hostId;
    snapshots = await craftRepository(repo, hostId);
    gateway = await startService(
      'gateway',
      'gateway-1',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD },
      dir,
    );
  }, 120_000);

  afterAll(async () => {
    events?.close();
    await agent?.stop();
    await gateway?.stop();
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  async function restoreNow(
    restoreId: string,
    snapshotId: string,
    target: { kind: 'new-volume' | 'existing-volume'; volumeName: string; stopContainers?: boolean },
    preserveSpecialModes?: boolean,
  ): Promise<Envelope> {
    // As the catalog does before every restore: the gateway lets this host read that snapshot.
    await new RestoreGrants(nc).put(restoreId, {
      hostId,
      snapshotId,
      expiresAt: new Date(Date.now() + GRANT_TTL_MS).toISOString(),
    });
    await sendCommand(nc, RestoreSnapshot, {
      restoreId,
      hostId,
      snapshotId,
      target,
      ...(preserveSpecialModes !== undefined ? { preserveSpecialModes } : {}),
    });
    return events.outcome(restoreId);
  }

  /** `name mode(octal) uid type` of each entry of a volume, sorted. */
  async function listing(volume: string): Promise<string[]> {
    const out = await runInVolume(
      engine.docker,
      engine.image,
      volume,
      'cd /v && for f in * .[!.]*; do [ -e "$f" ] || [ -L "$f" ] && stat -c "%n %a %u %F" "$f"; done; true',
    );
    return out.trim().split('\n').filter(Boolean).sort();
  }

  interface Skipped {
    devices: { count: number; paths: string[] };
    specialModes: { count: number; bytes: number; paths: string[] };
  }

  it('a crafted snapshot restores neither its device nodes nor its setuid bit, and says so', async () => {
    const outcome = await restoreNow('safety-default', snapshots.own, {
      kind: 'new-volume',
      volumeName: 'from-crafted',
    });
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    expect((outcome.data as { skipped: Skipped }).skipped).toEqual({
      devices: { count: 2, bytes: 0, paths: ['/disk', '/mem'] },
      specialModes: { count: 1, bytes: 16, paths: ['/su-root'] },
    });
    expect(await listing('from-crafted')).toEqual([
      'notes.txt 644 0 regular file',
      'shared 2775 0 directory', // a directory's setgid grants nothing: kept
      'su-root 755 0 regular file',
    ]);
  });

  it('through the engine archive API too (a volume the agent cannot write in place)', async () => {
    // A bind-mounted local volume has driver options: the agent writes it through a helper container.
    const bound = join(dir, 'bound');
    await mkdir(bound);
    await engine.docker.createVolume({
      Name: 'bound',
      DriverOpts: { type: 'none', o: 'bind', device: bound },
    });
    const outcome = await restoreNow('safety-archive', snapshots.own, {
      kind: 'existing-volume',
      volumeName: 'bound',
    });
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    expect((outcome.data as { skipped: Skipped }).skipped).toMatchObject({
      devices: { count: 2 },
      specialModes: { count: 1, paths: ['/su-root'] },
    });
    expect((await readdir(bound)).sort()).toEqual(['notes.txt', 'shared', 'su-root']);
    expect((await stat(join(bound, 'su-root'))).mode & 0o7777).toBe(0o755);
  });

  it('a snapshot of another host keeps no setuid bit even when the restore asks for it', async () => {
    const outcome = await restoreNow(
      'safety-foreign',
      snapshots.foreign,
      { kind: 'new-volume', volumeName: 'from-foreign' },
      true,
    );
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    expect((outcome.data as { skipped: Skipped }).skipped.specialModes.paths).toEqual(['/su-root']);
    expect(await listing('from-foreign')).toContain('su-root 755 0 regular file');
    expect((await listing('from-foreign')).join('\n')).not.toMatch(/disk|mem/);
  });

  it("this host's own snapshot keeps its setuid bit when asked, and still no device node", async () => {
    const outcome = await restoreNow(
      'safety-own-preserved',
      snapshots.own,
      { kind: 'new-volume', volumeName: 'from-own' },
      true,
    );
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    expect((outcome.data as { skipped: Skipped }).skipped).toEqual({
      devices: { count: 2, bytes: 0, paths: ['/disk', '/mem'] },
      specialModes: { count: 0, bytes: 0, paths: [] },
    });
    expect(await listing('from-own')).toEqual([
      'notes.txt 644 0 regular file',
      'shared 2775 0 directory',
      'su-root 4755 0 regular file',
    ]);
  });

  it('a restore with stopContainers stops only the containers that mount the target volume', async () => {
    await engine.docker.createVolume({ Name: 'busy' });
    await engine.docker.createVolume({ Name: 'elsewhere' });
    const user = await runningContainer(engine, 'busy-user', 'busy');
    const bystander = await runningContainer(engine, 'bystander', 'elsewhere');
    const before = {
      user: (await user.inspect()).State.StartedAt,
      bystander: (await bystander.inspect()).State.StartedAt,
    };
    const outcome = await restoreNow('safety-stop', snapshots.own, {
      kind: 'existing-volume',
      volumeName: 'busy',
      stopContainers: true,
    });
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    const after = { user: await user.inspect(), bystander: await bystander.inspect() };
    expect(after.user.State.Running).toBe(true);
    expect(after.user.State.StartedAt).not.toBe(before.user); // stopped, restored, started again
    expect(after.bystander.State.StartedAt).toBe(before.bystander);
    await user.remove({ force: true });
    await bystander.remove({ force: true });
  });

  describe('hooks sent with a command', () => {
    beforeAll(async () => {
      await engine.docker.createVolume({ Name: 'app-data' });
      await engine.docker.createVolume({ Name: 'other-data' });
      await runningContainer(engine, 'plain-app', 'app-data');
      await runningContainer(engine, 'labelled-app', 'app-data', {
        labels: { 'volback.hooks.allow': 'true' },
      });
      await runningContainer(engine, 'listed-app', 'app-data');
      await runningContainer(engine, 'outsider', 'other-data', { labels: { 'volback.hooks.allow': 'true' } });
    }, 60_000);

    async function backupWithHook(backupId: string, container: string, pre: string): Promise<Envelope> {
      await sendCommand(nc, BackupVolume, {
        backupId,
        hostId,
        volumeName: 'app-data',
        trigger: 'manual',
        consistency: { mode: 'hooks', container, pre: [pre], timeoutSeconds: 30 },
      });
      return events.outcome(backupId);
    }

    it('are refused in a container that did not opt in, and nothing runs there', async () => {
      const outcome = await backupWithHook(
        'hook-plain',
        'plain-app',
        'touch /data/marker-plain; echo leaked',
      );
      expect(outcome.type).toBe('io.volback.backup.failed.v1');
      const data = outcome.data as { code: string; reason: string; willRetry: boolean };
      expect(data.code).toBe('VOLBACK_AGENT_HOOK_NOT_ALLOWED');
      expect(data.reason).toContain('container plain-app has not opted in');
      expect(data.reason).not.toContain('marker-plain');
      expect(await listing('app-data')).toEqual([]);
    });

    it('are refused in a container that does not mount the volume, even one that opted in', async () => {
      const outcome = await backupWithHook('hook-outsider', 'outsider', 'touch /data/marker-outsider');
      expect(outcome.data).toMatchObject({ code: 'VOLBACK_AGENT_HOOK_NOT_ALLOWED' });
      expect((outcome.data as { reason: string }).reason).toContain('does not mount volume app-data');
      expect(await listing('other-data')).toEqual([]);
      expect(await listing('app-data')).toEqual([]);
    });

    it('run in a container labelled volback.hooks.allow=true', async () => {
      const outcome = await backupWithHook('hook-labelled', 'labelled-app', 'touch /data/marker-labelled');
      expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
      expect(await listing('app-data')).toEqual(['marker-labelled 644 0 regular empty file']);
    });

    it("run in a container on the agent's allow-list; a failure says its status and stderr tail, never stdout", async () => {
      const outcome = await backupWithHook(
        'hook-listed',
        'listed-app',
        'touch /data/marker-listed; echo row-with-$((6 * 7))-customer; echo "dump: disk full" >&2; exit 4',
      );
      expect(outcome.type).toBe('io.volback.backup.failed.v1');
      const data = outcome.data as { code: string; reason: string };
      expect(data.code).toBe('VOLBACK_HOOK_FAILED');
      expect(data.reason).toContain('exited with 4; stderr (last 200 bytes at most): "dump: disk full"');
      expect(data.reason).not.toContain('row-with-42-customer'); // what it printed on stdout
      expect(await listing('app-data')).toContain('marker-listed 644 0 regular empty file');
    });
  });

  it('containers.json keeps env names only for a container labelled to exclude them', async () => {
    await engine.docker.createVolume({ Name: 'env-data' });
    const hidden = await runningContainer(engine, 'env-hidden', 'env-data', {
      labels: { 'volback.containers-json.env': 'exclude' },
      env: [`DB_PASSWORD=${ENV_SECRET}`],
    });
    const shown = await runningContainer(engine, 'env-shown', 'env-data', { env: ['GREETING=visible'] });
    await sendCommand(nc, BackupVolume, {
      backupId: 'env-backup',
      hostId,
      volumeName: 'env-data',
      trigger: 'manual',
    });
    const outcome = await events.outcome('env-backup');
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    const { stdout } = await run(
      'restic',
      [
        '-r',
        repo,
        '--no-cache',
        '--no-lock',
        'dump',
        (outcome.data as { snapshotId: string }).snapshotId,
        '/.volback/containers.json',
      ],
      { env: { ...process.env, RESTIC_PASSWORD: PASSWORD } },
    );
    expect(stdout).not.toContain(ENV_SECRET);
    const recorded = JSON.parse(stdout) as Array<{ Name: string; Config: { Env: string[]; Image: string } }>;
    const byName = new Map(recorded.map((c) => [c.Name, c.Config]));
    expect(byName.get('/env-hidden')?.Env).toContain('DB_PASSWORD');
    expect(byName.get('/env-hidden')?.Image).toBe(engine.image);
    expect(byName.get('/env-shown')?.Env).toContain('GREETING=visible');
    await hidden.remove({ force: true });
    await shown.remove({ force: true });
  });
});
