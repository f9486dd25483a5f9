import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
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
  EventLog,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { untar } from './tar-fixture.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-catalog-password';
const WRITE_TOKEN = 'e2e-catalog-write-token';

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

describe('the volback CLI against a running stack (NATS, gateway, agent, catalog)', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let gateway: ServiceProcess;
  let scheduler: ServiceProcess;
  let agent: ServiceProcess;
  let catalog: CatalogProcess;
  let events: EventLog;
  let snapshotId: string;

  const volback = (args: string[], token = WRITE_TOKEN): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: catalog.url, VOLBACK_TOKEN: token },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    });
  const json = <T>(run: Run): T => {
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout.toString()) as T;
  };

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-catalog-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-catalog-test' });
    events = new EventLog(nc);
    await engine.docker.createVolume({ Name: 'appdata', Labels: { app: 'e2e' } });
    await runInVolume(
      engine.docker,
      engine.image,
      'appdata',
      'mkdir -p "$1/app/conf" && echo hello > "$1/app/hello.txt" && echo "port: 1" > "$1/app/conf/settings.yml" && echo top > "$1/top.txt"',
    );
    [gateway, catalog, scheduler] = await Promise.all([
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
  }, 180_000);

  afterAll(async () => {
    events?.close();
    await Promise.allSettled([agent?.stop(), gateway?.stop(), catalog?.stop(), scheduler?.stop()]);
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('lists the host and its volumes as the agent discovers them', async () => {
    await waitUntil(
      'the catalog to list appdata',
      async () => {
        const run = await volback(['volumes', '--json']);
        return (
          run.code === 0 &&
          (JSON.parse(run.stdout.toString()) as Array<{ volumeName: string }>).some(
            (v) => v.volumeName === 'appdata',
          )
        );
      },
      30_000,
    );
    const hosts = json<Array<{ status: string }>>(await volback(['hosts', '--json']));
    expect(hosts).toHaveLength(1);
    expect(hosts[0]!.status).toBe('online');
    const table = await volback(['volumes']);
    expect(table.code).toBe(0);
    expect(table.stdout.toString()).toMatch(/appdata\s+unprotected/);
  });

  it('backs up with --wait until the snapshot is written, then lists it', async () => {
    const run = await volback(['backup', 'appdata', '--wait', '--json']);
    const backup = json<{ phase: string; snapshotId: string; backupId: string }>(run);
    expect(backup.phase).toBe('Completed');
    snapshotId = backup.snapshotId;
    expect(snapshotId).toMatch(/^[0-9a-f]{64}$/);
    await waitUntil('the catalog to project the snapshot', async () => {
      const list = await volback(['snapshots', 'appdata', '--json']);
      return list.code === 0 && list.stdout.toString().includes(snapshotId);
    });
    const volumes = json<
      Array<{ volumeName: string; protection: { status: string; lastSnapshotId: string } }>
    >(await volback(['volumes', '--json']));
    expect(volumes.find((v) => v.volumeName === 'appdata')?.protection).toMatchObject({
      status: 'protected',
      lastSnapshotId: snapshotId,
    });
  });

  it('browses, finds and downloads files of the snapshot through the gateways', async () => {
    const ls = json<Array<{ path: string; type: string }>>(
      await volback(['ls', snapshotId.slice(0, 8), '/app', '--json']),
    );
    expect(ls.map((e) => `${e.type} ${e.path}`).sort()).toEqual(['dir /app/conf', 'file /app/hello.txt']);
    const found = json<Array<{ path: string }>>(
      await volback(['find', '*.yml', '--volume', 'appdata', '--json']),
    );
    expect(found.map((f) => f.path)).toEqual(['/app/conf/settings.yml']);
    const dump = await volback(['dump', snapshotId, '/app']);
    expect(dump.code, dump.stderr).toBe(0);
    const files = await untar(dump.stdout);
    expect(files.get('hello.txt')).toBe('hello\n');
    expect(files.get('conf/settings.yml')).toBe('port: 1\n');
    expect([...files.keys()]).not.toContain('top.txt');
  });

  it('restores into a new volume with --wait, and refuses to overwrite an existing one', async () => {
    const restore = json<{ phase: string }>(
      await volback(['restore', snapshotId, '--to-volume', 'appdata-restored', '--wait', '--json']),
    );
    expect(restore.phase).toBe('Completed');
    const content = await runInVolume(
      engine.docker,
      engine.image,
      'appdata-restored',
      'cat "$1/app/hello.txt" "$1/app/conf/settings.yml"',
    );
    expect(content).toBe('hello\nport: 1\n');
    const conflict = await volback(['restore', snapshotId, '--to-volume', 'appdata']);
    expect(conflict.code).toBe(8);
    expect(conflict.stderr).toContain('VOLBACK_CATALOG_VOLUME_EXISTS');
  });

  it('answers with exit codes that mean something', async () => {
    expect((await volback(['backup', 'appdata'], 'a-wrong-token-value')).code).toBe(6);
    expect((await volback(['snapshots', 'no-such-volume'])).code).toBe(5);
    expect((await volback(['ls', 'ffffffff'])).code).toBe(5);
    expect((await volback(['restore', snapshotId])).code).toBe(2);
    const status = json<{ volumes: { protected: number }; snapshots: number }>(
      await volback(['status', '--json']),
    );
    expect(status.volumes.protected).toBeGreaterThanOrEqual(1);
    expect(status.snapshots).toBe(1);
  });
});
