import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackupVolume, GRANT_TTL_MS, RestoreSnapshot, type Envelope } from '@volback/contracts';
import { connectNats, drainNats, RestoreGrants, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, sendCommand, startService, type ServiceProcess } from './stack.ts';
import { FILL_VOLUME_SCRIPT, LIST_TREE_SCRIPT, listHostTree, runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-backup-restore-password';

async function restic(repo: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('restic', ['-r', repo, '--no-cache', ...args], {
      env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string; stdout?: string };
    throw new Error(`restic ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: error });
  }
}

describe('agent and gateway back up and restore a real Docker volume over NATS', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let gateway: ServiceProcess;
  let agent: ServiceProcess;
  let events: EventLog;
  let hostId: string;
  let expected: string;

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-test' });
    events = new EventLog(nc);
    gateway = await startService(
      'gateway',
      'gateway-1',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD },
      dir,
    );
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
    const registered = await events.waitFor('the host to register', (e) =>
      e.type.startsWith('io.volback.host.'),
    );
    hostId = (registered.data as { hostId: string }).hostId;

    await engine.docker.createVolume({ Name: 'appdata', Labels: { app: 'e2e' } });
    await runInVolume(engine.docker, engine.image, 'appdata', FILL_VOLUME_SCRIPT);
    expected = await runInVolume(engine.docker, engine.image, 'appdata', LIST_TREE_SCRIPT);
  }, 120_000);

  afterAll(async () => {
    events?.close();
    await agent?.stop();
    await gateway?.stop();
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  async function backupNow(backupId: string, method: 'auto' | 'archive' | 'direct'): Promise<Envelope> {
    await sendCommand(nc, BackupVolume, {
      backupId,
      hostId,
      volumeName: 'appdata',
      trigger: 'manual',
      method,
    });
    return events.outcome(backupId);
  }

  async function restoreNow(restoreId: string, snapshotId: string, volumeName: string): Promise<Envelope> {
    await sendCommand(nc, RestoreSnapshot, {
      restoreId,
      hostId,
      snapshotId,
      target: { kind: 'new-volume', volumeName },
      // The fixture has a setuid file; this host's own snapshot may keep it when asked.
      preserveSpecialModes: true,
    });
    return events.outcome(restoreId);
  }

  it('the fixture volume holds every kind of entry', () => {
    for (const name of [
      './app/big.bin',
      './app/queue.fifo',
      './app/link-relative symlink',
      './empty-dir',
      'ünïcødé',
    ]) {
      expect(expected).toContain(name);
    }
  });

  for (const method of ['archive', 'direct'] as const) {
    it(`backs up (${method}), restores into a new volume, and restic agrees`, async () => {
      const outcome = await backupNow(`e2e-${method}`, method);
      expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
      const data = outcome.data as { snapshotId: string; stats: { bytesRead: number; filesNew: number } };
      const started = events.of(`e2e-${method}`).find((e) => e.type === 'io.volback.backup.started.v1');
      expect((started?.data as { method: string }).method).toBe(method);
      expect(data.stats.bytesRead).toBeGreaterThan(6 * 1024 * 1024);

      const restored = await restoreNow(`e2e-restore-${method}`, data.snapshotId, `restored-${method}`);
      expect(restored.type, JSON.stringify(restored.data)).toBe('io.volback.restore.completed.v1');
      const listing = await runInVolume(engine.docker, engine.image, `restored-${method}`, LIST_TREE_SCRIPT);
      expect(listing).toBe(expected);
      const volume = await engine.docker.getVolume(`restored-${method}`).inspect();
      expect(volume.Labels).toMatchObject({
        app: 'e2e',
        'io.volback.restored-from-snapshot': data.snapshotId,
      });

      // With locks, as restic runs by default: no gateway holds one once the backup and restore ended.
      await restic(repo, ['check', '--read-data']);
      const target = join(dir, `restic-${method}`);
      await restic(repo, ['restore', data.snapshotId, '--target', target]);
      expect(await listHostTree(join(target, 'volumes/appdata'))).toBe(expected);
    });
  }

  it('a second backup reads only what changed and sends nothing twice', async () => {
    const outcome = await backupNow('e2e-incremental', 'direct');
    expect(outcome.type).toBe('io.volback.backup.completed.v1');
    const stats = (
      outcome.data as { stats: { bytesAdded: number; filesUnmodified: number; totalBytes: number } }
    ).stats;
    expect(stats.filesUnmodified).toBeGreaterThan(5);
    // The volume's size counts the files it did not read again.
    expect(stats.totalBytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(stats.bytesAdded).toBeLessThan(64 * 1024);
  });

  it('a restore into a volume that exists is refused and changes nothing', async () => {
    const snapshots = JSON.parse(await restic(repo, ['snapshots', '--json'])) as Array<{ id: string }>;
    const outcome = await restoreNow('e2e-restore-exists', snapshots[0]!.id, 'appdata');
    expect(outcome.type).toBe('io.volback.restore.failed.v1');
    expect((outcome.data as { code: string }).code).toBe('VOLBACK_VOLUME_EXISTS');
    expect(await runInVolume(engine.docker, engine.image, 'appdata', LIST_TREE_SCRIPT)).toBe(expected);
  });

  it('a restore into a volume a running container uses is refused, then done with stopContainers', async () => {
    const snapshotId = (
      events.events.find((e) => e.type === 'io.volback.backup.completed.v1')!.data as {
        snapshotId: string;
      }
    ).snapshotId;
    await engine.docker.createVolume({ Name: 'in-use' });
    const user = await engine.docker.createContainer({
      name: 'uses-in-use',
      Image: engine.image,
      Cmd: ['sleep', '3600'],
      Labels: { 'volback.stop.timeout': '1' },
      HostConfig: { NetworkMode: 'none', Binds: ['in-use:/data'] },
    });
    await user.start();
    const target = { kind: 'existing-volume' as const, volumeName: 'in-use' };
    await sendCommand(nc, RestoreSnapshot, { restoreId: 'e2e-in-use-refused', hostId, snapshotId, target });
    const refused = await events.outcome('e2e-in-use-refused');
    expect((refused.data as { code: string }).code).toBe('VOLBACK_VOLUME_IN_USE');

    await sendCommand(nc, RestoreSnapshot, {
      restoreId: 'e2e-in-use-stopped',
      hostId,
      snapshotId,
      target: { ...target, stopContainers: true },
      preserveSpecialModes: true,
    });
    const done = await events.outcome('e2e-in-use-stopped');
    expect(done.type, JSON.stringify(done.data)).toBe('io.volback.restore.completed.v1');
    expect((await user.inspect()).State.Running).toBe(true);
    expect(await runInVolume(engine.docker, engine.image, 'in-use', LIST_TREE_SCRIPT)).toBe(expected);
    await user.remove({ force: true });
  });

  it('a failing pre-backup hook fails the backup with its stderr tail, and nothing is written', async () => {
    await engine.docker.createVolume({ Name: 'hooked' });
    const app = await engine.docker.createContainer({
      name: 'hooked-app',
      Image: engine.image,
      Cmd: ['sleep', '3600'],
      Labels: { 'volback.hooks.pre': 'echo dump failed: disk full >&2; exit 3' },
      HostConfig: { NetworkMode: 'none', Binds: ['hooked:/data'] },
    });
    await app.start();
    await sendCommand(nc, BackupVolume, {
      backupId: 'e2e-hook',
      hostId,
      volumeName: 'hooked',
      trigger: 'manual',
    });
    const outcome = await events.outcome('e2e-hook');
    expect(outcome.type).toBe('io.volback.backup.failed.v1');
    expect(outcome.data).toMatchObject({ code: 'VOLBACK_HOOK_FAILED' });
    expect((outcome.data as { reason: string }).reason).toContain('dump failed: disk full');
    const snapshots = JSON.parse(
      await restic(repo, ['snapshots', '--no-lock', '--json', '--path', '/volumes/hooked']),
    ) as unknown[];
    expect(snapshots).toEqual([]);
    expect((await app.inspect()).State.Running).toBe(true);
    await app.remove({ force: true });
  });

  it('a backup of a volume that does not exist fails with a clear reason', async () => {
    await sendCommand(nc, BackupVolume, {
      backupId: 'e2e-missing',
      hostId,
      volumeName: 'no-such-volume',
      trigger: 'manual',
    });
    const outcome = await events.outcome('e2e-missing');
    expect(outcome.type).toBe('io.volback.backup.failed.v1');
    expect((outcome.data as { reason: string }).reason).toMatch(/no-such-volume/);
  });

  it("restores another host's snapshot only with the catalog's grant: FORBIDDEN without one", async () => {
    // given a second agent on the engine, another host, which backs the volume up
    const other = await startService(
      'agent',
      'agent-2',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-2-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
      },
      dir,
    );
    try {
      const registered = await events.waitFor(
        'the second host to register',
        (e) => e.type === 'io.volback.host.registered.v1' && (e.data as { hostId: string }).hostId !== hostId,
      );
      const otherHost = (registered.data as { hostId: string }).hostId;
      await sendCommand(nc, BackupVolume, {
        backupId: 'e2e-other-host',
        hostId: otherHost,
        volumeName: 'appdata',
        trigger: 'manual',
      });
      const backedUp = await events.outcome('e2e-other-host');
      expect(backedUp.type, JSON.stringify(backedUp.data)).toBe('io.volback.backup.completed.v1');
      const { snapshotId } = backedUp.data as { snapshotId: string };

      // when this host restores it without a grant, then the gateways refuse it
      const refused = await restoreNow('e2e-restore-ungranted', snapshotId, 'from-other-ungranted');
      expect(refused.type).toBe('io.volback.restore.failed.v1');
      expect(refused.data).toMatchObject({ code: 'FORBIDDEN' });
      expect((refused.data as { reason: string }).reason).toContain(snapshotId);

      // when the catalog granted it (as it does before every RestoreSnapshot), then it is restored
      await new RestoreGrants(nc).put('e2e-restore-granted', {
        hostId,
        snapshotId,
        expiresAt: new Date(Date.now() + GRANT_TTL_MS).toISOString(),
      });
      const restored = await restoreNow('e2e-restore-granted', snapshotId, 'from-other-granted');
      expect(restored.type, JSON.stringify(restored.data)).toBe('io.volback.restore.completed.v1');
      // Another host's snapshot: setuid/setgid bits are not restored (the agent keeps them only
      // for its own host's), so the fixture's setuid script comes back 0755.
      expect(await runInVolume(engine.docker, engine.image, 'from-other-granted', LIST_TREE_SCRIPT)).toBe(
        withoutSpecialModes(expected),
      );
      expect(expected).toContain('./app/script.sh 89ed');
    } finally {
      await other.stop();
    }
  });
});

/** A {@link LIST_TREE_SCRIPT} listing with setuid and setgid cleared on everything but directories. */
function withoutSpecialModes(listing: string): string {
  return listing
    .split('\n')
    .map((line) => {
      const [path, mode, ...rest] = line.split(' ');
      if (!mode || mode === 'symlink' || !/^[0-9a-f]+$/.test(mode)) return line;
      const bits = Number.parseInt(mode, 16);
      if ((bits & 0o170000) === 0o040000) return line;
      return [path, (bits & ~0o6000).toString(16), ...rest].join(' ');
    })
    .join('\n');
}
