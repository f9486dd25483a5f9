// Test support: the local stack run as `npm start` runs it, for the e2e tests of this folder.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
import { connectNats } from '@volback/messaging';

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

/** The processes below `pid` (the stack's services and NATS), from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the fields after it are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Every secret of a stack's set-up (`<dataDir>/secrets`), by name. */
export function secretsOf(dir: string): Map<string, string> {
  const secrets = new Map<string, string>();
  const add = (name: string, file: string) => secrets.set(name, readFileSync(file, 'utf8').trim());
  add('repository password', join(dir, 'repository-password'));
  add('admin token', join(dir, 'catalog/admin.token'));
  add('read token', join(dir, 'catalog/read.token'));
  add('MinIO root password', join(dir, 'minio-root-password'));
  for (const seed of readdirSync(join(dir, 'identities')).filter((f) => f.endsWith('.nk'))) {
    add(`seed ${seed}`, join(dir, 'identities', seed));
  }
  return secrets;
}

/**
 * Where a secret of the stack shows: its output (every service's log), the NATS log, every stored
 * event, and the command line and environment of every process below the stack's.
 */
export async function secretLeaks(stack: {
  dataDir: string;
  natsPort: number;
  stackPid: number;
  output: string;
}): Promise<{ leaks: string[]; events: string; processes: number }> {
  const nc = await connectNats({
    servers: `nats://127.0.0.1:${stack.natsPort}`,
    name: 'secret-leaks',
    connectTimeoutMs: 5_000,
    ...adminIdentity(stack.dataDir),
  });
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(STREAMS.events.name);
  let events = '';
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(STREAMS.events.name, { seq }).catch(() => null);
    if (m) events += `${m.subject} ${m.string()}\n`;
  }
  await nc.close();
  const processes = descendants(stack.stackPid);
  const places: [string, string][] = [
    ['the stack output (every service log)', stack.output],
    ['the NATS log', readFileSync(join(stack.dataDir, 'nats/nats-server.log'), 'utf8')],
    ['the events', events],
  ];
  for (const pid of processes) {
    try {
      places.push([`the command line of ${pid}`, readFileSync(`/proc/${pid}/cmdline`, 'utf8')]);
      places.push([`the environment of ${pid}`, readFileSync(`/proc/${pid}/environ`, 'utf8')]);
    } catch {
      // a process that ended meanwhile
    }
  }
  const leaks: string[] = [];
  const secrets = secretsOf(join(stack.dataDir, 'secrets'));
  for (const [where, text] of places) {
    for (const [name, value] of secrets) if (text.includes(value)) leaks.push(`${name} in ${where}`);
  }
  return { leaks, events, processes: processes.length };
}
