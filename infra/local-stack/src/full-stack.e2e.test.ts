import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startDockerEngine, waitUntil, type DockerEngine } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = new URL('./main.ts', import.meta.url).pathname;

interface VolumePage {
  items: Array<{
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

  it('lists the volume in the catalog and backs it up within a minute, with nobody configuring it', async () => {
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
    const stack = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    stack.stdout.on('data', (d: Buffer) => (output += d.toString()));
    stack.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => stack.once('exit', (code) => resolve(code)));
    const started = Date.now();
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
          join(dataDir, 'repository-password'),
          '--no-cache',
          '--no-lock',
          'dump',
          'latest',
          '/volumes/demo/hello.txt',
        ],
        { env: { ...process.env } },
      );
      expect(stdout).toBe('hello from the demo volume\n');
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- stack output (tail) ---\n${output.slice(-6000)}`, {
        cause: error,
      });
    } finally {
      stack.kill('SIGINT');
      expect(await exited).toBe(0);
    }
  }, 180_000);
});
