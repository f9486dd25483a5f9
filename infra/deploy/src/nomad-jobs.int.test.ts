import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from '@cdktf/hcl2json';
import { resolveBinary } from '@volback/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMPOSE, ROOT } from './deployment.ts';

const run = promisify(execFile);

/** A service of `docker compose config --format json` (the compose file as compose reads it). */
interface ComposeService {
  image: string;
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: Array<{ type: string; source?: string; target: string; read_only?: boolean }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string };
  init?: boolean;
  user?: string;
  stop_grace_period?: string;
}

/** The parts of a Nomad job the comparison reads (hcl2json: every block is a list). */
type Block = Record<string, unknown>;

/** The volback services and the Nomad job file of each. */
const JOBS = {
  agent: 'agent.nomad.hcl',
  'storage-gateway': 'storage-gateway.nomad.hcl',
  scheduler: 'scheduler.nomad.hcl',
  catalog: 'catalog.nomad.hcl',
} as const;

/** Addresses of other services: compose's service names there, Nomad's service discovery here. */
const ADDRESSES = new Set(['VOLBACK_NATS_URL', 'VOLBACK_REPOSITORY']);
/** The host's display name: compose leaves it to the engine, Nomad names the client node. */
const PER_PLATFORM = new Set(['VOLBACK_HOST_NAME']);
/**
 * Settings that differ per deployment: `.env` overrides there (the S3 access key, optional further
 * catalog tokens), Nomad variables here; the names must agree.
 */
const SECRETS = new Set([
  'AWS_ACCESS_KEY_ID',
  'VOLBACK_CATALOG_WRITE_TOKEN',
  'VOLBACK_CATALOG_READ_TOKEN',
  'MINIO_ROOT_USER',
]);
/** Secrets as values: in neither file (the services read them from files the *_FILE variables name). */
const SECRET_VALUES = [
  'VOLBACK_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'MINIO_ROOT_PASSWORD',
  'VOLBACK_NATS_CREDS',
];

/** Dummy values for the variables compose requires; nothing is started. */
const REQUIRED = {
  VOLBACK_NATS_URL: 'nats://central:4222',
};

async function composeConfig(file: string): Promise<Record<string, ComposeService>> {
  const { stdout } = await run(resolveBinary(COMPOSE), ['-f', file, 'config', '--format', 'json'], {
    cwd: ROOT,
    // Only the required variables: every other one takes the file's default.
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...REQUIRED },
  });
  return (JSON.parse(stdout) as { services: Record<string, ComposeService> }).services;
}

const one = (value: unknown): Block => (value as Block[])[0]!;
const named = (value: unknown): [string, Block] => {
  const [name, blocks] = Object.entries(value as Record<string, Block[]>)[0]!;
  return [name, blocks[0]!];
};

/** A parsed job: its type, its one group and task, with `${var.x}` replaced by the defaults. */
async function nomadJob(file: string): Promise<{ name: string; type: string; group: Block; task: Block }> {
  const text = await readFile(join(ROOT, 'deploy/nomad', file), 'utf8');
  const json = (await parse(file, text)) as { job: unknown; variable?: Record<string, Block[]> };
  const defaults = Object.fromEntries(
    Object.entries(json.variable ?? {}).map(([name, [v]]) => [name, v!['default']]),
  );
  const resolve = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const whole = /^\$\{var\.(\w+)\}$/.exec(value);
      if (whole) return defaults[whole[1]!];
      return value.replace(/\$\{var\.(\w+)\}/g, (_, name: string) => String(defaults[name]));
    }
    if (Array.isArray(value)) return value.map(resolve);
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
    return value;
  };
  const [name, job] = named(json.job);
  const [, group] = named(job['group']);
  const [, task] = named(group['task']);
  return { name, type: job['type'] as string, group: resolve(group) as Block, task: resolve(task) as Block };
}

