/** The log calls a shutdown makes; a pino logger fits. */
interface ShutdownLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A process's graceful shutdown, armed by {@link onShutdownSignals}. */
export interface Shutdown {
  /** True once a signal arrived: start-up code should stop where it is. */
  readonly stopping: boolean;
}

/**
 * Runs `stop` once on the first SIGTERM or SIGINT, then exits 0. A second signal exits 1 at once,
 * and so does a stop that takes longer than `timeoutMs` (a stuck dependency must not keep an
 * orchestrator waiting forever).
 */
export function onShutdownSignals(options: {
  readonly logger: ShutdownLogger;
  readonly timeoutMs: number;
  readonly stop: () => Promise<void>;
}): Shutdown {
  const state = { stopping: false };
  const handle = async (signal: NodeJS.Signals) => {
    const log = options.logger;
    if (state.stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    state.stopping = true;
    log.info({ signal }, 'stopping');
    setTimeout(() => {
      log.error({ timeoutMs: options.timeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, options.timeoutMs).unref();
    try {
      await options.stop();
    } catch (error) {
      log.error({ err: (error as Error).message }, 'shutdown failed');
      process.exit(1);
    }
    log.info({}, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void handle(signal));
  process.on('SIGINT', (signal) => void handle(signal));
  return state;
}
