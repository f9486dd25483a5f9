// `npm start` is secure by default: its secrets are files only their owner reads, and no secret
// (repository password, catalog tokens, nkey seeds) shows in a log, an event, a command line or
// a process environment of the running stack.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { commandSubject, DATA_HEADERS, dataSubject, inboxPrefix, STREAMS } from '@volback/contracts';
import { connectNats } from '@volback/messaging';
import { freePort, runToEnd, waitUntil } from '@volback/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { secretLeaks, secretsOf, startStack, type StackProcess } from './stack-process.ts';

const CLI = fileURLToPath(new URL('../../../tools/cli/src/main.ts', import.meta.url));

const volback = (args: string[]) => runToEnd(process.execPath, [CLI, ...args]);

/** Starts the stack (no Docker Engine) with the repository password given, and waits until ready. */
async function readyStack(password: string): Promise<{ env: Record<string, string>; running: StackProcess }> {
  dataDir = mkdtempSync(join(tmpdir(), 'volback-stack-secrets-'));
  const env = {
    VOLBACK_DATA_DIR: dataDir,
    VOLBACK_NATS_PORT: String(await freePort()),
    VOLBACK_OPS_PORT: String(await freePort()),
    VOLBACK_CATALOG_PORT: String(await freePort()),
    DOCKER_HOST: 'unix:///nonexistent/volback-test/docker.sock',
    VOLBACK_PASSWORD: password,
  };
  const running = startStack(env);
  stack = running;
  const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
  await waitUntil(
    'the stack to be ready',
    async () => (await fetch(ready).catch(() => null))?.status === 200,
  );
  return { env, running };
}

