import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { eventSubject, parseMessage } from '@volback/contracts';
import { connectNats, drainNats } from '@volback/messaging';
import {
  freePort,
  startDockerEngine,
  startNatsServer,
  waitFor,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredMessages } from './adapters/event-log.ts';
import { HOST_ID_FILE } from './adapters/host-id-store.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const SECRET = 'process-secret-7c1e-not-in-logs';

interface Run {
  readonly exit: Promise<number | null>;
  readonly output: () => string;
  kill(signal: NodeJS.Signals): void;
}

/** Agent processes still running, killed after the tests whatever happened. */
const running = new Set<ChildProcess>();

function runAgent(env: Record<string, string>): Run {
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

async function readyz(
  url: string,
): Promise<{ status: number; body: { checks: { name: string; ok: boolean }[] } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { checks: { name: string; ok: boolean }[] } };
}

describe('agent process (main.ts)', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let scratch: string;

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    scratch = await mkdtemp(join(tmpdir(), 'volback-agent-main-'));
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await Promise.allSettled([nats?.stop(), engine?.stop()]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
    if (nats) await rm(nats.dataDir, { recursive: true, force: true });
  });

  it('becomes ready, publishes discovery, keeps its host id across restarts and stops cleanly on SIGTERM', async () => {
    await engine.docker.createVolume({ Name: 'app.data' });
    await engine.docker.createContainer({
      Image: engine.image,
      name: 'app',
      Cmd: ['true'],
      Env: [`API_KEY=${SECRET}`],
      HostConfig: { NetworkMode: 'none', Binds: ['app.data:/data'] },
    });
    const stateDir = join(scratch, 'state');
    const port = await freePort();
    const env = {
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_NATS_URL: nats.url,
      VOLBACK_AGENT_STATE_DIR: stateDir,
      VOLBACK_OPS_PORT: String(port),
      VOLBACK_HOST_NAME: 'docker-test-01',
    };
    const url = `http://127.0.0.1:${port}`;

    const hostIds: string[] = [];
    for (const round of [1, 2]) {
      const run = runAgent(env);
      const ready = await waitFor('/readyz 200', async () => {
        const r = await readyz(url);
        return r.status === 200 && r.body;
      });
      expect(ready.checks.map((c) => c.name).sort()).toEqual([
        'discovery-synced',
        'docker-connected',
        'nats-connected',
        'started',
        'streams-present',
      ]);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(
        /volback_agent_events_published_total\{[^}]*type="io\.volback\.host\.registered\.v1"/,
      );
      expect(metrics).toMatch(/volback_agent_engine_connected\{[^}]*\} 1/);
      hostIds.push((await readFile(join(stateDir, HOST_ID_FILE), 'utf8')).trim());

      const started = Date.now();
      run.kill('SIGTERM');
      expect(await run.exit).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(run.output()).toContain('"msg":"stopped"');
      expect(run.output()).not.toContain(SECRET);
      if (round === 1) expect(run.output()).toContain('created the host id');
      else expect(run.output()).not.toContain('created the host id');
    }
    expect(hostIds[1]).toBe(hostIds[0]);

    const nc = await connectNats({ servers: nats.url, name: 'main-test-reader' });
    try {
      const jsm = await jetstreamManager(nc);
      const hostId = hostIds[0]!;
      const types: string[] = [];
      for await (const m of readStoredMessages(jsm, eventSubject('host', hostId))) {
        const parsed = parseMessage(m.data);
        if (parsed.ok && parsed.message.envelope.type === 'io.volback.host.registered.v1') {
          expect(parsed.message.envelope.data).toMatchObject({
            hostId,
            name: 'docker-test-01',
            agentVersion: '0.1.0',
          });
          types.push(parsed.message.envelope.type);
        }
      }
      expect(types).toHaveLength(2);
      const volumeEvents: string[] = [];
      for await (const m of readStoredMessages(jsm, eventSubject('volume', hostId, 'app.data'))) {
        volumeEvents.push(m.string());
      }
      expect(volumeEvents).toHaveLength(1);
      for (const raw of volumeEvents) expect(raw).not.toContain(SECRET);
    } finally {
      await drainNats(nc);
    }
  });

  it('exits with status 1, naming the variable, when the configuration is unusable', async () => {
    const run = runAgent({
      DOCKER_HOST: 'ssh://root@elsewhere',
      VOLBACK_AGENT_STATE_DIR: join(scratch, 'never'),
    });
    expect(await run.exit).toBe(1);
    const fatal = JSON.parse(run.output().trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(fatal).toMatchObject({ level: 'fatal', code: 'VOLBACK_AGENT_CONFIG_INVALID' });
    expect(fatal['err']).toContain('DOCKER_HOST');
  });
});
