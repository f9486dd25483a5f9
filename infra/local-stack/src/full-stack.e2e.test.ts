import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort, startDockerEngine, waitUntil, type DockerEngine } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretLeaks } from './stack-process.ts';

const run = promisify(execFile);
const main = new URL('./main.ts', import.meta.url).pathname;

interface VolumePage {
  items: Array<{
    hostId: string;
    volumeName: string;
    protection: { status: string; lastSuccessAt: string | null; lastSnapshotId: string | null };
  }>;
}

/** What a new user sees: `npm start` next to a Docker Engine with a volume on it. */
describe('npm start: the whole local stack on a Docker Engine', () => {
  let engine: DockerEngine;
  let dataDir: string;

  beforeAll(async () => {
    engine = await startDockerEngine();
    dataDir = mkdtempSync(join(tmpdir(), 'volback-full-stack-'));
    await engine.docker.createVolume({ Name: 'demo' });
    const writer = await engine.docker.createContainer({
      Image: engine.image,
      Cmd: ['sh', '-c', 'echo hello from the demo volume > /v/hello.txt'],
      HostConfig: { NetworkMode: 'none', Binds: ['demo:/v'] },
    });
    await writer.start();
    await writer.wait();
    await writer.remove();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * `npm start`'s entry on free ports, once it reports ready. Another process may take a port
   * between `freePort` and the stack's bind (test files run in parallel: a clean-clone CI run met
   * EADDRINUSE): the stack then exits, and starts again here on new ports with a fresh data
   * directory (at most 3 times). Any other exit while starting fails at once, with its output.
   */
  async function startStack() {
    for (let attempt = 1; ; attempt++) {
      const catalogPort = await freePort();
      const env = {
        ...process.env,
        VOLBACK_LOG_PRETTY: '0',
        VOLBACK_DATA_DIR: dataDir,
        VOLBACK_NATS_PORT: String(await freePort()),
        VOLBACK_OPS_PORT: String(await freePort()),
        VOLBACK_CATALOG_PORT: String(catalogPort),
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_PASSWORD: '',
      };
      const spawnedAt = Date.now();
      const stack = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const log = { text: '' };
      stack.stdout.on('data', (d: Buffer) => (log.text += d.toString()));
      stack.stderr.on('data', (d: Buffer) => (log.text += d.toString()));
      let exitCode: number | null | undefined;
      const exited = new Promise<number | null>((resolve) =>
        stack.once('exit', (code) => resolve((exitCode = code))),
      );
      const deadline = Date.now() + 120_000;
      while (!log.text.includes('volback local stack ready') && exitCode === undefined) {
        if (Date.now() > deadline) {
          stack.kill('SIGINT');
          await exited;
          throw new Error(`the stack was not ready within 120 s:\n${log.text.slice(-6000)}`);
        }
        await sleep(200);
      }
      if (exitCode === undefined) return { catalogPort, env, stack, log, exited, spawnedAt };
      if (!log.text.includes('EADDRINUSE') || attempt === 3)
        throw new Error(`the stack exited (${exitCode}) while starting:\n${log.text.slice(-6000)}`);
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir);
    }
  }

  it('lists the volume in the catalog and backs it up within a minute, with nobody configuring it', async () => {
    const { catalogPort, env, stack, log, exited, spawnedAt } = await startStack();
    const started = spawnedAt;
    let failed = false;
    try {
      const volumes = async () =>
        ((await (await fetch(`http://127.0.0.1:${catalogPort}/v1/volumes`)).json()) as VolumePage).items;
      await waitUntil(
        'the catalog to list the volume',
        async () => (await volumes()).some((v) => v.volumeName === 'demo'),
        60_000,
      );
      await waitUntil(
        'the volume to be backed up',
        async () =>
          (await volumes()).some((v) => v.volumeName === 'demo' && v.protection.lastSuccessAt !== null),
        60_000,
      );
      expect(Date.now() - started).toBeLessThan(90_000);

      // restic reads the repository with the password the stack generated.
      const { stdout } = await run(
        'restic',
        [
          '-r',
          join(dataDir, 'repository'),
          '--password-file',
          join(dataDir, 'secrets/repository-password'),
          '--no-cache',
          '--no-lock',
          'dump',
          'latest',
          '/volumes/demo/hello.txt',
        ],
        { env: { ...process.env } },
      );
      expect(stdout).toBe('hello from the demo volume\n');

      // kill -9 of the NATS server the stack started: the stack starts it again (same port and
      // store), the services reconnect, and a backup requested afterwards completes.
      const natsLine = log.text.split('\n').find((line) => line.includes('"NATS server started"'));
      const natsPid = (JSON.parse(natsLine!) as { pid: number }).pid; // the last `pid` is the server's
      process.kill(natsPid, 'SIGKILL');
      const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
      await waitUntil(
        'the NATS server to be restarted',
        async () => log.text.includes('NATS server restarted'),
        60_000,
      );
      await waitUntil('the stack to be ready again', async () => (await fetch(ready)).status === 200, 90_000);
      const demo = (await volumes()).find((v) => v.volumeName === 'demo')!;
      const api = `http://127.0.0.1:${catalogPort}`;
      const token = readFileSync(join(dataDir, 'secrets/catalog/admin.token'), 'utf8').trim();
      const completed = (what: string, location: string) =>
        waitUntil(
          `${what} to complete`,
          async () => {
            const res = await fetch(`${api}${location}`);
            return res.status === 200 && ((await res.json()) as { phase: string }).phase === 'Completed';
          },
          90_000,
        );
      const requested = await fetch(
        `${api}/v1/hosts/${encodeURIComponent(demo.hostId)}/volumes/demo/backups`,
        {
          method: 'POST',
          // The write token `volback init` made for the stack (writes need it once tokens exist).
          headers: { authorization: `Bearer ${token}` },
        },
      );
      expect(requested.status, await requested.clone().text()).toBe(202);
      const { location } = (await requested.json()) as { location: string };
      await completed('the backup requested after the restart', location);
      // A restore through the agent (its data requests, the catalog's), and a download through
      // the catalog's own data path.
      const snapshotId = (await volumes()).find((v) => v.volumeName === 'demo')!.protection.lastSnapshotId!;
      const restore = await fetch(`${api}/v1/restores`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ snapshotId, target: { kind: 'new-volume', volumeName: 'demo-restored' } }),
      });
      expect(restore.status, await restore.clone().text()).toBe(202);
      await completed('the restore', ((await restore.json()) as { location: string }).location);
      const tar = await fetch(`${api}/v1/snapshots/${snapshotId}/tar`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(tar.status).toBe(200);
      expect(Buffer.from(await tar.arrayBuffer()).includes('hello from the demo volume')).toBe(true);
      // No secret in a log, an event (backups and a restore), a command line or an environment.
      const found = await secretLeaks({
        dataDir,
        natsPort: Number(env.VOLBACK_NATS_PORT),
        stackPid: stack.pid!,
        output: log.text,
      });
      expect(found.events).toContain('io.volback.restore.completed');
      expect(found.leaks).toEqual([]);
      // Every service did its work within its NATS permissions (backup, restart, reconnect).
      const natsLog = readFileSync(join(dataDir, 'nats/nats-server.log'), 'utf8');
      expect(natsLog).not.toMatch(/Permissions Violation/i);
      expect(log.text).not.toMatch(/Permissions Violation/i);
    } catch (error) {
      failed = true;
      throw new Error(`${(error as Error).message}\n--- stack output (tail) ---\n${log.text.slice(-6000)}`, {
        cause: error,
      });
    } finally {
      stack.kill('SIGINT');
      const code = await exited;
      if (!failed) expect(code).toBe(0); // else the failure above is the one to report
    }
  }, 400_000);
});
