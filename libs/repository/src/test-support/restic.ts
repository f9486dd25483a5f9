import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs the real restic against a repository; resolves with stdout, rejects with its stderr. */
export async function restic(
  repo: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<string> {
  try {
    const { stdout } = await run('restic', ['-r', repo, '--no-cache', ...args], {
      env: { ...process.env, RESTIC_PASSWORD: 'volback-test-password', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string; stdout?: string; code?: number };
    throw new Error(`restic ${args.join(' ')} failed (${e.code}): ${e.stderr ?? ''}${e.stdout ?? ''}`, {
      cause: error,
    });
  }
}

/** The password every repository test uses. */
export const TEST_PASSWORD = 'volback-test-password';
