import { hostname } from 'node:os';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import { REDACTED, SECRET_KEYS, redactPaths } from './redaction.ts';

export type { Logger } from 'pino';

/** A level name a logger accepts; `silent` turns logging off. */
export type LogLevel = LevelWithSilent;

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Name of the service, written into every line as `service`. */
  readonly service: string;
  /** Lowest level written; else `LOG_LEVEL` from the environment; else `info`. */
  readonly level?: LogLevel;
  /**
   * Human-readable lines instead of JSON; else `VOLBACK_LOG_PRETTY` (`1`/`true` or `0`/`false`);
   * else pretty exactly when stdout is a terminal.
   */
  readonly pretty?: boolean;
  /** More keys or pino paths to hide, on top of {@link SECRET_KEYS} and found at the same depths. */
  readonly redact?: readonly string[];
  /** Where lines go; stdout when omitted. Tests pass a stream that collects them. */
  readonly destination?: DestinationStream;
  /** Environment to read `LOG_LEVEL` and `VOLBACK_LOG_PRETTY` from; `process.env` when omitted. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Error raised when the configured log level is not one pino knows. */
export class InvalidLogLevelError extends Error {
  override readonly name = 'InvalidLogLevelError';
  readonly code = 'VOLBACK_INVALID_LOG_LEVEL';
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

function resolveLevel(option: LogLevel | undefined, env: NodeJS.ProcessEnv): LogLevel {
  const level = option ?? env['LOG_LEVEL']?.trim().toLowerCase();
  if (level === undefined || level === '') return 'info';
  if (!isLogLevel(level))
    throw new InvalidLogLevelError(
      `log level ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(', ')}`,
    );
  return level;
}

function resolvePretty(option: boolean | undefined, env: NodeJS.ProcessEnv, toStdout: boolean): boolean {
  if (option !== undefined) return option;
  const flag = env['VOLBACK_LOG_PRETTY']?.trim().toLowerCase();
  if (flag === '1' || flag === 'true') return true;
  if (flag === '0' || flag === 'false') return false;
  return toStdout && process.stdout.isTTY === true;
}

/**
 * Creates the process's root logger: one JSON object per line with `service`, `hostname`, `pid`,
 * an ISO `time` and the level as a word; pretty-printed (one line each) for people at a terminal. Secrets listed
 * in {@link SECRET_KEYS} are replaced by `[REDACTED]` in log objects and in child bindings alike,
 * before any output is formatted. Give components a child: `logger.child({ component: 'x' })`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const env = options.env ?? process.env;
  const level = resolveLevel(options.level, env);
  const pretty = resolvePretty(options.pretty, env, options.destination === undefined);
  const destination: DestinationStream | undefined = pretty
    ? pinoPretty({
        destination: options.destination ?? 1,
        colorize: options.destination === undefined && process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        // One line per entry: the fields follow the message instead of one line each.
        singleLine: true,
        sync: true,
      })
    : options.destination;
  const config = {
    level,
    base: { service: options.service, hostname: hostname(), pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: redactPaths([...SECRET_KEYS, ...(options.redact ?? [])]), censor: REDACTED },
  };
  return destination === undefined ? pino(config) : pino(config, destination);
}
