/** What a redacted value is replaced with in log lines. */
export const REDACTED = '[REDACTED]';

/**
 * Keys whose values never reach a log line, wherever they sit (up to {@link REDACT_DEPTH} levels
 * deep). Matching is exact and case-sensitive, so the usual spellings are listed. `env` and `Env`
 * hide whole environments: a container's environment routinely carries database passwords.
 */
export const SECRET_KEYS: readonly string[] = [
  'password',
  'Password',
  'passwd',
  'passphrase',
  'secret',
  'Secret',
  'secretKey',
  'secretAccessKey',
  'SecretAccessKey',
  'token',
  'Token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'credentials',
  'Credentials',
  'privateKey',
  'masterKey',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'env',
  'Env',
  'RESTIC_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'MINIO_ROOT_PASSWORD',
  'headers["set-cookie"]',
  'headers["x-api-key"]',
];

/**
 * How many enclosing objects a secret key may sit under and still be found: pino's `*` wildcard
 * matches one level, so each key is also listed behind one, two and three wildcards.
 */
export const REDACT_DEPTH = 3;

/** pino `redact` paths for `keys`: each key at the top level and under up to `depth` wildcards. */
export function redactPaths(keys: readonly string[], depth = REDACT_DEPTH): string[] {
  const paths: string[] = [];
  for (let level = 0; level <= depth; level++) {
    const prefix = '*.'.repeat(level);
    for (const key of keys) paths.push(prefix + key);
  }
  return paths;
}

/** Replaces the user-info part of URLs (`nats://user:pass@host`) so credentials in messages stay hidden. */
export function stripUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, `$1${REDACTED}@`);
}
