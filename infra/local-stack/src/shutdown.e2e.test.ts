import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import {
  eventSubjectFilter,
  parseMessage,
  progressSubject,
  STREAMS,
  type Envelope,
} from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import { freePort, startDockerEngine, waitUntil, type DockerEngine } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, startStack, type StackProcess } from './stack-process.ts';

const STARTED = 'io.volback.backup.started.v1';
const COMPLETED = 'io.volback.backup.completed.v1';
const FAILED = 'io.volback.backup.failed.v1';

/** Every stored event of the backups, read from the stream from its start. */
async function backupEvents(nc: NatsConnection): Promise<Envelope[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAMS.events.name, {
    filter_subjects: [eventSubjectFilter('backup')],
    deliver_policy: DeliverPolicy.All,
  });
  const events: Envelope[] = [];
  for (let pending = (await consumer.info()).num_pending; pending > 0;) {
    const msg = await consumer.next({ expires: 2_000 });
    if (!msg) break;
    const parsed = parseMessage(msg.data);
    if (parsed.ok) events.push(parsed.message.envelope);
    pending = msg.info.pending;
  }
  return events;
}

/**
 * Ctrl-C at `npm start` while a backup runs: the agent stops first and hands the backup back
 * (no BackupFailed, no NO_GATEWAY: the gateway stops after it), the catalog closes its SSE
 * clients at once, and the backup runs to completion after the next start.
 */
describe('npm start: Ctrl-C during a backup', () => {
  let engine: DockerEngine;
  let dataDir: string;
  let stack: StackProcess | undefined;

  beforeAll(async () => {
    engine = await startDockerEngine();
    dataDir = mkdtempSync(join(tmpdir(), 'volback-stack-shutdown-'));
    await engine.docker.createVolume({ Name: 'big' });
    // Random data (nothing deduplicates or compresses): long enough a backup to be cut in the middle.
    const writer = await engine.docker.createContainer({
      Image: engine.image,
      Cmd: ['sh', '-c', 'dd if=/dev/urandom of=/v/random.bin bs=1048576 count=384 2>/dev/null'],
      HostConfig: { NetworkMode: 'none', Binds: ['big:/v'] },
    });
    await writer.start();
    await writer.wait();
    await writer.remove();
  }, 180_000);

  afterAll(async () => {
    if (stack && stack.child.exitCode === null) {
      process.kill(-stack.child.pid!, 'SIGKILL');
    }
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('interrupts the backup without failing it, exits promptly with an SSE client attached, and completes it after a restart', async () => {
    const env = {
      VOLBACK_DATA_DIR: dataDir,
      VOLBACK_NATS_PORT: String(await freePort()),
      VOLBACK_OPS_PORT: String(await freePort()),
      VOLBACK_CATALOG_PORT: String(await freePort()),
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_PASSWORD: '',
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '1',
    };
    const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
    const catalog = `http://127.0.0.1:${env.VOLBACK_CATALOG_PORT}`;
    const natsUrl = `nats://127.0.0.1:${env.VOLBACK_NATS_PORT}`;
    const first = (stack = startStack(env));
    try {
      await waitUntil('the stack to be ready', async () => (await fetch(ready)).status === 200, 90_000);

      // an SSE client stays attached to the catalog until the stack stops
      const sse = await fetch(`${catalog}/v1/events/stream`);
      expect(sse.status).toBe(200);
      const sseEnded = (async () => {
        const reader = sse.body!.getReader();
        for (;;) {
          try {
            if ((await reader.read()).done) break;
          } catch {
            break;
          }
        }
        return Date.now();
      })();

      // when the backup of the volume is reading its data
      const nc = await connectNats({ servers: natsUrl, name: 'e2e-shutdown', connectTimeoutMs: 5_000 });
      const seen: Envelope[] = [];
      const events = nc.subscribe(eventSubjectFilter('backup'), {
        callback: (_err, msg) => {
          const parsed = parseMessage(msg.data);
          if (parsed.ok) seen.push(parsed.message.envelope);
        },
      });
      await waitUntil('the backup to start', async () => seen.some((e) => e.type === STARTED), 90_000);
      const { backupId, hostId } = seen.find((e) => e.type === STARTED)!.data as {
        backupId: string;
        hostId: string;
      };
      let bytesRead = 0;
      const progress = nc.subscribe(progressSubject(hostId, backupId), {
        callback: (_err, msg) => {
          bytesRead = (msg.json() as { bytes: number }).bytes;
        },
      });
      await waitUntil('the backup to read data', async () => bytesRead > 0, 60_000);

      // then Ctrl-C: SIGINT to the whole process group, as a terminal sends it
      const interruptedAt = Date.now();
      process.kill(-first.child.pid!, 'SIGINT');
      expect(await first.exit).toBe(0);
      const stoppedAfterMs = Date.now() - interruptedAt;
      progress.unsubscribe();
      events.unsubscribe();
      await nc.close().catch(() => undefined);

      const lines = logLines(first.output());
      expect(seen.filter((e) => e.type === FAILED)).toEqual([]);
      expect(seen.some((e) => e.type === COMPLETED)).toBe(false);
      expect(
        lines.some((l) => l.msg === 'backup interrupted by shutdown; it runs again when the agent is back'),
      ).toBe(true);
      expect(first.output()).not.toMatch(/NO_GATEWAY|shutdown took too long|handler failed/);
      expect(lines.some((l) => l.msg === 'handed back')).toBe(true);
      // services stop in order: the agent first, the gateway last
      const stopped = lines.filter((l) => l.msg === 'service stopped');
      expect(stopped.map((l) => l['service'])).toEqual([
        'agent',
        expect.any(String),
        expect.any(String),
        'storage-gateway',
      ]);
      const catalogStop = stopped.find((l) => l['service'] === 'catalog')!;
      expect(catalogStop['code']).toBe(0);
      expect(catalogStop['ms'] as number).toBeLessThan(5_000);
      // the SSE client was let go when the catalog stopped, not when the process died
      expect((await sseEnded) - interruptedAt).toBeLessThanOrEqual(stoppedAfterMs);
      expect(stoppedAfterMs).toBeLessThan(30_000);

      // when the stack starts again, then the same backup runs to completion, never failed
      const second = (stack = startStack(env));
      await waitUntil('the restarted stack', async () => (await fetch(ready)).status === 200, 90_000);
      const again = await connectNats({ servers: natsUrl, name: 'e2e-shutdown-2', connectTimeoutMs: 5_000 });
      let stored: Envelope[] = [];
      await waitUntil(
        'the interrupted backup to complete',
        async () => {
          stored = (await backupEvents(again)).filter(
            (e) => (e.data as { backupId?: string }).backupId === backupId,
          );
          return stored.some((e) => e.type === COMPLETED);
        },
        180_000,
      );
      expect(stored.filter((e) => e.type === FAILED)).toEqual([]);
      expect(stored.filter((e) => e.type === STARTED).length).toBeGreaterThanOrEqual(2);
      await again.close();
      process.kill(-second.child.pid!, 'SIGINT');
      expect(await second.exit).toBe(0);
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\n--- stack output (tail) ---\n${stack?.output().slice(-8000)}`,
        {
          cause: error,
        },
      );
    }
  }, 600_000);
});
