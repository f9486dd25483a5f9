// `volback`: the command line. The standalone repository mode (`volback repo …`) opens a
// repository itself; every other command talks to the catalog over HTTP (catalog-commands.ts).
import { parseArgs } from 'node:util';
import { RepositoryError, RepositoryErrorCode } from '@volback/repository';
import { CATALOG_COMMANDS, CATALOG_USAGE, runCatalogCommand } from './catalog-commands.ts';
import { createOutput } from './output.ts';
import { runRepoCommand, type RepoFlags } from './repo-commands.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `usage: volback repo <command> --repo <path|s3:http://host:port/bucket[/prefix]> [options]

commands:
  init                                   create a repository (restic format v2)
  backup <dir> [--tag t] [--host h] [--parent id]
  snapshots                              list snapshots
  ls <snapshot> [path]                   list files of a snapshot
  restore <snapshot> --target <dir> [--path p]
  dump <snapshot> [path] > file.tar      a snapshot sub-tree as a tar stream
  check [--read-data | --read-data-subset 10%]
  forget [--keep-last n] [--keep-hourly n] [--keep-daily n] [--keep-weekly n] [--keep-monthly n]
         [--keep-yearly n] [--keep-within 1y2m3d4h] [--keep-within-hourly|-daily|-weekly|-monthly|-yearly 1y2m3d4h]
         [--keep-tag t] [--host h] [--tag t] [--path p]
         [--dry-run] [--prune]
  prune [--max-unused 5%] [--dry-run]
  key list | key add --new-password-file f | key remove <id>
  unlock                                 remove stale locks

password: VOLBACK_PASSWORD (or RESTIC_PASSWORD), or --password-file <file>
S3 credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
--json prints machine-readable results. Exit codes: 0 ok, 1 error, 2 usage, 3 partial backup,
10 no repository, 11 locked, 12 wrong password.`;

/** Exit codes by error code (restic's numbers where restic has one). */
const EXIT_CODES: Partial<Record<string, number>> = {
  [RepositoryErrorCode.NotARepository]: 10,
  [RepositoryErrorCode.Locked]: 11,
  [RepositoryErrorCode.WrongPassword]: 12,
};

async function main(argv: string[]): Promise<number> {
  const mode = argv.find((a) => a === 'repo' || CATALOG_COMMANDS.has(a));
  if (mode && mode !== 'repo') return runCatalogCommand(argv);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        repo: { type: 'string', short: 'r' },
        'password-file': { type: 'string', short: 'p' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        tag: { type: 'string', multiple: true },
        host: { type: 'string', multiple: true },
        path: { type: 'string', multiple: true },
        parent: { type: 'string' },
        target: { type: 'string', short: 't' },
        'read-data': { type: 'boolean' },
        'read-data-subset': { type: 'string' },
        'dry-run': { type: 'boolean', short: 'n' },
        prune: { type: 'boolean' },
        'keep-last': { type: 'string' },
        'keep-hourly': { type: 'string' },
        'keep-daily': { type: 'string' },
        'keep-weekly': { type: 'string' },
        'keep-monthly': { type: 'string' },
        'keep-yearly': { type: 'string' },
        'keep-within': { type: 'string' },
        'keep-within-hourly': { type: 'string' },
        'keep-within-daily': { type: 'string' },
        'keep-within-weekly': { type: 'string' },
        'keep-within-monthly': { type: 'string' },
        'keep-within-yearly': { type: 'string' },
        'keep-tag': { type: 'string', multiple: true },
        'max-unused': { type: 'string' },
        'new-password-file': { type: 'string' },
      },
    });
  } catch (error) {
    process.stderr.write(`volback: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${CATALOG_USAGE}\n\n${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const [group, command, ...rest] = positionals;
  const out = createOutput(Boolean(values.json));
  try {
    if (group !== 'repo' || !command) throw new UsageError(`unknown command: ${positionals.join(' ')}`);
    return await runRepoCommand(command, rest, values as RepoFlags, out);
  } catch (error) {
    const err = error as Error & { code?: string };
    if (error instanceof UsageError) {
      process.stderr.write(`volback: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ error: { code: err.code ?? 'VOLBACK_ERROR', message: err.message } })}\n`,
      );
    process.stderr.write(`volback: ${err.message}\n`);
    if (error instanceof RepositoryError || err.code) return EXIT_CODES[err.code ?? ''] ?? 1;
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
