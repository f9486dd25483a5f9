// What the command line needs of `volback init` before one of its commands runs (cli.ts,
// init-commands.ts); the rest (secrets-dir.ts) is loaded when one does.

/** A set-up that cannot be done as asked; nothing was changed (exit 1, with the code). */
export class InitError extends Error {
  override readonly name = 'InitError';
  readonly code = 'VOLBACK_INIT_FAILED';
}

/** Where `volback init` writes by default, relative to the working directory. */
export const DEFAULT_SECRETS_DIR = '.volback/secrets';
