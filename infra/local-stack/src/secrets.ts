// The local stack's secrets: `volback init` into `<dataDir>/secrets` on the first start (later
// starts reuse them), an agent identity for the local Docker host, and the files each service
// is given (paths only: no secret goes into an environment variable or a command line).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config.ts';

/** `volback init` failed: the stack has no secrets to start with; its output says why. */
export class InitFailedError extends Error {
  override readonly name = 'InitFailedError';
  readonly code = 'VOLBACK_INIT_FAILED';
}

const CLI = fileURLToPath(new URL('../../../tools/cli/src/main.ts', import.meta.url));

/** The few log calls this module makes. */
interface SecretsLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Where the stack's secrets are, by what needs them. */
export interface StackSecrets {
  readonly dir: string;
  readonly natsConfig: string;
  readonly caFile: string;
  readonly repositoryPassword: string;
  readonly catalogTokens: string;
  readonly adminToken: string;
  /** The nkey seed file of an identity: `admin`, `scheduler`, `catalog`, `gateway`, `agent-<id>`. */
  seed(identity: string): string;
  /** The local Docker host's agent identity (its seed; the `.json` beside it holds the host id). */
  readonly agentSeed: string | undefined;
}

async function runInit(args: string[], env: NodeJS.ProcessEnv, log: SecretsLogger): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'init', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new InitFailedError(`volback init ${args[0] ?? ''} failed: ${output.trim()}`);
  log.info({ command: `volback init ${args.join(' ')}` }, output.trim().split('\n')[0]);
}

async function agentIdentities(identities: string): Promise<string[]> {
  return (await readdir(identities)).filter((f) => f.startsWith('agent-') && f.endsWith('.json'));
}

/**
 * The stack's secrets in `<dataDir>/secrets`, written by `volback init` when missing. The
 * repository password of a stack from before (`<dataDir>/repository-password`) or
 * `VOLBACK_PASSWORD` becomes the set-up's; the agent identity keeps the host id the local agent
 * already has (`<dataDir>/agent/host-id`).
 */
export async function stackSecrets(
  dataDir: string,
  password: string | undefined,
  withAgent: boolean,
  log: SecretsLogger,
): Promise<StackSecrets> {
  const dir = join(dataDir, 'secrets');
  const identities = join(dir, 'identities');
  const passwordFile = join(dir, 'repository-password');
  const env: NodeJS.ProcessEnv = { ...process.env, VOLBACK_PASSWORD: '' };
  if (!existsSync(join(dir, 'nats/nats-server.conf'))) {
    const legacy = join(dataDir, 'repository-password');
    const kept = existsSync(legacy) ? (await readFile(legacy, 'utf8')).trim() : password;
    await runInit(
      [
        ...['--dir', dir, '--nats-listen', '127.0.0.1:4222', '--nats-server-name', 'volback-local'],
        ...['--nats-store-dir', join(dataDir, 'nats/jetstream')],
      ],
      // The password goes to init through its environment, never its arguments.
      { ...env, VOLBACK_PASSWORD: kept ?? '' },
      log,
    );
    log.warn(
      { dir },
      kept
        ? 'wrote the stack secrets (the repository password is the one this stack had)'
        : 'wrote the stack secrets: keep a copy of repository-password somewhere safe, without it no backup can be read',
    );
  } else {
    if (password !== undefined && (await readFile(passwordFile, 'utf8')).trim() !== password) {
      throw new ConfigError(
        'VOLBACK_PASSWORD',
        `differs from the repository password in ${passwordFile}: unset it (the file is used)`,
      );
    }
    // A set-up of an earlier version lacks the permissions of newer operations; NATS starts after this.
    await runInit(['nats-config', '--dir', dir, '--no-reload'], env, log);
  }
  let agentSeed: string | undefined;
  if (withAgent) {
    let agents = await agentIdentities(identities);
    if (agents.length === 0) {
      const hostIdFile = join(dataDir, 'agent/host-id');
      const hostId = existsSync(hostIdFile) ? (await readFile(hostIdFile, 'utf8')).trim() : undefined;
      await runInit(
        ['agent', hostname() || 'local', '--dir', dir, ...(hostId ? ['--host-id', hostId] : [])],
        env,
        log,
      );
      agents = await agentIdentities(identities);
    }
    agentSeed = join(identities, agents[0]!.replace(/\.json$/, '.nk'));
  }
  return {
    dir,
    natsConfig: join(dir, 'nats/nats-server.conf'),
    caFile: join(dir, 'ca/ca.crt'),
    repositoryPassword: passwordFile,
    catalogTokens: join(dir, 'catalog/tokens.json'),
    adminToken: join(dir, 'catalog/admin.token'),
    seed: (identity) => join(identities, `${identity}.nk`),
    agentSeed,
  };
}

/** The environment that gives a service its NATS identity. */
export function natsIdentityEnv(secrets: StackSecrets, seedFile: string): Record<string, string> {
  return { VOLBACK_NATS_NKEY_FILE: seedFile, VOLBACK_NATS_CA_FILE: secrets.caFile, VOLBACK_NATS_CREDS: '' };
}
