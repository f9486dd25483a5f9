import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupVolume, RestoreSnapshot, type Envelope } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  RESTIC,
  resolveBinary,
  seqDigest,
  startDockerEngine,
  startNatsServer,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, sendCommand, startService, stopTestStack, type ServiceProcess } from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-database-dump-password';
/** In the database container's env only: it must reach no event, log line or argument. */
const DB_SECRET = 'e2e-db-secret-4f1c9a';
const LINES = 2_000_000;

type Data = Record<string, unknown>;

describe('database dumps: the agent execs the dump in the container and streams it into the snapshot', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let events: EventLog;
  let hostId: string;
  let agent: ServiceProcess;
  const services = new Set<ServiceProcess>();

  /** A running busybox container on `volume` with these labels and a secret in its env. */
  async function database(name: string, volume: string, labels: Record<string, string>): Promise<void> {
    await engine.docker.createVolume({ Name: volume });
    const container = await engine.docker.createContainer({
      name,
      Image: engine.image,
      Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
      Env: [`POSTGRES_PASSWORD=${DB_SECRET}`, 'POSTGRES_USER=app'],
      Labels: labels,
      HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/var/lib/db`] },
    });
    await container.start();
  }

  async function backup(backupId: string, volumeName: string): Promise<Envelope> {
    await sendCommand(nc, BackupVolume, { backupId, hostId, volumeName, trigger: 'manual', method: 'auto' });
    return events.outcome(backupId);
  }

  /** restic (RESTIC_BIN, else PATH) on the repository: stdout hashed as it streams, or as text. */
  async function restic(args: readonly string[]): Promise<{ sha256: string; size: number; text: string }> {
    const child = spawn(resolveBinary(RESTIC), ['-r', repo, '--no-cache', ...args], {
      env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const hash = createHash('sha256');
    let size = 0;
    let head = '';
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (head.length < 64 * 1024) head += chunk.toString();
    }
    const code = await exited;
    if (code !== 0) throw new Error(`restic ${args.join(' ')} exited with ${code}: ${stderr}`);
    return { sha256: hash.digest('hex'), size, text: head };
  }

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-dump-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-database-dump' });
    events = new EventLog(nc);
    services.add(
      await startService(
        'gateway',
        'gateway',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
    );
    agent = await startService(
      'agent',
      'agent',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
        VOLBACK_HELPER_IMAGE: engine.image,
      },
      dir,
    );
    services.add(agent);
    const registered = await events.waitFor('the host to register', (e) =>
      e.type.startsWith('io.volback.host.'),
    );
    hostId = (registered.data as { hostId: string }).hostId;
  }, 120_000);

  afterAll(async () => {
    await stopTestStack({ events, services, nc, engine, nats, dir });
  });

  it('alongside: the dump and the volume files are in the snapshot; the dump comes back byte for byte', async () => {
    await database('pg', 'pgdata', {
      'volback.dump': 'command',
      'volback.dump.command': `seq 1 ${LINES}`,
      'volback.dump.extension': 'sql',
    });
    await runInVolume(engine.docker, engine.image, 'pgdata', 'echo raw > /v/PG_VERSION');

    const outcome = await backup('e2e-dump-alongside', 'pgdata');
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    const data = outcome.data as Data & { snapshotId: string; dumps: Data[] };
    const expected = seqDigest(LINES);
    expect(data.dumps).toEqual([
      {
        container: 'pg',
        preset: 'command',
        mode: 'alongside',
        path: '/.volback/dumps/pg.sql',
        sizeBytes: expected.size,
        durationMs: expect.any(Number),
      },
    ]);

    const dumped = await restic(['dump', data.snapshotId, '/.volback/dumps/pg.sql']);
    expect({ sha256: dumped.sha256, size: dumped.size }).toEqual(expected);
    expect((await restic(['dump', data.snapshotId, '/volumes/pgdata/PG_VERSION'])).text).toBe('raw\n');
    await restic(['check', '--read-data']);

    // Restoring the volume gives its files back, not the dump (it lives outside /volumes/<name>).
    await sendCommand(nc, RestoreSnapshot, {
      restoreId: 'e2e-dump-restore',
      hostId,
      snapshotId: data.snapshotId,
      target: { kind: 'new-volume', volumeName: 'pgdata-restored' },
    });
    const restored = await events.outcome('e2e-dump-restore');
    expect(restored.type, JSON.stringify(restored.data)).toBe('io.volback.restore.completed.v1');
    expect(
      await runInVolume(engine.docker, engine.image, 'pgdata-restored', 'ls -A /v; cat /v/PG_VERSION'),
    ).toBe('PG_VERSION\nraw\n');
  }, 180_000);

  it('instead: only the dump is in the snapshot, and the agent streams 256 MiB without holding it', async () => {
    const size = 256 * 1024 * 1024;
    await database('cache', 'cachedata', {
      'volback.dump': 'command',
      'volback.dump.command': `head -c ${size} /dev/zero`,
      'volback.dump.mode': 'instead',
    });
    await runInVolume(engine.docker, engine.image, 'cachedata', 'echo raw > /v/appendonly.aof');
    const status = `/proc/${agent.pid}/status`;
    const kib = (text: string, field: string) =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)![1]) * 1024;
    await writeFile(`/proc/${agent.pid}/clear_refs`, '5'); // resets the peak (VmHWM) to now
    const before = kib(await readFile(status, 'utf8'), 'VmRSS');

    const outcome = await backup('e2e-dump-instead', 'cachedata');
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    const peak = kib(await readFile(status, 'utf8'), 'VmHWM');
    const data = outcome.data as Data & { snapshotId: string; dumps: Data[]; stats: Data };
    expect(data.dumps).toMatchObject([{ container: 'cache', mode: 'instead', sizeBytes: size }]);
    expect(data.stats).toMatchObject({ filesNew: 0, bytesRead: 0 });
    // A dump held in memory would add 256 MiB; chunks are 8 MiB at most and 64 MiB may be in flight.
    // Measured after the file's earlier tests: 24-37 MiB, and up to 100 MiB with what those tests
    // left for the collector (90-99 MiB in three runs of the code of 7 December, early morning;
    // 100 in a full test run since), so the bound sits between that and the dump's 256 MiB.
    expect(peak - before, `agent peak ${peak} B, before ${before} B`).toBeLessThan(160 * 1024 * 1024);

    const listing = (await restic(['ls', data.snapshotId])).text;
    expect(listing).toContain('/.volback/dumps/cache.dump');
    expect(listing).toContain('/volumes/cachedata');
    expect(listing).not.toContain('appendonly.aof');
    const dumped = await restic(['dump', data.snapshotId, '/.volback/dumps/cache.dump']);
    expect(dumped.size).toBe(size);
    expect(dumped.sha256).toBe(createHash('sha256').update(Buffer.alloc(size)).digest('hex'));
  }, 180_000);

  it('a failing dump fails the backup with its exit status and stderr tail, and nothing secret', async () => {
    await database('broken', 'brokendata', {
      'volback.dump': 'command',
      'volback.dump.command':
        'seq 1 1000; echo "pg_dump: error: password authentication failed for user \\"$POSTGRES_USER\\"" >&2; exit 1',
    });
    const outcome = await backup('e2e-dump-fails', 'brokendata');
    expect(outcome.type).toBe('io.volback.backup.failed.v1');
    expect(outcome.data).toMatchObject({
      code: 'VOLBACK_AGENT_DUMP_FAILED',
      reason:
        'command dump in container broken exited with 1; stderr (last 200 bytes at most): ' +
        JSON.stringify('pg_dump: error: password authentication failed for user "app"'),
    });
    expect(events.of('e2e-dump-fails').map((e) => e.type)).not.toContain('io.volback.backup.completed.v1');
  }, 120_000);

  it('a password in a label is refused, not retried, and not repeated', async () => {
    await database('labelled', 'labelleddata', {
      'volback.dump': 'postgres',
      'volback.dump.password': DB_SECRET,
    });
    const outcome = await backup('e2e-dump-label', 'labelleddata');
    expect(outcome.type).toBe('io.volback.backup.failed.v1');
    expect(outcome.data).toMatchObject({ code: 'VOLBACK_AGENT_DUMP_LABEL_INVALID', willRetry: false });
    expect((outcome.data as { reason: string }).reason).toMatch(
      /^container labelled: label volback\.dump\.password is not allowed/,
    );
    expect((outcome.data as { reason: string }).reason).not.toContain(DB_SECRET);
  }, 120_000);

  it('the container env secret is in no event and no agent log line', async () => {
    // The label test above put the secret in a label, which discovery publishes as labels are
    // (README: do not put secrets in labels); everything else must be free of it.
    const leaked = events.events.filter(
      (e) => e.type !== 'io.volback.container.observed.v1' && JSON.stringify(e).includes(DB_SECRET),
    );
    expect(leaked.map((e) => e.type)).toEqual([]);
    const log = (await agent.log()).split('\n').filter((line) => line.includes(DB_SECRET));
    expect(log).toEqual([]);
  });
});