/** Environment of a task: `env` blocks and `env = true` templates (NAME=… lines). */
function nomadEnv(task: Block): Record<string, string> {
  const env: Record<string, string> = {
    ...((task['env'] as Block[] | undefined)?.[0] as Record<string, string>),
  };
  for (const template of (task['template'] as Block[] | undefined) ?? []) {
    if (template['env'] !== true) continue;
    for (const line of String(template['data']).split('\n')) {
      const match = /^\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      if (match) env[match[1]!] = match[2]!;
    }
  }
  return env;
}

/** Whether a compose bind's source is in a secrets folder (./secrets, deploy/agent/secrets). */
const isSecretsSource = (source: string | undefined): boolean =>
  source !== undefined &&
  (source.startsWith(join(ROOT, 'secrets')) || source.startsWith(join(ROOT, 'deploy/agent/secrets')));

/**
 * Mounts as comparable strings: `bind <source> <target> ro|rw`, `volume <target> ro|rw`, and
 * `secrets <target> ro|rw` for a service's secret files (compose: a folder of ./secrets).
 */
function composeMounts(service: ComposeService): string[] {
  return (service.volumes ?? [])
    .map((m) =>
      m.type === 'bind'
        ? isSecretsSource(m.source)
          ? `secrets ${m.target} ${m.read_only ? 'ro' : 'rw'}`
          : `bind ${m.source} ${m.target} ${m.read_only ? 'ro' : 'rw'}`
        : `volume ${m.target} ${m.read_only ? 'ro' : 'rw'}`,
    )
    .sort();
}

/** File templates of a task (not `env = true` ones): their destinations. */
function fileTemplates(task: Block): string[] {
  return ((task['template'] as Block[] | undefined) ?? [])
    .filter((t) => t['env'] !== true)
    .map((t) => String(t['destination']));
}

/**
 * The same for a Nomad task. Secret files are templates rendered into the task's secrets dir
 * (`/secrets`, read-only to the task), binds of folders of it, or a host volume `*-secrets`.
 */
function nomadMounts(group: Block, task: Block): string[] {
  const specs = (one(task['config'])['volumes'] as string[] | undefined) ?? [];
  const binds = specs.map((spec) => {
    const [source, target, mode] = spec.split(':');
    return `${source!.startsWith('secrets/') ? 'secrets' : `bind ${source}`} ${target} ${mode === 'ro' ? 'ro' : 'rw'}`;
  });
  const volumes = ((task['volume_mount'] as Block[] | undefined) ?? []).map((m) => {
    const [, volume] = Object.entries(group['volume'] as Record<string, Block[]>).find(
      ([name]) => name === m['volume'],
    )!;
    const kind = String(volume[0]!['source']).endsWith('-secrets') ? 'secrets' : 'volume';
    return `${kind} ${m['destination']} ${m['read_only'] === true || volume[0]!['read_only'] === true ? 'ro' : 'rw'}`;
  });
  const secretsDir =
    fileTemplates(task).some((d) => d.startsWith('secrets/')) && !specs.some((s) => s.startsWith('secrets/'))
      ? ['secrets /secrets ro']
      : [];
  return [...binds, ...volumes, ...secretsDir].sort();
}

/** The files the compose `init` gives each service (deploy/image/compose-init.ts, `give(…)`). */
async function givenFiles(): Promise<Record<string, string[]>> {
  const script = await readFile(join(ROOT, 'deploy/image/compose-init.ts'), 'utf8');
  const given: Record<string, string[]> = {};
  for (const [, service, file] of script.matchAll(/give\('([\w-]+)', \w+, '([^']+)'/g)) {
    (given[service!] ??= []).push(file!);
  }
  return given;
}

/** The ops port the image's services listen on (Dockerfile `ENV VOLBACK_OPS_PORT`). */
async function imageOpsPort(): Promise<number> {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  return Number(/VOLBACK_OPS_PORT=(\d+)/.exec(dockerfile)![1]);
}

