// `volback`: the command line, on commander (per-command help, "did you mean" suggestions, shell
// completion). The standalone repository mode (`volback repo …`) opens a repository itself;
// every other command talks to the catalog over HTTP (catalog-commands.ts).
import { Argument, Command, CommanderError } from 'commander';
import { RepositoryError, RepositoryErrorCode } from '@volback/repository';
import { registerCatalogCommands, type Runner } from './catalog-commands.ts';
import { registerNotifyCommands } from './notify-commands.ts';
import { catalogContext, catalogFailure, EXIT } from './catalog-context.ts';
import { completionScript, SHELLS, type Shell } from './completion.ts';
import { InitError } from './init/init-error.ts';
import { registerInitCommands } from './init/init-commands.ts';
import { createOutput, quietOnClosedStdout } from './output.ts';
import { registerRepoCommands, repoFlagsOf } from './repo-commands.ts';
import { UsageError } from './usage-error.ts';

/** Exit codes of the `repo` mode by error code (restic's numbers where restic has one). */
const REPO_EXIT_CODES: Partial<Record<string, number>> = {
  [RepositoryErrorCode.NotARepository]: 10,
  [RepositoryErrorCode.Locked]: 11,
  [RepositoryErrorCode.WrongPassword]: 12,
};

const EPILOG = `
Environment: VOLBACK_CATALOG_URL (default http://127.0.0.1:8080), VOLBACK_TOKEN or VOLBACK_TOKEN_FILE; for repo:
VOLBACK_REPOSITORY, VOLBACK_PASSWORD (or RESTIC_PASSWORD), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
Exit codes: 0 ok, 1 error, 2 usage, 3 partial, 4 backup/restore/maintenance failed, 5 not found,
6 not allowed (token), 7 catalog not answering, 8 conflict; repo: 10 no repository, 11 locked,
12 wrong password.
Shell completion: source <(volback completion bash)  (zsh alike; fish: volback completion fish | source)`;

/**
 * Writes an error: a line on stderr (the catalog commands add the error code, as they always
 * did; the repo mode prints restic-like messages alone), and a JSON document with --json.
 */
function report(error: Error & { code?: string }, json: boolean, withCode: boolean): void {
  if (json)
    process.stdout.write(
      `${JSON.stringify({ error: { code: error.code ?? 'VOLBACK_ERROR', message: error.message } })}\n`,
    );
  process.stderr.write(`volback: ${error.message}${withCode && error.code ? ` (${error.code})` : ''}\n`);
}

/** A command's name as typed (`volback policies set`), for messages. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The `volback` program: every command, its options and help. `setExit` receives the exit code. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('volback')
    .description(
      'backs up and restores Docker volumes: commands over the catalog API, and a standalone repo mode',
    )
    .option('--catalog <url>', 'the catalog API (VOLBACK_CATALOG_URL, default http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (VOLBACK_TOKEN, or a file: VOLBACK_TOKEN_FILE)')
    .option('--json', 'machine-readable output (progress as JSON lines on stderr)')
    .option('--timeout <seconds>', 'longest wait for the catalog to answer (30)')
    .addHelpText('after', EPILOG)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true)
    .showHelpAfterError('(see volback --help)')
    .exitOverride();

  const usageError = (command: Command, error: UsageError) => {
    process.stderr.write(`${commandPath(command)}: ${error.message}\n(see ${commandPath(command)} --help)\n`);
    setExit(EXIT.usage);
  };

  const runCatalog: Runner = async (command, body) => {
    const json = Boolean(command.optsWithGlobals<{ json?: boolean }>().json);
    try {
      setExit(await body(catalogContext(command)));
    } catch (error) {
      if (error instanceof UsageError) return usageError(command, error);
      const failure = catalogFailure(error);
      report(failure.error, json, true);
      setExit(failure.code);
    }
  };
  registerCatalogCommands(program, runCatalog);
  registerNotifyCommands(program, runCatalog);

  registerRepoCommands(
    program,
    async (command, body) => {
      const flags = repoFlagsOf(command);
      try {
        setExit(await body(flags));
      } catch (error) {
        if (error instanceof UsageError) return usageError(command, error);
        const err = error as Error & { code?: string };
        report(err, Boolean(flags.json), false);
        setExit(
          error instanceof RepositoryError || err.code
            ? (REPO_EXIT_CODES[err.code ?? ''] ?? EXIT.error)
            : EXIT.error,
        );
      }
    },
    (json) => createOutput(json),
  );

  registerInitCommands(program, async (command, body) => {
    try {
      await body();
      setExit(EXIT.ok);
    } catch (error) {
      if (error instanceof UsageError) return usageError(command, error);
      const err = error as Error & { code?: string };
      report(err, false, error instanceof InitError);
      setExit(EXIT.error);
    }
  });

  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices([...SHELLS]))
    .addHelpText(
      'after',
      '\nbash: source <(volback completion bash)    (or into ~/.bashrc)\nzsh:  source <(volback completion zsh)\nfish: volback completion fish | source      (or > ~/.config/fish/completions/volback.fish)',
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
      setExit(EXIT.ok);
    });

  // Every command inherits the program's error handling: exit codes instead of process.exit.
  const configure = (command: Command) => {
    command
      .exitOverride()
      .showSuggestionAfterError(true)
      .showHelpAfterError(`(see ${commandPath(command)} --help)`);
    for (const sub of command.commands) configure(sub);
  };
  for (const sub of program.commands) configure(sub);
  return program;
}

/** Runs the command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  quietOnClosedStdout();
  let code = EXIT.ok as number;
  const program = buildProgram((c) => (code = c));
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every parse error is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw error;
  }
  return code;
}

process.exitCode = await main(process.argv.slice(2));
