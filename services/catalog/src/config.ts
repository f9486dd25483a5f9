import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { NatsAuthFiles } from '@volback/messaging';
import { envReader, type EnvReader } from '@volback/runtime';
import { ConfigError } from './errors.ts';
import { accessToken, parseTokensFile, type AccessToken } from './http/tokens.ts';

/** The catalog's settings (README, "Configuration"). */
export interface CatalogConfig {
  readonly dataDir: string;
  /** `<dataDir>/catalog.sqlite` unless `VOLBACK_CATALOG_DB` says otherwise. */
  readonly databaseFile: string;
  /** This replica's id (durable consumer `catalog-<id>`); generated and kept in the data dir when absent. */
  readonly instanceId?: string;
  readonly host: string;
  readonly port: number;
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file (never the secrets themselves). */
  readonly natsAuth: NatsAuthFiles;
  readonly streamReplicas: number;
  /** Env tokens and the tokens file's, as hashes (the plain tokens are not kept). */
  readonly tokens: readonly AccessToken[];
  /** 127.0.0.1 and ::1 read without a token (write too while no write token exists). */
  readonly trustLoopback: boolean;
  /** `Host` names accepted besides localhost, 127.0.0.1, [::1] and the bind address. */
  readonly allowedHosts: readonly string[];
  /** Serve HTTPS with these PEM files. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly rebuild: boolean;
  readonly opsHost: string;
  readonly opsPort: number;
  readonly dataTimeoutSeconds: number;
}

export const CONFIG_DEFAULTS = {
  dataDir: './.volback',
  host: '127.0.0.1',
  port: 8080,
  natsUrl: 'nats://127.0.0.1:4222',
  opsHost: '127.0.0.1',
  opsPort: 9403,
  dataTimeoutSeconds: 15,
} as const;

function token(read: EnvReader, name: string): string | undefined {
  const raw = read.value(name);
  if (raw === undefined) return undefined;
  if (raw.length < 16 || /\s/.test(raw))
    throw new ConfigError(name, 'a token has at least 16 characters and no spaces');
  return raw;
}

/** True for `localhost` and loopback addresses (127.0.0.0/8, ::1). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1';
  return false;
}

function tokensFile(read: EnvReader, cwd: string): AccessToken[] {
  const raw = read.value('VOLBACK_CATALOG_TOKENS_FILE');
  if (raw === undefined) return [];
  const file = resolve(cwd, raw);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      'VOLBACK_CATALOG_TOKENS_FILE',
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    return parseTokensFile(text);
  } catch (error) {
    throw new ConfigError('VOLBACK_CATALOG_TOKENS_FILE', `${file}: ${(error as Error).message}`);
  }
}

function allowedHosts(read: EnvReader): string[] {
  const names = (read.value('VOLBACK_CATALOG_ALLOWED_HOSTS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const name of names) {
    const bare = name.replace(/^\[(.*)\]$/, '$1');
    if (
      isIP(bare) === 0 &&
      !/^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(bare)
    ) {
      throw new ConfigError(
        'VOLBACK_CATALOG_ALLOWED_HOSTS',
        `${JSON.stringify(name)} is not a host name or address (no port, no scheme)`,
      );
    }
  }
  return names;
}

/** Reads the configuration; throws {@link ConfigError} naming the variable at fault. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = [],
  cwd = process.cwd(),
): CatalogConfig {
  const read = envReader(env, cwd, ConfigError);
  for (const arg of argv)
    if (arg !== '--rebuild')
      throw new ConfigError('argv', `unknown argument ${JSON.stringify(arg)} (only --rebuild)`);
  const dataDir = resolve(cwd, read.value('VOLBACK_DATA_DIR') ?? CONFIG_DEFAULTS.dataDir);
  const { natsServers, natsAuth } = read.nats();
  const readToken = token(read, 'VOLBACK_CATALOG_READ_TOKEN');
  const writeToken = token(read, 'VOLBACK_CATALOG_WRITE_TOKEN');
  if (readToken && readToken === writeToken) {
    throw new ConfigError('VOLBACK_CATALOG_READ_TOKEN', 'must differ from the write token');
  }
  const tokens = [
    ...(readToken ? [accessToken('VOLBACK_CATALOG_READ_TOKEN', 'read', readToken)] : []),
    ...(writeToken ? [accessToken('VOLBACK_CATALOG_WRITE_TOKEN', 'write', writeToken)] : []),
    ...tokensFile(read, cwd),
  ];
  const hasWrite = tokens.some((t) => t.scope === 'write');
  if (tokens.length > 0 && !hasWrite) {
    throw new ConfigError(
      'VOLBACK_CATALOG_WRITE_TOKEN',
      'read tokens alone would leave commands open from this machine: set a write token too (env or VOLBACK_CATALOG_TOKENS_FILE)',
    );
  }
  const host = read.value('VOLBACK_CATALOG_HOST') ?? CONFIG_DEFAULTS.host;
  if (!hasWrite && !isLoopback(host)) {
    throw new ConfigError(
      'VOLBACK_CATALOG_HOST',
      `${JSON.stringify(host)} is not a loopback address: without a write token (VOLBACK_CATALOG_WRITE_TOKEN or VOLBACK_CATALOG_TOKENS_FILE) the API binds to loopback only`,
    );
  }
  const trustLoopback = read.flag('VOLBACK_CATALOG_TRUST_LOOPBACK', true);
  if (!trustLoopback && !hasWrite) {
    throw new ConfigError(
      'VOLBACK_CATALOG_TRUST_LOOPBACK',
      'false needs a write token (VOLBACK_CATALOG_WRITE_TOKEN or VOLBACK_CATALOG_TOKENS_FILE): else no one could send a command',
    );
  }
  const certFile = read.value('VOLBACK_CATALOG_TLS_CERT_FILE');
  const keyFile = read.value('VOLBACK_CATALOG_TLS_KEY_FILE');
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new ConfigError(
      certFile ? 'VOLBACK_CATALOG_TLS_KEY_FILE' : 'VOLBACK_CATALOG_TLS_CERT_FILE',
      'HTTPS needs both VOLBACK_CATALOG_TLS_CERT_FILE and VOLBACK_CATALOG_TLS_KEY_FILE',
    );
  }
  const instanceId = read.value('VOLBACK_CATALOG_ID');
  if (instanceId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(instanceId)) {
    throw new ConfigError('VOLBACK_CATALOG_ID', 'letters, digits, - and _, at most 64');
  }
  return {
    dataDir,
    databaseFile: resolve(cwd, read.value('VOLBACK_CATALOG_DB') ?? resolve(dataDir, 'catalog.sqlite')),
    ...(instanceId ? { instanceId } : {}),
    host,
    port: read.integer('VOLBACK_CATALOG_PORT', CONFIG_DEFAULTS.port, 0, 65_535),
    natsServers,
    natsAuth,
    streamReplicas: read.integer('VOLBACK_STREAM_REPLICAS', 1, 1, 5),
    tokens,
    trustLoopback,
    allowedHosts: allowedHosts(read),
    ...(certFile && keyFile
      ? { tls: { certFile: resolve(cwd, certFile), keyFile: resolve(cwd, keyFile) } }
      : {}),
    rebuild: argv.includes('--rebuild') || read.flag('VOLBACK_CATALOG_REBUILD'),
    opsHost: read.value('VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: read.integer('VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    dataTimeoutSeconds: read.integer(
      'VOLBACK_DATA_TIMEOUT_SECONDS',
      CONFIG_DEFAULTS.dataTimeoutSeconds,
      1,
      600,
    ),
  };
}

/** The certificate and key of {@link CatalogConfig.tls}, read at start; a missing file names its variable. */
export function readTlsFiles(tls: NonNullable<CatalogConfig['tls']>): { cert: Buffer; key: Buffer } {
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(
        variable,
        `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  return {
    cert: read('VOLBACK_CATALOG_TLS_CERT_FILE', tls.certFile),
    key: read('VOLBACK_CATALOG_TLS_KEY_FILE', tls.keyFile),
  };
}
