import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
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
  startCatalogService,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-stream-loss-password';
const WRITE_TOKEN = 'e2e-stream-loss-write-token';

describe('backups work again after VOLBACK_EVENTS and VOLBACK_COMMANDS are deleted under running services', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let catalog: CatalogProcess;
  const services: ServiceProcess[] = [];
  const exits = new Map<string, string>();

  const volback = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
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
  const backUp = async (volume: string) => {
    const run = await volback(['backup', volume, '--wait', '--json']);
    // On failure, the catalog's last log lines say what NATS answered.
    if (run.code !== 0) run.stderr += `\n--- catalog log ---\n${(await catalog.log()).slice(-4000)}`;
    expect(run.code, run.stderr).toBe(0);
    const backup = JSON.parse(run.stdout) as { phase: string; snapshotId: string };
    expect(backup.phase).toBe('Completed');
    await waitUntil('the catalog to list the snapshot', async () => {
      const list = await volback(['snapshots', volume, '--json']);
      return list.code === 0 && list.stdout.includes(backup.snapshotId);
    });
    return backup.snapshotId;
  };

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-stream-loss-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-stream-loss' });
    await engine.docker.createVolume({ Name: 'appdata' });
    await runInVolume(engine.docker, engine.image, 'appdata', 'echo hello > "$1/hello.txt"');
    const env = { VOLBACK_NATS_URL: nats.url };
    const started = await Promise.all([
      startService(
        'gateway',
        'gateway',
        { ...env, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startService('scheduler', 'scheduler', { ...env, VOLBACK_SCHEDULER_ID: 'scheduler-a' }, dir),
      startCatalogService(
        'catalog',
        { ...env, VOLBACK_CATALOG_WRITE_TOKEN: WRITE_TOKEN },
        join(dir, 'catalog'),
        dir,
      ),
    ]);
    catalog = started[2];
    services.push(...started);
    services.push(
      await startService(
        'agent',
        'agent',
        {
          ...env,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
          VOLBACK_HELPER_IMAGE: engine.image,
          VOLBACK_AGENT_HEARTBEAT_SECONDS: '2',
        },
        dir,
      ),
    );
    for (const service of services)
      void service.exited.then((exit) => exits.set(service.name, JSON.stringify(exit)));
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    if (nc) await drainNats(nc);
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('a backup requested after the deletion completes and shows in the catalog; no service exits', async () => {
    await waitUntil('the catalog to list appdata', async () => {
      const run = await volback(['volumes', '--json']);
      return run.code === 0 && run.stdout.includes('appdata');
    });
    const before = await backUp('appdata');

    const jsm = await jetstreamManager(nc);
    for (const stream of [STREAMS.events.name, STREAMS.commands.name]) {
      for await (const consumer of jsm.consumers.list(stream))
        await jsm.consumers.delete(stream, consumer.name);
      await jsm.streams.delete(stream);
    }

    // The facts of the old stream are gone with it: the agent, told by its consumer that the
    // streams were recreated, announces its host and every volume again (appdata, from before),
    // and a volume created now comes with its engine event; the catalog lists both from there.
    await engine.docker.createVolume({ Name: 'afterwards' });
    await runInVolume(engine.docker, engine.image, 'afterwards', 'echo again > "$1/again.txt"');
    await waitUntil(
      'the catalog to list both volumes from the new stream',
      async () => {
        const run = await volback(['volumes', '--json']);
        return run.code === 0 && run.stdout.includes('afterwards') && run.stdout.includes('appdata');
      },
      120_000,
    );
    const after = await backUp('afterwards');
    expect(after).toMatch(/^[0-9a-f]{64}$/);
    expect(after).not.toBe(before); // not the old snapshot answering for it
    const again = await backUp('appdata');
    expect(again).toMatch(/^[0-9a-f]{64}$/);
    expect(exits).toEqual(new Map());
    const catalogLog = await catalog.log();
    expect(catalogLog).toContain('rebuilding the read model from the new stream');
    // The scheduler's projection (an ordered consumer) may learn of the deletion only when its
    // heartbeats go missing: wait for it to say it rebuilt from the new stream.
    const scheduler = services.find((s) => s.name === 'scheduler')!;
    await waitUntil(
      'the scheduler to rebuild its state from the new stream',
      async () =>
        (await scheduler.log()).includes('the event stream is a new one: rebuilding the state from it'),
      120_000,
    );
    expect(exits).toEqual(new Map());
  }, 300_000);
});
