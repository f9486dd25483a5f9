import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { NatsAuthFiles } from '@volback/messaging';

/**
 * How a service reports a variable it cannot use: its own `ConfigError` (with its own error code),
 * whose message starts with the variable's name.
 */
export type ConfigErrorClass = new (variable: string, message: string, options?: ErrorOptions) => Error;

/** The settings every service reads to reach NATS. */
export interface NatsSettings {
  /** `VOLBACK_NATS_URL`, comma-separated: one or more `nats://host:port` URLs. */
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file. */
  readonly natsAuth: NatsAuthFiles;
}

/** The NATS every service uses when `VOLBACK_NATS_URL` is not set. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** Reads a service's environment; every parser throws the service's {@link ConfigErrorClass}. */
export interface EnvReader {
  /** The trimmed value, or undefined when unset or blank. */
  value(name: string): string | undefined;
  /** A whole number from `min` to `max`; `fallback` when unset. */
  integer(name: string, fallback: number, min: number, max: number): number;
  /** A number from 0 to 1; `fallback` when unset. */
  fraction(name: string, fallback: number): number;
  /** `1/true/yes` or `0/false/no` (any case); `fallback` when unset. */
  flag(name: string, fallback?: boolean): boolean;
  /** A path, resolved against the working directory; undefined when unset. */
  path(name: string): string | undefined;
  /**
   * A secret from `<name>` or from the file `<name>_FILE` names (not both); one trailing newline
   * is the file's, not the secret's. Undefined when neither is set. Messages never hold it.
   */
  secret(name: string): string | undefined;
  /** `VOLBACK_NATS_URL` and the NATS identity files (`VOLBACK_NATS_NKEY_FILE`, `_CA_FILE`, `_CREDS`). */
  nats(): NatsSettings;
}

/** An {@link EnvReader} over `env`, resolving paths against `cwd`. */
export function envReader(env: NodeJS.ProcessEnv, cwd: string, ConfigError: ConfigErrorClass): EnvReader {
  const value = (name: string): string | undefined => {
    const raw = env[name]?.trim();
    return raw === undefined || raw === '' ? undefined : raw;
  };
  const reader: EnvReader = {
    value,
    integer(name, fallback, min, max) {
      const raw = value(name);
      if (raw === undefined) return fallback;
      const parsed = Number(raw);
      if (!/^\d+$/.test(raw) || parsed < min || parsed > max) {
        throw new ConfigError(name, `${JSON.stringify(raw)} is not a whole number from ${min} to ${max}`);
      }
      return parsed;
    },
    fraction(name, fallback) {
      const raw = value(name);
      if (raw === undefined) return fallback;
      const parsed = Number(raw);
      if (!/^\d*\.?\d+$/.test(raw) || parsed < 0 || parsed > 1) {
        throw new ConfigError(name, `${JSON.stringify(raw)} is not a number from 0 to 1`);
      }
      return parsed;
    },
    flag(name, fallback = false) {
      const raw = value(name)?.toLowerCase();
      if (raw === undefined) return fallback;
      if (raw === '1' || raw === 'true' || raw === 'yes') return true;
      if (raw === '0' || raw === 'false' || raw === 'no') return false;
      throw new ConfigError(name, `${JSON.stringify(env[name])} is not 1/true/yes or 0/false/no`);
    },
    path(name) {
      const raw = value(name);
      if (raw === undefined) return undefined;
      return isAbsolute(raw) ? raw : resolve(cwd, raw);
    },
    secret(name) {
      const fileVariable = `${name}_FILE`;
      const file = value(fileVariable);
      // The secret itself is taken as given (spaces may be part of it).
      const direct = env[name];
      if (file !== undefined && direct) {
        throw new ConfigError(fileVariable, `set either ${name} or ${fileVariable}, not both`);
      }
      if (file === undefined) return direct || undefined;
      let text: string;
      try {
        text = readFileSync(resolve(cwd, file), 'utf8');
      } catch (cause) {
        throw new ConfigError(
          fileVariable,
          `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
      // As restic's --password-file.
      const secret = text.replace(/\r?\n$/, '');
      if (secret === '') throw new ConfigError(fileVariable, `${file} is empty`);
      return secret;
    },
    nats() {
      const natsServers = (value('VOLBACK_NATS_URL') ?? DEFAULT_NATS_URL)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const server of natsServers) {
        if (!/^(nats|tls|wss?):\/\/\S+$/.test(server)) {
          throw new ConfigError(
            'VOLBACK_NATS_URL',
            `${JSON.stringify(server)} is not a nats://host:port URL`,
          );
        }
      }
      const credsFile = reader.path('VOLBACK_NATS_CREDS');
      const nkeyFile = reader.path('VOLBACK_NATS_NKEY_FILE');
      const caFile = reader.path('VOLBACK_NATS_CA_FILE');
      return {
        natsServers,
        natsAuth: {
          ...(credsFile ? { credsFile } : {}),
          ...(nkeyFile ? { nkeyFile } : {}),
          ...(caFile ? { caFile } : {}),
        },
      };
    },
  };
  return reader;
}
