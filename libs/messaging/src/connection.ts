import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { MessagingError, MessagingErrorCode } from './errors.ts';
import { avoidLargeMessageCopies } from './large-messages.ts';

avoidLargeMessageCopies();

/** The few log calls this library makes; a pino logger fits. */
export interface MessagingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of {@link connectNats}. */
export interface ConnectOptions {
  /** One or more `nats://host:port` URLs. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring, e.g. `volback-agent-<host>`. */
  name: string;
  logger?: MessagingLogger;
  /** Give up the first connection after this long (default: keep trying forever). */
  connectTimeoutMs?: number;
  /** Credentials file (a user JWT and its seed) of a decentralised-auth NATS deployment. */
  credsFile?: string;
  /**
   * File holding this identity's nkey seed (`volback init` writes one per identity). Read again
   * at every (re)connect, so a rotated seed needs no restart.
   */
  nkeyFile?: string;
  /** CA certificate (PEM) that signed the server's certificate: the connection requires TLS. */
  caFile?: string;
  /**
   * Reply subjects under this prefix instead of `_INBOX` (`inboxPrefix(identity)` of
   * @volback/contracts): the server lets each identity subscribe to its own inboxes only.
   */
  inboxPrefix?: string;
  token?: string;
  user?: string;
  pass?: string;
}

/** The secret files of a NATS identity, as paths (never the secrets themselves: no env, no argv). */
export interface NatsAuthFiles {
  readonly credsFile?: string;
  readonly nkeyFile?: string;
  readonly caFile?: string;
}

function readSecretFile(file: string, what: string): Uint8Array {
  try {
    const bytes = readFileSync(file);
    const text = bytes.toString('utf8').trim();
    if (text === '') throw new Error('the file is empty');
    return new TextEncoder().encode(text);
  } catch (cause) {
    throw new MessagingError(
      MessagingErrorCode.ConnectFailed,
      `cannot read the ${what} file ${file}: ${(cause as Error).message}`,
      { cause },
    );
  }
}

async function authOptions(options: ConnectOptions): Promise<object> {
  if (options.credsFile && options.nkeyFile) {
    throw new MessagingError(
      MessagingErrorCode.ConnectFailed,
      'give either a credentials file or an nkey seed file, not both',
    );
  }
  if (options.credsFile) {
    return { authenticator: credsAuthenticator(readSecretFile(options.credsFile, 'NATS credentials')) };
  }
  if (options.nkeyFile) {
    const file = options.nkeyFile;
    // Fails now (clear error at start) rather than on the first connect attempt.
    readSecretFile(file, 'NATS nkey seed');
    return { authenticator: nkeyAuthenticator(() => readSecretFile(file, 'NATS nkey seed')) };
  }
  return {};
}

async function tlsOptions(options: ConnectOptions): Promise<object> {
  if (!options.caFile) return {};
  try {
    await readFile(options.caFile);
  } catch (cause) {
    throw new MessagingError(
      MessagingErrorCode.ConnectFailed,
      `cannot read the NATS CA file ${options.caFile}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return { tls: { caFile: options.caFile } };
}

/**
 * Connects to NATS, retrying the first connection until `connectTimeoutMs`, and reconnecting
 * forever after that. Connection state changes are logged.
 */
export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  const deadline = options.connectTimeoutMs === undefined ? Infinity : Date.now() + options.connectTimeoutMs;
  let attempt = 0;
  const auth = await authOptions(options);
  const tls = await tlsOptions(options);
  for (;;) {
    attempt++;
    try {
      const nc = await connect({
        servers: options.servers,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 5_000,
        // The client otherwise builds an Error with a stack trace for every request, in case it
        // times out: a third of a second per 256 MiB sent over the data path. Our errors name the
        // subject and operation themselves.
        noAsyncTraces: true,
        ...auth,
        ...tls,
        ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
        ...(options.token ? { token: options.token } : {}),
        ...(options.user ? { user: options.user, pass: options.pass ?? '' } : {}),
      });
      options.logger?.info({ server: nc.getServer(), attempt }, 'connected to NATS');
      void watchStatus(nc, options.logger);
      return nc;
    } catch (cause) {
      const wait = Math.min(5_000, 200 * 2 ** Math.min(attempt, 5));
      if (Date.now() + wait > deadline) {
        throw new MessagingError(
          MessagingErrorCode.ConnectFailed,
          `could not connect to NATS at ${String(options.servers)} after ${attempt} attempts: ${(cause as Error).message}`,
          { cause },
        );
      }
      const message = (cause as Error).message;
      if (/authorization violation|authentication/i.test(message)) {
        // Reachable, but this identity is not (or no longer) in the server's config.
        options.logger?.error(
          { attempt, err: message, nkeyFile: options.nkeyFile, retryInMs: wait },
          'NATS refused this identity: its key is unknown there (not added yet, rotated or revoked)',
        );
      } else {
        options.logger?.warn({ attempt, err: message, retryInMs: wait }, 'NATS not reachable yet');
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

async function watchStatus(nc: NatsConnection, logger: MessagingLogger | undefined): Promise<void> {
  if (!logger) return;
  for await (const status of nc.status()) {
    if (status.type === 'disconnect') logger.warn({ server: status.server }, 'NATS disconnected');
    else if (status.type === 'reconnect') logger.info({ server: status.server }, 'NATS reconnected');
    else if (status.type === 'error') logger.error({ err: String(status.error) }, 'NATS error');
  }
}

/**
 * Graceful shutdown: drain (finish in-flight handlers, flush publishes) and wait until closed;
 * closes hard when draining takes longer than `timeoutMs`.
 */
export async function drainNats(nc: NatsConnection, timeoutMs = 10_000): Promise<void> {
  if (nc.isClosed()) return;
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
  const drained = nc.isDraining()
    ? nc.closed().then(() => 'ok' as const)
    : nc.drain().then(() => 'ok' as const);
  if ((await Promise.race([drained, timer])) === 'timeout') await nc.close();
}
