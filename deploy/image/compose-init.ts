// The compose set-up step (docker-compose.yml, service `init`; runs as root before every other
// service, on each `docker compose up`):
// 1. `volback init` into the secrets directory when it holds no set-up yet (TLS names `nats` and
//    `minio`, the names the services reach each other by, plus VOLBACK_TLS_NAMES);
// 2. an agent identity for this Docker host (VOLBACK_AGENT_NAME), keeping the host id its
//    `agent-state` volume already has;
// 3. the NATS configuration as this version writes it (`volback init nats-config`): a set-up of an
//    earlier version lacks the permissions of newer operations. NATS restarts after an upgrade
//    (`depends_on: init: restart: true`) and reads it;
// 4. gives each service only its own files: `<secrets>/mounts/<service>/`, owned by the user the
//    service runs as, 0600 in a 0700 folder. Copies are rewritten on every run, so a rotated
//    key reaches its service with the next `docker compose up -d`.
// Nothing secret is printed; only file names.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the compose file mounts the secrets directory (the CLI's default, `.volback/secrets` of /app). */
const DIR = process.env['VOLBACK_SECRETS_DIR'] || '/app/.volback/secrets';
/** The agent's state volume, mounted read-only: an agent of before keeps its host id. */
const AGENT_STATE = process.env['VOLBACK_AGENT_STATE_DIR'] || '/var/lib/volback-agent';
/** The user of the image (node); NATS, MinIO and the agent run as root. */
const NODE = 1000;
const ROOT = 0;
const CLI = fileURLToPath(new URL('../../tools/cli/src/main.ts', import.meta.url));

function volback(args: string[], env: NodeJS.ProcessEnv = {}): void {
  execFileSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, VOLBACK_PASSWORD: '', ...env },
    stdio: 'inherit',
  });
}

function names(variable: string): string[] {
  return (process.env[variable] ?? '')
    .split(/[\s,]+/)
    .map((n) => n.trim())
    .filter(Boolean);
}

async function text(file: string): Promise<string> {
  return (await readFile(join(DIR, file), 'utf8')).trim();
}

/** Writes `<DIR>/mounts/<service>/<file>` (0600, owned by `uid`) atomically. */
async function give(service: string, uid: number, file: string, content: string): Promise<void> {
  const target = join(DIR, 'mounts', service, file);
  const folder = join(target, '..');
  await mkdir(folder, { recursive: true, mode: 0o700 });
  for (let dir = folder; dir.length > join(DIR, 'mounts').length; dir = join(dir, '..')) {
    await chown(dir, uid, uid);
    await chmod(dir, 0o700);
  }
  const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: 0o600 });
  await chown(temp, uid, uid);
  await rename(temp, target);
}

async function agentIdentity(name: string): Promise<string | undefined> {
  for (const entry of await readdir(join(DIR, 'identities'))) {
    if (!entry.startsWith('agent-') || !entry.endsWith('.json')) continue;
    const identity = JSON.parse(await text(join('identities', entry))) as { name?: string };
    if (identity.name === name) return entry.slice(0, -'.json'.length);
  }
  return undefined;
}

async function main(): Promise<void> {
  const fresh = !existsSync(join(DIR, 'nats/settings.json'));
  if (fresh) {
    const tls = names('VOLBACK_TLS_NAMES');
    volback(
      [
        'init',
        '--dir',
        DIR,
        ...['nats', ...tls].flatMap((n) => ['--nats-host', n]),
        ...['minio', ...tls].flatMap((n) => ['--minio-host', n]),
        // The store of the `nats-data` volume, where it has always been.
        '--nats-store-dir',
        '/data',
      ],
      // A repository password of before (`.env` of an older deployment) stays the password.
      { VOLBACK_PASSWORD: process.env['VOLBACK_PASSWORD'] ?? '' },
    );
    console.log(`wrote a new set-up into ${DIR}: keep a copy of it (above all repository-password)`);
  }

  const agentName = process.env['VOLBACK_AGENT_NAME'] || 'central';
  let agent = await agentIdentity(agentName);
  if (!agent) {
    const kept = join(AGENT_STATE, 'host-id');
    const hostId = existsSync(kept) ? (await readFile(kept, 'utf8')).trim() : '';
    volback(['init', 'agent', agentName, '--dir', DIR, ...(hostId ? ['--host-id', hostId] : [])]);
    agent = (await agentIdentity(agentName))!;
  }

  // NATS starts (or restarts, after an upgrade) after this: nothing to reload here.
  if (!fresh) volback(['init', 'nats-config', '--dir', DIR, '--no-reload']);

  const ca = `${await text('ca/ca.crt')}\n`;
  const seed = async (identity: string) => `${await text(`identities/${identity}.nk`)}\n`;
  // An S3 secret of `.env` (an older deployment, or another S3 store) wins over the generated one.
  const s3Secret = `${process.env['MINIO_ROOT_PASSWORD'] || (await text('minio-root-password'))}\n`;

  const pem = async (file: string) => `${await text(file)}\n`;
  await give('nats', ROOT, 'tls/nats.crt', await pem('tls/nats.crt'));
  await give('nats', ROOT, 'tls/nats.key', await pem('tls/nats.key'));
  await give('minio', ROOT, 'certs/public.crt', await pem('tls/minio.crt'));
  await give('minio', ROOT, 'certs/private.key', await pem('tls/minio.key'));
  await give('minio', ROOT, 'certs/CAs/ca.crt', ca);
  await give('minio', ROOT, 'root-password', s3Secret);
  await give('storage-gateway', NODE, 'nats.nk', await seed('gateway'));
  await give('storage-gateway', NODE, 'ca.crt', ca);
  await give('storage-gateway', NODE, 'repository-password', `${await text('repository-password')}\n`);
  await give('storage-gateway', NODE, 's3-secret-key', s3Secret);
  await give('scheduler', NODE, 'nats.nk', await seed('scheduler'));
  await give('scheduler', NODE, 'ca.crt', ca);
  await give('catalog', NODE, 'nats.nk', await seed('catalog'));
  await give('catalog', NODE, 'ca.crt', ca);
  await give('catalog', NODE, 'tokens.json', `${await text('catalog/tokens.json')}\n`);
  await give('agent', ROOT, 'nats.nk', await seed(agent));
  await give('agent', ROOT, 'agent.json', `${await text(`identities/${agent}.json`)}\n`);
  await give('agent', ROOT, 'ca.crt', ca);
  console.log(`each service's files are in ${join(DIR, 'mounts')} (agent identity ${agentName}: ${agent})`);
}

await main();
