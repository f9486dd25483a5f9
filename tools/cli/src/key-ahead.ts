// Run by the command's entry before the command line loads (bin/volback.mjs, main.ts): for
// `volback repo …` on a repository in a directory, with its password in the environment or in a
// file, it starts deriving the password's key for the repository's key file on libuv's thread
// pool (@volback/repository/key-ahead), so that the derivation (about 0.08 s) runs while Node
// loads the command line (about 0.06 s) instead of after. It reads the arguments loosely, as
// commander will read them: a misreading costs only that derivation, never a wrong key (opening
// the repository takes a derived key only for the same password and key file).
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { deriveKeyAhead } from '@volback/repository/key-ahead';

/** The value of option `-short`/`--long` in `args` (`-r x`, `-rx`, `--repo x`, `--repo=x`), the last one given. */
function optionValue(args: readonly string[], short: string, long: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === short || arg === long) value = args[++i];
    else if (arg.startsWith(`${long}=`)) value = arg.slice(long.length + 1);
    else if (arg.startsWith(short) && !arg.startsWith('--')) value = arg.slice(short.length);
  }
  return value;
}

/**
 * Starts deriving the repository's key when the command line is `repo <command>` on a repository
 * in a directory with a key file; returns that directory when it did.
 */
export function startKeyAhead(args: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  // The words that are not options or the values of the two options read here.
  const words = args.filter(
    (arg, i) =>
      !arg.startsWith('-') && !['-r', '--repo', '-p', '--password-file'].includes(args[i - 1] ?? ''),
  );
  if (words[0] !== 'repo' || words[1] === undefined || words[1] === 'init') return undefined;
  const repo = optionValue(args, '-r', '--repo') ?? env['VOLBACK_REPOSITORY'] ?? env['RESTIC_REPOSITORY'];
  if (!repo || repo.startsWith('s3:')) return undefined;
  const passwordFile = optionValue(args, '-p', '--password-file');
  let password: string | undefined;
  try {
    // Only a regular file: a pipe (`-p /dev/stdin`, `-p <(pass show repo)`) read here would be
    // empty when the command line reads it.
    if (passwordFile && !statSync(passwordFile).isFile()) return undefined;
    password = passwordFile
      ? readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '')
      : (env['VOLBACK_PASSWORD'] ?? env['RESTIC_PASSWORD']);
  } catch {
    return undefined; // the command line says what is wrong with the file
  }
  const root = resolve(repo);
  return password && deriveKeyAhead(root, password) ? root : undefined;
}
