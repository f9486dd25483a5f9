// What every catalog command shares: the catalog reached through the global options, the exit
// codes, and a failure told in the CLI's words.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { withCliNames } from './api-fields.ts';
import { CatalogClient, CatalogRequestError } from './catalog-client.ts';
import { createOutput, type Output } from './output.ts';
import { UsageError } from './usage-error.ts';

/** Exit codes of the catalog commands. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  partial: 3,
  failed: 4,
  notFound: 5,
  notAllowed: 6,
  unreachable: 7,
  conflict: 8,
} as const;

/** Exit code of a failed call. */
export function exitCodeOf(error: CatalogRequestError): number {
  if (error.status === 404) return EXIT.notFound;
  if (error.status === 401 || error.status === 403) return EXIT.notAllowed;
  if (error.status === 0 || error.status === 503) return EXIT.unreachable;
  if (error.status === 409) return EXIT.conflict;
  if (error.status === 400) return EXIT.usage;
  return EXIT.error;
}

/** What every catalog command works with. */
export interface CatalogContext {
  readonly client: CatalogClient;
  readonly out: Output;
  readonly json: boolean;
}

/**
 * The API token: `--token`, else `VOLBACK_TOKEN`, else the content of `VOLBACK_TOKEN_FILE` (what
 * `volback init` writes as `catalog/admin.token`), so that it need not sit in the environment.
 */
function apiToken(flag: string | undefined): string | undefined {
  const given = flag ?? process.env['VOLBACK_TOKEN'];
  if (given) return given;
  const file = process.env['VOLBACK_TOKEN_FILE']?.trim();
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `VOLBACK_TOKEN_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token))
    throw new UsageError(`VOLBACK_TOKEN_FILE: ${file} does not hold one token`);
  return token;
}

/** The global options (`--catalog`, `--token`, `--json`, `--timeout`) as a context. */
export function catalogContext(command: Command): CatalogContext {
  const o = command.optsWithGlobals<{ catalog?: string; token?: string; json?: boolean; timeout?: string }>();
  const timeout = o.timeout === undefined ? 30 : Number(o.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new UsageError('--timeout: a number of seconds above 0');
  return {
    client: new CatalogClient({
      url: o.catalog ?? process.env['VOLBACK_CATALOG_URL'] ?? 'http://127.0.0.1:8080',
      token: apiToken(o.token),
      timeoutMs: timeout * 1000,
    }),
    out: createOutput(Boolean(o.json)),
    json: Boolean(o.json),
  };
}

/** Maps a failure of a catalog command to its exit code and message, in the CLI's words. */
export function catalogFailure(error: unknown): { code: number; error: Error & { code?: string } } {
  if (error instanceof CatalogRequestError) {
    const told = withCliNames(error);
    return { code: exitCodeOf(error), error: told };
  }
  return { code: EXIT.error, error: error as Error & { code?: string } };
}
