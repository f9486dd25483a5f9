// Test support: the local stack run as `npm start` runs it, for the e2e tests of this folder.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

const main = new URL('./main.ts', import.meta.url).pathname;

/** A local stack process and what it printed. */
export interface StackProcess {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  readonly exit: Promise<number | null>;
}

/**
 * Starts `main.ts` with `env` (JSON logs) in a process group of its own, as a shell gives
 * `npm start`: Ctrl-C there signals the whole group (`process.kill(-child.pid, 'SIGINT')`).
 */
export function startStack(env: Record<string, string>): StackProcess {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ...env, VOLBACK_LOG_PRETTY: '0' },
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** The JSON log lines of a stack's output (its own and its services'). */
export function logLines(output: string): Array<Record<string, unknown> & { msg?: string }> {
  return output.split('\n').flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as unknown;
      return parsed && typeof parsed === 'object' ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** How a test connects to a stack's NATS as the set-up's admin (TLS, the admin nkey). */
export function adminIdentity(dataDir: string): { nkeyFile: string; caFile: string; inboxPrefix: string } {
  return {
    nkeyFile: join(dataDir, 'secrets/identities/admin.nk'),
    caFile: join(dataDir, 'secrets/ca/ca.crt'),
    inboxPrefix: '_INBOX.admin',
  };
}
