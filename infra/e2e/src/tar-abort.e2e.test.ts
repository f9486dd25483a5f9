import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  startDockerEngine,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-tar-abort-password';
const WRITE_TOKEN = 'e2e-tar-abort-write-token';
/** Larger than the 48 MiB reply budget a download may hold on the catalog's NATS connection. */
const BIG_MIB = 96;

/** The sha256 of every file in a tar stream. */
async function fileHashes(body: Readable): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const hash = createHash('sha256');
      stream.on('data', (c: unknown) => hash.update(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') hashes.set(header.name, hash.digest('hex'));
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  body.pipe(ex);
  await done;
  return hashes;
}

describe('a tar download aborted by its client does not block later downloads', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let dir: string;
  let catalog: CatalogProcess;
  const services: ServiceProcess[] = [];

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

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-tar-abort-'));
    await engine.docker.createVolume({ Name: 'big' });
    const env = { VOLBACK_NATS_URL: nats.url };
    const started = await Promise.all([
      startService(
        'gateway',
        'gateway',
        { ...env, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startCatalogService(
        'catalog',
        { ...env, VOLBACK_CATALOG_WRITE_TOKEN: WRITE_TOKEN },
        join(dir, 'catalog'),
        dir,
      ),
      startService(
        'agent',
        'agent',
        {
          ...env,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
          VOLBACK_HELPER_IMAGE: engine.image,
        },
        dir,
      ),
      startOnDemandScheduler('scheduler', nats.url, dir),
    ]);
    catalog = started[1];
    services.push(...started);
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    await Promise.allSettled([engine?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('aborts one download midway, then a second one completes with the right bytes', async () => {
    const sums = await runInVolume(
      engine.docker,
      engine.image,
      'big',
      `dd if=/dev/urandom of=/v/big.bin bs=1048576 count=${BIG_MIB} 2>/dev/null && sha256sum /v/big.bin`,
    );
    const expected = sums.trim().split(/\s+/)[0]!;
    await waitUntil('the catalog to list the volume', async () => {
      const run = await volback(['volumes', '--json']);
      return run.code === 0 && run.stdout.includes('"big"');
    });
    const run = await volback(['backup', 'big', '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const { snapshotId } = JSON.parse(run.stdout) as { snapshotId: string };
    await waitUntil('the catalog to list the snapshot', async () => {
      const list = await volback(['snapshots', 'big', '--json']);
      return list.code === 0 && list.stdout.includes(snapshotId);
    });
    const url = `${catalog.url}/v1/snapshots/${snapshotId}/tar`;
    const headers = { authorization: `Bearer ${WRITE_TOKEN}` };

    // A client that reads a little, stops reading, and goes away (like `curl -m 3 --limit-rate`).
    const received = await new Promise<number>((resolve, reject) => {
      const req = get(url, { headers }, (res) => {
        expect(res.statusCode).toBe(200);
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes >= 4 * 1024 * 1024) {
            res.pause();
            req.destroy();
            resolve(bytes);
          }
        });
        res.on('end', () => reject(new Error('the download ended before it was aborted')));
      });
      req.on('error', () => undefined);
    });
    expect(received).toBeLessThan(BIG_MIB * 1024 * 1024);

    const res = await fetch(url, { headers, signal: AbortSignal.timeout(120_000) });
    expect(res.status).toBe(200);
    const hashes = await fileHashes(Readable.fromWeb(res.body! as never));
    expect(hashes.get('big.bin')).toBe(expected);
  }, 400_000);
});
