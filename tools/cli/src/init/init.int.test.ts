// `volback init` as a user runs it: the files it writes, and what it refuses (changing nothing).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runToEnd } from '@volback/testing';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = new URL('../main.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'volback-init-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function volback(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runToEnd(process.execPath, [CLI, ...args], { ...process.env, VOLBACK_PASSWORD: '', ...env });
}

function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[full] = readFileSync(full, 'utf8');
    }
  };
  walk(dir);
  return files;
}

describe('volback init', () => {
  const dir = join(root, 'secrets');

  it('writes private files: a CA, certificates it signed for the names given, seeds, passwords, tokens', async () => {
    const done = await volback(
      ['init', '--dir', dir, '--nats-host', 'nats.example', '--nats-host', '10.0.0.5'],
      {
        VOLBACK_PASSWORD: 'the-password-I-chose',
      },
    );
    expect(done.code, done.output).toBe(0);
    expect(done.output).not.toContain('the-password-I-chose');
    const files = snapshot(dir);
    for (const path of Object.keys(files)) expect(statSync(path).mode & 0o777, path).toBe(0o600);
    for (const sub of ['', 'ca', 'tls', 'nats', 'identities', 'catalog'])
      expect(statSync(join(dir, sub)).mode & 0o777).toBe(0o700);
    expect(files[join(dir, 'repository-password')]).toBe('the-password-I-chose\n');

    const ca = new X509Certificate(files[join(dir, 'ca/ca.crt')]!);
    const nats = new X509Certificate(files[join(dir, 'tls/nats.crt')]!);
    expect(ca.ca).toBe(true);
    expect(nats.verify(ca.publicKey)).toBe(true);
    expect(nats.checkHost('nats.example')).toBe('nats.example');
    expect(nats.checkHost('localhost')).toBe('localhost');
    expect(nats.checkIP('10.0.0.5')).toBe('10.0.0.5');
    expect(nats.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(nats.checkHost('evil.example')).toBeUndefined();
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    const tokens = JSON.parse(files[join(dir, 'catalog/tokens.json')]!) as {
      tokens: { name: string; scope: string; sha256: string }[];
    };
    const { createHash } = await import('node:crypto');
    const admin = files[join(dir, 'catalog/admin.token')]!.trim();
    expect(tokens.tokens).toEqual([
      { name: 'admin', scope: 'write', sha256: createHash('sha256').update(admin).digest('hex') },
      expect.objectContaining({ name: 'read', scope: 'read' }),
    ]);
    const config = files[join(dir, 'nats/nats-server.conf')]!;
    expect(config).toContain('max_payload: 16777216');
    expect(config).toMatch(/tls \{/);
    for (const name of ['admin', 'scheduler', 'catalog', 'gateway']) {
      expect(files[join(dir, `identities/${name}.nk`)]).toMatch(/^SU[A-Z2-7]+\n$/);
      expect(config).toContain(`# ${name}`);
    }
    // Seeds never go into the server's configuration, only public keys.
    expect(config).not.toMatch(/"SU[A-Z2-7]{50,}"/);
  });

  it('refuses to replace a set-up, bad names and unknown agents, changing nothing', async () => {
    const before = snapshot(dir);
    const again = await volback(['init', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.output).toContain('already holds a set-up; pass --force');
    expect((await volback(['init', 'agent', 'box', '--host-id', 'gateway', '--dir', dir])).output).toContain(
      'reserved',
    );
    expect((await volback(['init', 'agent', 'two words', '--dir', dir])).code).toBe(1);
    expect((await volback(['init', 'subscriber', '../x', '--dir', dir])).code).toBe(1);
    expect((await volback(['init', 'revoke', 'agent', 'nobody', '--dir', dir])).output).toContain(
      'no agent named "nobody"',
    );
    expect((await volback(['init', 'agent', 'box', '--dir', join(root, 'empty')])).output).toContain(
      'holds no set-up',
    );
    expect((await volback(['init', '--dir', join(root, 'bad'), '--nats-host', 'a b'])).code).toBe(1);
    expect(snapshot(dir)).toEqual(before);
  });

  it('adds an agent once per name and host id, and says how to reload NATS when none runs there', async () => {
    const added = await volback(['init', 'agent', 'box', '--host-id', 'h-1', '--dir', dir]);
    expect(added.code, added.output).toBe(0);
    expect(added.output).toContain('nats-server --signal reload');
    expect(JSON.parse(readFileSync(join(dir, 'identities/agent-h-1.json'), 'utf8'))).toEqual({
      hostId: 'h-1',
      name: 'box',
    });
    expect((await volback(['init', 'agent', 'box', '--dir', dir])).output).toContain('exists already');
    expect((await volback(['init', 'agent', 'other', '--host-id', 'h-1', '--dir', dir])).output).toContain(
      'already has an agent identity',
    );
    const forced = await volback(['init', '--dir', dir, '--force', '--nats-secrets-path', '/etc/volback']);
    expect(forced.code, forced.output).toBe(0);
    expect(readdirSync(join(dir, 'identities'))).not.toContain('agent-h-1.nk');
    // The repository password stays: the backups it encrypts must stay readable.
    expect(readFileSync(join(dir, 'repository-password'), 'utf8')).toBe('the-password-I-chose\n');
    // A NATS in a container that mounts the directory elsewhere finds its files there.
    const config = readFileSync(join(dir, 'nats/nats-server.conf'), 'utf8');
    expect(config).toContain('cert_file: "/etc/volback/tls/nats.crt"');
    expect(config).not.toContain('pid_file');
  });
});