describe('Nomad jobs and compose files describe the same services', () => {
  let compose: Record<string, ComposeService>;
  let agentOnly: Record<string, ComposeService>;

  beforeAll(async () => {
    compose = await composeConfig('docker-compose.yml');
    agentOnly = await composeConfig('deploy/agent/compose.yml');
  });

  it.each(Object.entries(JOBS))(
    '%s: image, command, environment, mounts, health check',
    async (service, file) => {
      const ours = compose[service]!;
      const job = await nomadJob(file);
      const config = one(job.task['config']);
      expect(job.type).toBe(service === 'agent' ? 'system' : 'service');
      expect(job.task['driver']).toBe('docker');
      expect(config['image']).toBe(ours.image);
      expect(config['args']).toEqual(ours.command);
      expect(config['init'] === true).toBe(ours.init === true);
      expect(job.task['user'] ?? 'node').toBe(ours.user ?? 'node');
      expect(job.task['kill_timeout']).toBe(ours.stop_grace_period);

      const env = nomadEnv(job.task);
      const composeEnv = ours.environment ?? {};
      expect(Object.keys(env).sort()).toEqual(Object.keys(composeEnv).sort());
      for (const [name, value] of Object.entries(composeEnv)) {
        if (ADDRESSES.has(name) || PER_PLATFORM.has(name) || SECRETS.has(name)) continue;
        expect(env[name], name).toBe(value ?? '');
      }
      for (const name of Object.keys(env).filter((n) => SECRETS.has(n))) {
        expect(env[name], `${name} comes from a Nomad variable`).toMatch(/^\{\{ (\.|index \.)/);
      }

      expect(nomadMounts(job.group, job.task)).toEqual(composeMounts(ours));

      // Secrets only as files: the same paths in both, each one a file the service is given.
      for (const name of SECRET_VALUES) {
        expect(composeEnv[name] ?? '', `${name} in docker-compose.yml`).toBe('');
        expect(env[name], `${name} in ${file}`).toBeUndefined();
      }
      const given = (await givenFiles())[service]!;
      const fileVars = Object.entries(composeEnv).filter(([name]) => name.endsWith('_FILE'));
      expect(fileVars.length, service).toBeGreaterThanOrEqual(2);
      const folder = service === 'agent' ? '/etc/volback/' : '/secrets/';
      for (const [name, path] of fileVars) {
        expect(path, name).toMatch(new RegExp(`^${folder}`));
        expect(given, `${name}: ${path} is given to ${service}`).toContain(path!.slice(folder.length));
      }
      // Nomad renders every file the compose init gives (the agent: its host volume holds them).
      if (service !== 'agent') {
        const rendered = fileTemplates(job.task)
          .filter((d) => d.startsWith('secrets/'))
          .map((d) => d.slice('secrets/'.length));
        expect(rendered.sort()).toEqual([...given].sort());
        for (const template of (job.task['template'] as Block[]).filter((t) => t['env'] !== true)) {
          expect(template['perms'], String(template['destination'])).toBe('0600');
          expect(template['uid'], String(template['destination'])).toBe(1000);
        }
      }

      // The image's health check asks /readyz on the ops port; so does Nomad's.
      expect(ours.healthcheck?.test).toEqual(['CMD', 'node', '/app/deploy/image/healthcheck.ts']);
      expect(await readFile(join(ROOT, 'deploy/image/healthcheck.ts'), 'utf8')).toMatch(
        /VOLBACK_OPS_PORT[\s\S]*\/readyz/,
      );
      expect(composeEnv['VOLBACK_OPS_PORT']).toBeUndefined();
      const check = one(one(job.group['service'])['check']);
      expect(check).toMatchObject({
        type: 'http',
        path: '/readyz',
        interval: ours.healthcheck?.interval,
        timeout: ours.healthcheck?.timeout,
      });
      const opsLabel = (check['port'] as string | undefined) ?? (one(job.group['service'])['port'] as string);
      const opsPort = (one(job.group['network'])['port'] as Record<string, Block[]>)[opsLabel];
      expect(opsPort?.[0]?.['to']).toBe(await imageOpsPort());
    },
  );

  it('the agent of deploy/agent/compose.yml is the agent of docker-compose.yml', () => {
    const central = compose['agent']!;
    const alone = agentOnly['agent']!;
    expect(alone.image).toBe(central.image);
    expect(alone.command).toEqual(central.command);
    expect(alone.user).toBe(central.user);
    expect(alone.init).toBe(central.init);
    expect(alone.healthcheck).toEqual(central.healthcheck);
    expect(composeMounts(alone)).toEqual(composeMounts(central));
    const { VOLBACK_NATS_URL: _central, ...centralEnv } = central.environment ?? {};
    const { VOLBACK_NATS_URL: url, ...aloneEnv } = alone.environment ?? {};
    expect(aloneEnv).toEqual(centralEnv);
    expect(url).toBe(REQUIRED.VOLBACK_NATS_URL);
  });

  it('the NATS and MinIO examples run what compose runs, with the same files', async () => {
    const given = await givenFiles();
    const nats = await nomadJob('nats.nomad.hcl');
    expect(one(nats.task['config'])['image']).toBe(compose['nats']!.image);
    // Same arguments: the configuration `volback init` wrote, at the same path.
    expect(one(nats.task['config'])['args']).toEqual(compose['nats']!.command);
    const natsCheck = one(one(nats.group['service'])['check']);
    expect(compose['nats']!.healthcheck!.test.join(' ')).toContain(`:8222${natsCheck['path']}`);
    expect(nomadMounts(nats.group, nats.task)).toEqual(composeMounts(compose['nats']!));
    // The configuration folder and the certificate: compose binds them from ./secrets, Nomad
    // renders them into its secrets dir and binds that at the same paths.
    expect(fileTemplates(nats.task).sort()).toEqual(
      ['secrets/nats/nats-server.conf', ...given['nats']!.map((f) => `secrets/${f}`)].sort(),
    );
    const conf = (nats.task['template'] as Block[]).find(
      (t) => t['destination'] === 'secrets/nats/nats-server.conf',
    )!;
    expect(conf).toMatchObject({ change_mode: 'signal', change_signal: 'SIGHUP' });

    const minio = await nomadJob('minio.nomad.hcl');
    expect(one(minio.task['config'])['image']).toBe(compose['minio']!.image);
    expect(one(minio.task['config'])['args']).toEqual(compose['minio']!.command);
    expect(Object.keys(nomadEnv(minio.task)).sort()).toEqual(
      Object.keys(compose['minio']!.environment!).sort(),
    );
    expect(nomadEnv(minio.task)['MINIO_ROOT_PASSWORD_FILE']).toBe(
      compose['minio']!.environment!['MINIO_ROOT_PASSWORD_FILE'],
    );
    expect(nomadMounts(minio.group, minio.task)).toEqual(composeMounts(compose['minio']!));
    expect(
      fileTemplates(minio.task)
        .filter((d) => d.startsWith('secrets/') && !d.endsWith('.env'))
        .map((d) => d.slice('secrets/'.length))
        .sort(),
    ).toEqual([...given['minio']!].sort());
    for (const name of SECRET_VALUES) expect(compose['minio']!.environment![name]).toBeUndefined();
  });

  it('the init service writes ./secrets and every service starts after it', () => {
    const init = compose['init']!;
    expect(init.image).toBe(compose['storage-gateway']!.image);
    expect(init.user).toBe('root');
    expect(composeMounts(init)).toContain('secrets /app/.volback/secrets rw');
    for (const [name, service] of Object.entries(compose)) {
      if (name === 'init') continue;
      expect(
        (service as ComposeService & { depends_on?: Record<string, { condition: string }> }).depends_on?.[
          'init'
        ]?.condition,
        name,
      ).toBe('service_completed_successfully');
    }
  });
});
