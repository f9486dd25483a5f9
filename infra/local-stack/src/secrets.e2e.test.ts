// `npm start` is secure by default: its secrets are files only their owner reads, and no secret
// (repository password, catalog tokens, nkey seeds) shows in a log, an event, a command line or
// a process environment of the running stack.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { commandSubject, inboxPrefix, STREAMS } from '@volback/contracts';
import { connectNats } from '@volback/messaging';
import { freePort, waitUntil } from '@volback/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { adminIdentity, startStack, type StackProcess } from './stack-process.ts';

/** The processes below `pid` (the stack's services and NATS), from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the fields after it are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

function secretsOf(dir: string): Map<string, string> {
  const secrets = new Map<string, string>();
  const add = (name: string, file: string) => secrets.set(name, readFileSync(file, 'utf8').trim());
  add('repository password', join(dir, 'repository-password'));
  add('admin token', join(dir, 'catalog/admin.token'));
  add('read token', join(dir, 'catalog/read.token'));
  add('MinIO root password', join(dir, 'minio-root-password'));
  for (const seed of readdirSync(join(dir, 'identities')).filter((f) => f.endsWith('.nk'))) {
    add(`seed ${seed}`, join(dir, 'identities', seed));
  }
  return secrets;
}

const CLI = fileURLToPath(new URL('../../../tools/cli/src/main.ts', import.meta.url));

function volback(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
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
    dataDir = mkdtempSync(join(tmpdir(), 'volback-stack-secrets-'));
    const password = `pw-${Math.random().toString(36).slice(2)}-given-by-the-user`;
    const env = {
      VOLBACK_DATA_DIR: dataDir,
      VOLBACK_NATS_PORT: String(await freePort()),
      VOLBACK_OPS_PORT: String(await freePort()),
      VOLBACK_CATALOG_PORT: String(await freePort()),
      DOCKER_HOST: 'unix:///nonexistent/volback-test/docker.sock',
      VOLBACK_PASSWORD: password,
    };
    stack = startStack(env);
    const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
    await waitUntil(
      'the stack to be ready',
      async () => (await fetch(ready).catch(() => null))?.status === 200,
    );

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

    // Every event of the log, as stored.
    const nc = await connectNats({
      servers: `nats://127.0.0.1:${env.VOLBACK_NATS_PORT}`,
      name: 'secrets-e2e',
      connectTimeoutMs: 5_000,
      ...adminIdentity(dataDir),
    });
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(STREAMS.events.name);
    let events = '';
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(STREAMS.events.name, { seq }).catch(() => null);
      if (m) events += `${m.subject} ${m.string()}\n`;
    }
    await nc.close();
    expect(events).toContain('volback.evt.policy.');

    // Command lines and environments of every process the stack started (the stack's own
    // environment is the user's: it was given the password).
    const processes = descendants(stack.child.pid!);
    expect(processes.length).toBeGreaterThanOrEqual(4);
    const places: [string, string][] = [
      ['the stack output (every service log)', stack.output()],
      ['the NATS log', readFileSync(join(dataDir, 'nats/nats-server.log'), 'utf8')],
      ['the events', events],
    ];
    for (const pid of processes) {
      try {
        places.push([`the command line of ${pid}`, readFileSync(`/proc/${pid}/cmdline`, 'utf8')]);
        places.push([`the environment of ${pid}`, readFileSync(`/proc/${pid}/environ`, 'utf8')]);
      } catch {
        // a process that ended meanwhile
      }
    }
    for (const [where, text] of places) {
      for (const [name, value] of secrets) expect(text.includes(value), `${name} in ${where}`).toBe(false);
    }

    stack.child.kill('SIGTERM');
    expect(await stack.exit).toBe(0);
  });

  it('takes a new host and revokes it on the running stack, whose NATS reloads', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'volback-stack-hosts-'));
    const env = {
      VOLBACK_DATA_DIR: dataDir,
      VOLBACK_NATS_PORT: String(await freePort()),
      VOLBACK_OPS_PORT: String(await freePort()),
      VOLBACK_CATALOG_PORT: String(await freePort()),
      DOCKER_HOST: 'unix:///nonexistent/volback-test/docker.sock',
      VOLBACK_PASSWORD: '',
    };
    stack = startStack(env);
    const ready = `http://127.0.0.1:${env.VOLBACK_OPS_PORT}/readyz`;
    await waitUntil(
      'the stack to be ready',
      async () => (await fetch(ready).catch(() => null))?.status === 200,
    );
    const dir = join(dataDir, 'secrets');
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
    stack.child.kill('SIGTERM');
    expect(await stack.exit).toBe(0);
  });
});
