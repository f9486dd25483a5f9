import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MessagingError, MessagingErrorCode } from './errors.ts';

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
  /** Credentials file for per-service permissions (DESIGN.md §7). */
  credsFile?: string;
  token?: string;
  user?: string;
  pass?: string;
}

/**
 * Connects to NATS, retrying the first connection until `connectTimeoutMs`, and reconnecting
 * forever after that. Connection state changes are logged.
 */
export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  const deadline = options.connectTimeoutMs === undefined ? Infinity : Date.now() + options.connectTimeoutMs;
  let attempt = 0;
  let authenticator;
  if (options.credsFile) {
    const { credsAuthenticator } = await import('@nats-io/transport-node');
    const { readFile } = await import('node:fs/promises');
    authenticator = credsAuthenticator(await readFile(options.credsFile));
  }
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
        ...(authenticator ? { authenticator } : {}),
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
      options.logger?.warn(
        { attempt, err: (cause as Error).message, retryInMs: wait },
        'NATS not reachable yet',
      );
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
