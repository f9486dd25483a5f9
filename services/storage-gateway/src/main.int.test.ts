import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataPathClient } from '@volback/data-path';
import { connectNats } from '@volback/messaging';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, TEST_AGENT } from './test-support/gateway-fixture.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PASSWORD = 'main-process-secret-5d2a-never-logged';

interface Run {
  readonly exit: Promise<number | null>;
  readonly output: () => string;
  kill(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

function runGateway(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', VOLBACK_LOG_PRETTY: '0', LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    output: () => output,
    kill: (signal) => child.kill(signal),
  };
}

describe('storage gateway process (main.ts)', () => {
  let nats: NatsServer;
  let scratch: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    scratch = await mkdtemp(join(tmpdir(), 'volback-gateway-main-'));
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await nats?.destroy();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('creates the repository, becomes ready, serves the data path and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const repo = join(scratch, 'repo');
    const run = runGateway({
      VOLBACK_REPOSITORY: repo,
      VOLBACK_PASSWORD: PASSWORD,
      VOLBACK_NATS_URL: nats.url,
      VOLBACK_GATEWAY_ID: 'gw-main-test',
      VOLBACK_OPS_PORT: String(port),
      VOLBACK_GATEWAY_IDLE_FLUSH_SECONDS: '1',
    });
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitFor('/readyz 200', async () => {
      const res = await fetch(`${url}/readyz`);
      return res.status === 200 && ((await res.json()) as { checks: Array<{ name: string }> });
    });
    expect(ready.checks.map((c) => c.name).sort()).toEqual([
      'nats-connected',
      'repository-reachable',
      'started',
      'streams-present',
    ]);
    expect(await readdir(repo)).toEqual(
      expect.arrayContaining(['config', 'data', 'index', 'keys', 'locks', 'snapshots']),
    );

    const nc = await connectNats({ servers: nats.url, name: 'main-test-client', connectTimeoutMs: 5_000 });
    try {
      const client = new DataPathClient(nc, { requester: TEST_AGENT, sessionId: 'main-test' });
      expect((await client.repositoryInfo()).version).toBe(2);
      const snapshot = buildSnapshot('main.vol', { 'f.txt': Buffer.from('through the process\n') });
      for (const blob of snapshot.blobs) await client.storeBlob(blob.type, blob.id, blob.data);
      // No flush asked for: the idle flush writes the packs after a second without blobs.
      await waitFor('idle flush', async () => (await readdir(join(repo, 'index'))).length === 1);
      await client.commitSnapshot({
        tree: snapshot.tree,
        paths: snapshot.paths,
        hostname: 'docker-main-test',
        time: new Date().toISOString(),
      });
    } finally {
      await nc.close();
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /volback_gateway_requests_total\{[^}]*operation="store-blob"[^}]*outcome="ok"[^}]*\} 4/,
    );
    expect(metrics).toMatch(
      /volback_gateway_blobs_stored_total\{[^}]*type="data"[^}]*outcome="added"[^}]*\} 1/,
    );
    expect(metrics).toContain('volback_gateway_packs_written_total');

    run.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(await readdir(join(repo, 'locks'))).toEqual([]);
    expect(run.output()).toContain('storage gateway ready');
    expect(run.output()).not.toContain(PASSWORD);
  });

  it('exits with a clear error and without the password when the password is wrong', async () => {
    const repo = join(scratch, 'repo'); // created by the test above
    const run = runGateway({
      VOLBACK_REPOSITORY: repo,
      VOLBACK_PASSWORD: `${PASSWORD}-wrong`,
      VOLBACK_NATS_URL: nats.url,
      VOLBACK_OPS_PORT: String(await freePort()),
    });
    expect(await run.exit).toBe(1);
    expect(run.output()).toContain('VOLBACK_REPO_WRONG_PASSWORD');
    expect(run.output()).not.toContain(PASSWORD);
  });

  it('exits at once on a configuration error, naming the variable', async () => {
    const run = runGateway({ VOLBACK_REPOSITORY: join(scratch, 'x'), VOLBACK_NATS_URL: nats.url });
    expect(await run.exit).toBe(1);
    expect(run.output()).toContain('VOLBACK_PASSWORD');
    expect(run.output()).toContain('VOLBACK_GATEWAY_CONFIG_INVALID');
  });
});
