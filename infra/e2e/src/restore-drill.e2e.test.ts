import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Envelope } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  startDockerEngine,
  startHttpReceiver,
  startNatsServer,
  type DockerEngine,
  type HttpReceiver,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  FAST_SCHEDULER_ENV,
  startCatalogService,
  startService,
  stopTestStack,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { FILL_VOLUME_SCRIPT, runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-drill-password';
const TOKEN = 'e2e-drill-write-token';
const LOOP = 'trap "exit 0" TERM; while true; do sleep 1; done';

type Data = Record<string, unknown>;
interface Drill {
  drillId: string;
  phase: string;
  trigger: string | null;
  rtoMs: number | null;
  restoreMs: number | null;
  verifyMs: number | null;
  healthMs: number | null;
  files: number | null;
  containers: string[];
  stage: string | null;
  error: { code: string; reason: string } | null;
}

describe('restore drills: scheduled and manual, passing and failing, on a real engine, gateway and NATS', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  let hook: HttpReceiver;
  let catalog: CatalogProcess;
  let hostId: string;
  const services = new Set<ServiceProcess>();

  const volback = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: catalog.url, VOLBACK_TOKEN: TOKEN },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${catalog.url}${path}`);
    expect(res.status, path).toBe(200);
    return (await res.json()) as T;
  };
  /** What a drill leaves on the engine: its scratch volumes and containers (none, after any drill). */
  const leftovers = async () => {
    const { Volumes } = await engine.docker.listVolumes();
    const containers = await engine.docker.listContainers({
      all: true,
      filters: { label: ['io.volback.drill-id'] },
    });
    return {
      volumes: (Volumes ?? []).map((v) => v.Name).filter((n) => n.startsWith('volback-drill-')),
      containers: containers.map((c) => c.Names[0]),
    };
  };

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-drill-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-drill' });
    events = new EventLog(nc);
    hook = await startHttpReceiver();

    // Every kind of entry a volume holds, and the app that uses it. The app's labels ask for a
    // drill every 2 seconds, with the app started on the scratch volume and a health command.
    await engine.docker.createVolume({ Name: 'orders' });
    await runInVolume(
      engine.docker,
      engine.image,
      'orders',
      `BIG_KIB=2048\n${FILL_VOLUME_SCRIPT}\necho order-1 > /v/orders.csv`,
    );
    const app = await engine.docker.createContainer({
      name: 'shop-app-1',
      Image: engine.image,
      Cmd: ['sh', '-c', LOOP],
      Labels: {
        'volback.schedule': '0 3 1 1 *',
        'volback.drill.schedule': '*/2 * * * * *',
        'volback.drill.containers': 'true',
        'volback.drill.health': 'grep -q order-1 /data/orders.csv',
      },
      HostConfig: { NetworkMode: 'none', Binds: ['orders:/data'] },
    });
    await app.start();
    // A volume whose drill label cannot be used, and one never backed up (no label: not protected).
    await engine.docker.createVolume({ Name: 'bad', Labels: { 'volback.drill.schedule': 'weekly' } });
    await engine.docker.createVolume({ Name: 'never' });

    services.add(
      await startService(
        'gateway',
        'gateway',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
    );
    services.add(
      await startService(
        'agent',
        'agent',
        {
          VOLBACK_NATS_URL: nats.url,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
          VOLBACK_HELPER_IMAGE: engine.image,
        },
        dir,
      ),
    );
    hostId = (await readFile(join(dir, 'agent', 'host-id'), 'utf8')).trim();
    const urls = join(dir, 'notify-urls');
    await writeFile(urls, `hook=generic+${hook.url}/volback\n`, { mode: 0o600 });
    services.add(
      await startService(
        'scheduler',
        'scheduler',
        {
          VOLBACK_NATS_URL: nats.url,
          VOLBACK_SCHEDULER_ID: 'scheduler-1',
          ...FAST_SCHEDULER_ENV,
          VOLBACK_NOTIFY_URLS_FILE: urls,
          VOLBACK_NOTIFY_RETRY_DELAY_MS: '100',
        },
        dir,
      ),
    );
    catalog = await startCatalogService(
      'catalog',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: TOKEN },
      join(dir, 'catalog'),
      dir,
    );
    services.add(catalog);
    const jsm = await jetstreamManager(nc);
    for (let i = 0; ; i++) {
      const ready = await jsm.consumers.info('VOLBACK_EVENTS', 'notifier').then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (i > 200) throw new Error('the notifier consumer never appeared');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await hook?.close();
    await stopTestStack({ events, services, nc, engine, nats, dir });
  });

  it('runs the scheduled drill after the first backup: every file verified, the app healthy on the scratch volume, RTO recorded, nothing left behind', async () => {
    const passed = await events.waitFor(
      'a scheduled drill of orders to pass',
      (e) => e.type === 'io.volback.drill.passed.v1' && (e.data as Data)['volumeName'] === 'orders',
      90_000,
    );
    const d = passed.data as Data;
    const requested = events.events.find(
      (e) => e.type === 'io.volback.drill.requested.v1' && (e.data as Data)['drillId'] === d['drillId'],
    );
    expect(requested?.data).toMatchObject({ trigger: 'schedule', requestedBy: 'scheduler', hostId });
    expect(d).toMatchObject({
      hostId,
      containers: [`shop-app-1-${String(d['scratchVolume'])}`],
      health: 'grep -q order-1 /data/orders.csv',
    });
    // The fill script's files, directories and links (fifos are not counted), each compared.
    expect(d['files']).toBeGreaterThanOrEqual(12);
    expect(d['symlinks']).toBe(2);
    expect(d['bytes']).toBeGreaterThan(2 * 1024 * 1024);
    expect(d['rtoMs']).toBe(Number(d['restoreMs']) + Number(d['verifyMs']) + Number(d['healthMs']));
    expect(d['healthMs']).toBeGreaterThan(0);
    expect(await leftovers()).toEqual({ volumes: [], containers: [] });

    // The app goes: its labels (and so the drill schedule) go with it.
    await engine.docker.getContainer('shop-app-1').remove({ force: true });
    const policyId = `labels:${hostId}:orders`;
    const since = events.events.length;
    await events.waitFor(
      'the label policy of orders to go',
      (e) =>
        events.events.indexOf(e) >= since &&
        e.type === 'io.volback.policy.removed.v1' &&
        (e.data as Data)['policyId'] === policyId,
    );
    // Nothing of a drill was ever announced as the host's: no scratch volume, no drill container.
    const announced = events.events.filter((e) =>
      /"(volumeName|name)":"(volback-drill-|shop-app-1-volback-drill-)/.test(JSON.stringify(e.data)),
    );
    expect(announced.filter((e) => !e.type.startsWith('io.volback.drill.'))).toEqual([]);
    // The catalog shows the volume's last drill with its RTO.
    await expect
      .poll(
        async () =>
          (await api<{ lastDrill: Drill | null }>(`/v1/hosts/${hostId}/volumes/orders`)).lastDrill?.phase,
        {
          timeout: 20_000,
        },
      )
      .toBeDefined();
  }, 120_000);

  it('a manual drill whose health command exits 1 fails at the health stage, is notified to the webhook, and leaves nothing behind; so does one whose packs are gone', async () => {
    // Drills the schedule started before the app went may still end: wait for quiet.
    await expect.poll(async () => leftovers(), { timeout: 30_000 }).toEqual({ volumes: [], containers: [] });
    const result = await volback([
      'drill',
      'orders',
      '--health',
      'echo sick >&2; exit 1',
      '--wait',
      '--json',
    ]);
    expect(result.code, result.stdout + result.stderr).toBe(4);
    const drill = JSON.parse(result.stdout) as Drill;
    expect(drill).toMatchObject({ phase: 'Failed', stage: 'health', trigger: 'manual' });
    expect(drill.error?.code).toBe('VOLBACK_DRILL_UNHEALTHY');
    expect(drill.error?.reason).toMatch(
      /health command `echo sick >&2; exit 1` in container shop-app-1-volback-drill-\w+ exited with 1/,
    );
    expect(await leftovers()).toEqual({ volumes: [], containers: [] });

    const [posted] = await hook.waitForRequests(
      1,
      (r) => r.headers['x-volback-notification'] === 'failure' && r.body.toString().includes(drill.drillId),
      30_000,
    );
    const event = JSON.parse(posted!.body.toString()) as Envelope;
    expect(event.type).toBe('io.volback.drill.failed.v1');
    expect(event.data).toMatchObject({
      drillId: drill.drillId,
      hostId,
      volumeName: 'orders',
      stage: 'health',
    });

    // The catalog: the failed drill is the volume's last, the passed one before it.
    const volume = await api<{ lastDrill: Drill }>(`/v1/hosts/${hostId}/volumes/orders`);
    expect(volume.lastDrill).toMatchObject({ drillId: drill.drillId, phase: 'Failed' });
    const list = await api<{ items: Drill[] }>(`/v1/hosts/${hostId}/volumes/orders/drills`);
    expect(list.items[0]!.drillId).toBe(drill.drillId);
    const passed = list.items.find((x) => x.phase === 'Passed');
    expect(passed?.rtoMs).toBeGreaterThan(0);

    // Without the failing health command, a manual drill of the same snapshot passes (verify only).
    const ok = await volback(['drill', 'orders', '--wait', '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ phase: 'Passed', containers: [], healthMs: 0 });
    const table = await volback(['drills', 'orders']);
    expect(table.stdout).toMatch(/FAILED \(health\)/);

    // The repository loses its data packs: the drill fails at the restore, and says why.
    const data = join(dir, 'repo', 'data');
    for (const sub of await readdir(data)) await rm(join(data, sub), { recursive: true, force: true });
    const lost = await volback(['drill', 'orders', '--wait', '--json']);
    expect(lost.code, lost.stdout + lost.stderr).toBe(4);
    expect(JSON.parse(lost.stdout)).toMatchObject({ phase: 'Failed', stage: 'restore' });
    expect(await leftovers()).toEqual({ volumes: [], containers: [] });
  }, 120_000);

  it('refuses bad input clearly and changes nothing: an unknown volume, a volume never backed up, a bad drill label or policy', async () => {
    const unknown = await volback(['drill', 'no-such-volume']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/no volume "no-such-volume"/);

    await expect
      .poll(async () => (await fetch(`${catalog.url}/v1/hosts/${hostId}/volumes/never`)).status, {
        timeout: 20_000,
      })
      .toBe(200);
    const never = await fetch(`${catalog.url}/v1/hosts/${hostId}/volumes/never/drills`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(never.status).toBe(409);
    expect(await never.json()).toMatchObject({ code: 'VOLBACK_CATALOG_NOTHING_TO_DRILL' });

    const rejected = await events.waitFor(
      'the bad drill label to be rejected',
      (e) => e.type === 'io.volback.policy.rejected.v1' && (e.data as Data)['volumeName'] === 'bad',
    );
    expect(rejected.data).toMatchObject({
      label: 'volback.drill.schedule',
      value: 'weekly',
      reason: expect.stringMatching(/5 fields/),
    });
    // Through the policies API: a bad drill cron is refused naming the field; a good one defined.
    const badPolicy = await volback([
      'policies',
      'set',
      'never-drill',
      '--volume',
      'never',
      '--cron',
      '0 3 * * *',
      '--keep-last',
      '3',
      '--drill-cron',
      '0 25 * * *',
    ]);
    expect(badPolicy.code).not.toBe(0);
    expect(badPolicy.stderr).toContain('policy.drill.schedule.cron');
    const goodPolicy = await volback([
      'policies',
      'set',
      'never-drill',
      '--volume',
      'never',
      '--cron',
      '0 3 * * *',
      '--keep-last',
      '3',
      '--drill-cron',
      '0 5 * * 0',
      '--drill-health',
      'true',
    ]);
    expect(goodPolicy.code, goodPolicy.stderr).toBe(0);
    const defined = await events.waitFor(
      'the API policy with a drill',
      (e) => e.type === 'io.volback.policy.defined.v1' && (e.data as Data)['policyId'] === 'never-drill',
    );
    expect((defined.data as { policy: Data }).policy['drill']).toEqual({
      schedule: { cron: '0 5 * * 0', timezone: 'UTC' },
      containers: false,
      health: 'true',
      healthTimeoutSeconds: 60,
    });

    const drillsOfBad = events.events.filter(
      (e) => e.type.startsWith('io.volback.drill.') && (e.data as Data)['volumeName'] === 'bad',
    );
    expect(drillsOfBad).toEqual([]);
  }, 60_000);
});