let stack: StackProcess | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  if (stack && stack.child.exitCode === null) {
    stack.child.kill('SIGTERM');
    await stack.exit;
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start: secrets', () => {
  it('keeps every secret in 0600 files and out of logs, events, arguments and environments', async () => {
    const password = `pw-${Math.random().toString(36).slice(2)}-given-by-the-user`;
    const { env, running } = await readyStack(password);
    const dataDir = env.VOLBACK_DATA_DIR!;
    const dir = join(dataDir, 'secrets');
    const secrets = secretsOf(dir);
    // The password the user gave is the set-up's, kept in the file from now on.
    expect(secrets.get('repository password')).toBe(password);
    expect(secrets.size).toBeGreaterThanOrEqual(8);
    for (const [name, value] of secrets) {
      if (name !== 'repository password') expect(value.length, name).toBeGreaterThanOrEqual(32);
    }
    const modes = (path: string): void => {
      const st = statSync(path);
      expect(st.mode & 0o777, path).toBe(st.isDirectory() ? 0o700 : 0o600);
      if (st.isDirectory()) for (const entry of readdirSync(path)) modes(join(path, entry));
    };
    modes(dir);

    // Something in the log: a policy defined through the API (with the write token) and the
    // scheduler's answer.
    const token = readFileSync(join(dir, 'catalog/admin.token'), 'utf8').trim();
    const defined = await fetch(`http://127.0.0.1:${env.VOLBACK_CATALOG_PORT}/v1/policies/gold`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        scope: { kind: 'default' },
        policy: { schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 } },
      }),
    });
    expect(defined.status, await defined.clone().text()).toBe(202);
    await waitUntil('the policy defined', async () => {
      const res = await fetch(`http://127.0.0.1:${env.VOLBACK_CATALOG_PORT}/v1/policies/gold`);
      return res.status === 200;
    });

    // The CLI as a user runs it: refused without a token (and told where to put one), let through
    // with the token file the set-up wrote.
    const catalogUrl = `http://127.0.0.1:${env.VOLBACK_CATALOG_PORT}`;
    const cliEnv = {
      ...process.env,
      VOLBACK_CATALOG_URL: catalogUrl,
      VOLBACK_TOKEN: '',
      VOLBACK_TOKEN_FILE: '',
    };
    const refused = await runToEnd(process.execPath, [CLI, 'policies', 'remove', 'gold'], cliEnv);
    expect(refused.code, refused.output).toBe(6);
    expect(refused.output).toContain('VOLBACK_TOKEN_FILE');
    const removed = await runToEnd(process.execPath, [CLI, 'policies', 'remove', 'gold'], {
      ...cliEnv,
      VOLBACK_TOKEN_FILE: join(dir, 'catalog/admin.token'),
    });
    expect(removed.code, removed.output).toBe(0);

    // Every event, every log, command line and environment of the stack's processes (its own
    // environment is the user's: it was given the password).
    const found = await secretLeaks({
      dataDir,
      natsPort: Number(env.VOLBACK_NATS_PORT),
      stackPid: running.child.pid!,
      output: running.output(),
    });
    expect(found.events).toContain('volback.evt.policy.');
    expect(found.processes).toBeGreaterThanOrEqual(4);
    expect(found.leaks).toEqual([]);

    running.child.kill('SIGTERM');
    expect(await running.exit).toBe(0);
  });

  it('takes a new host and revokes it on the running stack, whose NATS reloads', async () => {
    const { env, running } = await readyStack('');
    const dir = join(env.VOLBACK_DATA_DIR!, 'secrets');
    const added = await volback(['init', 'agent', 'intruder', '--host-id', 'h-x', '--dir', dir]);
    expect(added.code, added.output).toBe(0);
    expect(added.output).toMatch(/reloaded NATS \(pid \d+\)/);

    const agent = await connectNats({
      servers: `nats://127.0.0.1:${env.VOLBACK_NATS_PORT}`,
      name: 'intruder',
      connectTimeoutMs: 5_000,
      nkeyFile: join(dir, 'identities/agent-h-x.nk'),
      caFile: join(dir, 'ca/ca.crt'),
      inboxPrefix: inboxPrefix({ kind: 'agent', hostId: 'h-x' }),
    });
    const refused = (call: Promise<unknown>) =>
      call.then(
        () => 'allowed',
        (e: Error) => (e.cause as Error | undefined)?.name ?? e.name,
      );
    const jsm = await jetstreamManager(agent, { timeout: 3_000 });
    expect(await refused(jsm.streams.delete(STREAMS.events.name))).toBe('PermissionViolationError');
    expect(await refused(jsm.streams.purge(STREAMS.commands.name))).toBe('PermissionViolationError');
    const command = commandSubject({ kind: 'gateway' }, 'prune-repository');
    expect(await refused(agent.request(command, '{}', { timeout: 3_000 }))).toBe('PermissionViolationError');

    const revoked = await volback(['init', 'revoke', 'agent', 'intruder', '--dir', dir]);
    expect(revoked.code, revoked.output).toBe(0);
    await agent.closed();
    running.child.kill('SIGTERM');
    expect(await running.exit).toBe(0);
  });

  it('rewrites the NATS configuration of an earlier version when it starts: the newer operations are allowed', async () => {
    const { env, running } = await readyStack('');
    const dir = join(env.VOLBACK_DATA_DIR!, 'secrets');
    const file = join(dir, 'nats/nats-server.conf');
    const current = readFileSync(file, 'utf8');
    running.child.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    // What a version before store-blobs and load-trees wrote.
    const older = current
      .split('\n')
      .filter((line) => !/store-blobs|load-trees/.test(line))
      .join('\n');
    expect(older).not.toBe(current);
    writeFileSync(file, older);

    const again = startStack(env);
    stack = again;
    const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
    await waitUntil(
      'the stack to be ready again',
      async () => (await fetch(ready).catch(() => null))?.status === 200,
    );
    expect(readFileSync(file, 'utf8')).toBe(current);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');

    // The server runs with it: the catalog may ask a gateway for trees (an error of the gateway's
    // own, not the server's refusal).
    const catalog = await connectNats({
      servers: `nats://127.0.0.1:${env.VOLBACK_NATS_PORT}`,
      name: 'catalog-probe',
      connectTimeoutMs: 5_000,
      nkeyFile: join(dir, 'identities/catalog.nk'),
      caFile: join(dir, 'ca/ca.crt'),
      inboxPrefix: inboxPrefix({ kind: 'service', service: 'catalog' }),
    });
    try {
      const reply = await catalog.request(dataSubject({ kind: 'catalog' }, 'load-trees'), '{}', {
        timeout: 5_000,
      });
      expect(reply.headers?.get(DATA_HEADERS.error)).toBe('BAD_REQUEST');
    } finally {
      await catalog.close();
    }
    again.child.kill('SIGTERM');
    expect(await again.exit).toBe(0);
  });
});
