import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `volback` command line's entry point, run with this Node (`npx volback` runs the same file). */
export const VOLBACK_MAIN = fileURLToPath(new URL('../../../../tools/cli/src/main.ts', import.meta.url));

/** How a command ended and what it printed. */
export interface CommandResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A running command: the process (to kill) and its result once it has ended. */
export interface RunningCommand {
  readonly child: ChildProcess;
  readonly result: Promise<CommandResult>;
}

function start(file: string, args: readonly string[], env: NodeJS.ProcessEnv): RunningCommand {
  const started = Date.now();
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<CommandResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started }),
    );
  });
  return { child, result };
}

/** Starts `volback <args>` as its own process (so that it can be killed); the password comes from VOLBACK_PASSWORD. */
export function startVolback(args: readonly string[], env: Record<string, string> = {}): RunningCommand {
  return start(process.execPath, [VOLBACK_MAIN, ...args], { ...process.env, ...env });
}

/** Runs `volback <args>` to its end. */
export function volback(args: readonly string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return startVolback(args, env).result;
}

/** Runs a Node script (TypeScript is fine) with this Node to its end. */
export function runScript(
  file: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  return start(process.execPath, [file, ...args], { ...process.env, ...env }).result;
}

/** Runs the real restic (without a cache) to its end, successful or not. */
export function resticRun(
  repo: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  return start('restic', ['-r', repo, '--no-cache', ...args], { ...process.env, ...env }).result;
}
