// `volback init` as a user runs it: the files it writes, and what it refuses (changing nothing).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
      ['init', '--dir', dir, '--nats-host', 'nats.example', '--nats-host', '192.0.2.5'],
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
    expect(nats.checkIP('192.0.2.5')).toBe('192.0.2.5');
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

describe('volback init nats-config', () => {
  const dir = join(root, 'upgraded');

  it('rewrites a configuration an earlier version wrote, once, and says how to reload NATS', async () => {
    expect((await volback(['init', '--dir', dir])).code).toBe(0);
    const file = join(dir, 'nats/nats-server.conf');
    const current = readFileSync(file, 'utf8');
    const upToDate = await volback(['init', 'nats-config', '--dir', dir]);
    expect(upToDate.code, upToDate.output).toBe(0);
    expect(upToDate.output).toContain('the NATS configuration is up to date');

    // An earlier version's: without the operations added since.
    const older = current
      .split('\n')
      .filter((line) => !/store-blobs|load-trees/.test(line))
      .join('\n');
    writeFileSync(file, older);
    const rewritten = await volback(['init', 'nats-config', '--dir', dir]);
    expect(rewritten.code, rewritten.output).toBe(0);
    expect(rewritten.output).toContain(`rewrote ${file}`);
    expect(rewritten.output).toContain('nats-server --signal reload');
    expect(readFileSync(file, 'utf8')).toBe(current);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');

    writeFileSync(file, older);
    const quiet = await volback(['init', 'nats-config', '--no-reload', '--dir', dir]);
    expect(quiet.output.trim()).toBe(`rewrote ${file}`);
    expect(readFileSync(file, 'utf8')).toBe(current);
    expect((await volback(['init', 'nats-config', '--dir', join(root, 'none')])).code).toBe(1);
  });
});

describe('volback init --nats-cluster', () => {
  const dir = join(root, 'cluster');
  const nodes = 'nats1=nats1.example:6222,nats2=nats2.example:6222,nats3=192.0.2.3:7222';

  it('refuses node lists it cannot write, writing nothing', async () => {
    for (const [args, said] of [
      [['--nats-cluster', 'nats1=nats1.example:6222'], 'at least 2'],
      [['--nats-cluster', 'nats1=nats1.example,nats2=nats2.example'], 'is not NAME=HOST:PORT'],
      [['--nats-cluster', 'nats1=a.example:6222,nats1=b.example:6222'], 'names node nats1 twice'],
      [['--nats-cluster', 'n/1=a.example:6222,n2=b.example:6222'], 'node name "n/1"'],
      [['--nats-cluster', 'n1=a b:6222,n2=b.example:6222'], 'is not NAME=HOST:PORT'],
      [['--nats-cluster', 'n1=a.example:6222,n2=a.example:6222'], 'to two nodes'],
      [['--nats-cluster', nodes, '--nats-listen', 'nats9=127.0.0.1:4222'], 'no node nats9'],
      [['--nats-cluster', nodes, '--nats-listen', 'nats1=0.0.0.0:6222'], 'on the same port 6222'],
      [['--nats-cluster', nodes, '--nats-server-name', 'x'], '--nats-server-name is for one server'],
      [['--nats-cluster-name', 'c'], 'need --nats-cluster'],
    ] as const) {
      const refused = await volback(['init', '--dir', dir, ...args]);
      expect(refused.code, refused.output).toBe(1);
      expect(refused.output).toContain(said);
    }
    const twice = await volback([
      'init',
      '--dir',
      dir,
      '--nats-listen',
      '127.0.0.1:1',
      '--nats-listen',
      '127.0.0.1:2',
    ]);
    expect(twice.code, twice.output).toBe(2);
    expect(readdirSync(root)).not.toContain('cluster');
  });

  it('writes one configuration and certificate per node, for its own names, dialling the others', async () => {
    const done = await volback([
      'init',
      '--dir',
      dir,
      '--nats-cluster',
      nodes,
      '--nats-host',
      'nats.example',
      '--nats-listen',
      'nats3=192.0.2.3:4223',
    ]);
    expect(done.code, done.output).toBe(0);
    for (const node of ['nats1', 'nats2', 'nats3'])
      expect(done.output).toContain(`nats-server -c ${join(dir, `nats/nats-server-${node}.conf`)}`);
    const files = snapshot(dir);
    expect(Object.keys(files)).not.toContain(join(dir, 'nats/nats-server.conf'));
    expect(Object.keys(files)).not.toContain(join(dir, 'tls/nats.crt'));
    const ca = new X509Certificate(files[join(dir, 'ca/ca.crt')]!);
    const cert = (node: string) => new X509Certificate(files[join(dir, `tls/nats-${node}.crt`)]!);
    for (const node of ['nats1', 'nats2', 'nats3']) {
      expect(cert(node).verify(ca.publicKey)).toBe(true);
      expect(cert(node).checkHost('nats.example')).toBe('nats.example');
      expect(cert(node).checkHost('localhost')).toBe('localhost');
      // Server and client: a node proves itself to the peers it dials (mutual TLS).
      expect(cert(node).keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    }
    expect(cert('nats1').checkHost('nats1.example')).toBe('nats1.example');
    expect(cert('nats1').checkHost('nats2.example')).toBeUndefined();
    expect(cert('nats3').checkIP('192.0.2.3')).toBe('192.0.2.3');

    const config = files[join(dir, 'nats/nats-server-nats3.conf')]!;
    expect(config).toContain('server_name: "nats3"');
    expect(config).toContain('listen: "192.0.2.3:4223"');
    expect(config).toMatch(
      /cluster \{\n {2}name: "volback"\n {2}listen: "192\.0\.2\.3:7222"\n {2}advertise: "192\.0\.2\.3:7222"/,
    );
    expect(config).toContain('"nats-route://nats1.example:6222"');
    expect(config).toContain('"nats-route://nats2.example:6222"');
    expect(config).not.toContain('nats-route://192.0.2.3');
    expect(config).toContain(`ca_file: "${join(dir, 'ca/ca.crt')}"`);
    expect(config).toContain(`pid_file: "${join(dir, 'nats/nats-server-nats3.pid')}"`);
    expect(files[join(dir, 'nats/nats-server-nats1.conf')]).toContain('listen: "0.0.0.0:4222"');
    expect(files[join(dir, 'nats/nats-server-nats1.conf')]).toContain('listen: "0.0.0.0:6222"');
  });

  it('rewrites every node for a new agent, and --force back to one server leaves no node behind', async () => {
    const added = await volback(['init', 'agent', 'box', '--host-id', 'h-1', '--dir', dir]);
    expect(added.code, added.output).toBe(0);
    for (const node of ['nats1', 'nats2', 'nats3']) {
      expect(readFileSync(join(dir, `nats/nats-server-${node}.conf`), 'utf8')).toContain('# agent-h-1');
      expect(added.output).toContain(join(dir, `nats/nats-server-${node}.conf`));
    }
    expect(added.output).toContain('nats-server --signal reload');
    const single = await volback(['init', '--dir', dir, '--force']);
    expect(single.code, single.output).toBe(0);
    expect(readdirSync(join(dir, 'nats')).sort()).toEqual(['nats-server.conf', 'settings.json']);
    expect(readdirSync(join(dir, 'tls')).sort()).toEqual(['minio.crt', 'minio.key', 'nats.crt', 'nats.key']);
  });
});
