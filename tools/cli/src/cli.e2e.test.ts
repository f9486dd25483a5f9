import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';

const main = new URL('./main.ts', import.meta.url).pathname;
const scratch = () => mkdtempSync(join(tmpdir(), 'volback-cli-'));

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function volback(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], {
      env: { ...process.env, VOLBACK_PASSWORD: 'cli-test-password', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

const json = <T>(run: Run): T => JSON.parse(run.stdout.toString()) as T;

async function untar(bytes: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(
          header.name,
          header.type === 'file' ? Buffer.concat(chunks).toString() : `<${header.type}>`,
        );
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return files;
}

describe('npx volback repo …', () => {
  it('initialises, backs up, lists, restores, dumps and checks a repository', async () => {
    const repo = join(scratch(), 'repo');
    const source = scratch();
    mkdirSync(join(source, 'sub'));
    writeFileSync(join(source, 'a.txt'), 'alpha\n');
    writeFileSync(join(source, 'sub/b.txt'), 'beta\n');

    const init = await volback(['repo', 'init', '--repo', repo, '--json']);
    expect(init.code).toBe(0);
    expect(json<{ version: number }>(init).version).toBe(2);

    const first = await volback(['repo', 'backup', source, '--repo', repo, '--json', '--tag', 'nightly']);
    expect(first.code).toBe(0);
    const { snapshotId } = json<{ snapshotId: string; filesNew: number }>(first);

    const snapshots = json<Array<{ id: string; tags: string[]; paths: string[] }>>(
      await volback(['repo', 'snapshots', '--repo', repo, '--json']),
    );
    expect(snapshots).toEqual([
      expect.objectContaining({ id: snapshotId, tags: ['nightly'], paths: [source] }),
    ]);

    const ls = json<Array<{ path: string; type: string }>>(
      await volback(['repo', 'ls', snapshotId.slice(0, 8), source, '--repo', repo, '--json']),
    );
    expect(ls.map((e) => e.path)).toEqual([`${source}/a.txt`, `${source}/sub`, `${source}/sub/b.txt`]);

    const target = scratch();
    const restored = await volback([
      'repo',
      'restore',
      'latest',
      '--repo',
      repo,
      '--target',
      target,
      '--path',
      source,
      '--json',
    ]);
    expect(restored.code).toBe(0);
    expect(json<{ files: number }>(restored).files).toBe(2);

    const dump = await volback(['repo', 'dump', 'latest', `${source}/sub`, '--repo', repo]);
    expect(dump.code).toBe(0);
    expect(await untar(dump.stdout)).toEqual(new Map([['b.txt', 'beta\n']]));

    const checked = await volback(['repo', 'check', '--read-data', '--repo', repo, '--json']);
    expect(checked.code).toBe(0);
    expect(json<{ ok: boolean; packsRead: number }>(checked)).toMatchObject({ ok: true });
  });

  it('exits with codes that mean something, and a clear message', async () => {
    const repo = join(scratch(), 'repo');
    expect((await volback(['repo', 'init', '--repo', repo])).code).toBe(0);

    const wrong = await volback(['repo', 'snapshots', '--repo', repo], { VOLBACK_PASSWORD: 'not-it' });
    expect(wrong.code).toBe(12);
    expect(wrong.stderr).toContain('wrong password');

    const missing = await volback(['repo', 'snapshots', '--repo', join(scratch(), 'nothing-here'), '--json']);
    expect(missing.code).toBe(10);
    expect(json<{ error: { code: string } }>(missing).error.code).toBe('VOLBACK_REPO_NOT_FOUND');

    const again = await volback(['repo', 'init', '--repo', repo]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds a repository');

    const usage = await volback(['repo', 'restore', 'latest', '--repo', repo]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('restore needs --target');

    const noPassword = await volback(['repo', 'snapshots', '--repo', repo], { VOLBACK_PASSWORD: '' });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('VOLBACK_PASSWORD');

    const unknown = await volback(['repo', 'frobnicate', '--repo', repo]);
    expect(unknown.code).toBe(2);
  });
});

describe('npx volback: help, suggestions, completion, and telling why the catalog does not answer', () => {
  it('prints one command’s help, suggests the command or flag meant, and exits 2 on a typo', async () => {
    const help = await volback(['backup', '--help']);
    expect(help.code).toBe(0);
    const text = help.stdout.toString();
    expect(text).toMatch(/^Usage: volback backup \[options\] <volume>/);
    expect(text).toContain('--wait');
    expect(text).not.toContain('--to-volume');

    const verb = await volback(['bakup', 'appdata']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toContain("unknown command 'bakup'");
    expect(verb.stderr).toContain('(Did you mean backup?)');
    expect(verb.stderr).not.toContain('repo <command>');

    const flag = await volback(['restore', 'abcd', '--to-volume', 'x', '--stop-container']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('(Did you mean --stop-containers?)');
    expect(flag.stderr).toContain('volback restore --help');

    const repoVerb = await volback(['repo', 'snapshot', '--repo', scratch()]);
    expect(repoVerb.code).toBe(2);
    expect(repoVerb.stderr).toContain('(Did you mean snapshots?)');
  });

  it('writes completion scripts that bash loads and that complete commands, subcommands and flags', async () => {
    const script = await volback(['completion', 'bash']);
    expect(script.code).toBe(0);
    const dir = scratch();
    writeFileSync(join(dir, 'volback.bash'), script.stdout);
    const complete = (words: string[]) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(
          'bash',
          [
            '-c',
            `source <("${process.execPath}" "${main}" completion bash) && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1} && _volback && echo "\${COMPREPLY[*]}"`,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) =>
          code === 0 && !err ? resolve(out.trim()) : reject(new Error(`${code} ${err}`)),
        );
      });
    expect(await complete(['volback', 'ba'])).toBe('backup backup-set');
    expect((await complete(['volback', 'po'])).split(' ')).toEqual(['policies']);
    expect((await complete(['volback', 'policies', ''])).split(' ')).toEqual(
      expect.arrayContaining(['list', 'show', 'set', 'remove']),
    );
    expect((await complete(['volback', 'restore', 'abcd', '--to'])).split(' ').sort()).toEqual([
      '--to-dir',
      '--to-volume',
      '--token',
    ]);
    expect(await complete(['volback', 'repo', 'ini'])).toBe('init');
    expect((await complete(['volback', 'completion', ''])).split(' ')).toContain('--help');

    const zsh = await volback(['completion', 'zsh']);
    expect(zsh.stdout.toString()).toMatch(/^#compdef volback/);
    const fish = await volback(['completion', 'fish']);
    expect(fish.stdout.toString()).toContain("complete -c volback -n '__fish_use_subcommand' -a backup");
    expect((await volback(['completion', 'tcsh'])).code).toBe(2);
  });

  // zsh and fish are not part of the machine's set-up (bash is): these run where they are installed.
  const hasShell = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;

  it.runIf(hasShell('zsh'))('writes a zsh script that zsh loads and that completes subcommands', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'volback.zsh'), (await volback(['completion', 'zsh'])).stdout);
    // compadd only works inside a completion widget: here it prints what it was given.
    const run = spawnSync(
      'zsh',
      [
        '-c',
        `compdef() { :; }; source ${join(dir, 'volback.zsh')}; compadd() { [[ $1 == -- ]] && shift; print -r -- "$@"; }; words=(volback repo ''); CURRENT=3; _volback`,
      ],
      { encoding: 'utf8' },
    );
    expect(run.stderr).toBe('');
    expect(run.stdout.split(' ')).toEqual(expect.arrayContaining(['init', 'backup', 'unlock', '--repo']));
  });

  it.runIf(hasShell('fish'))(
    'writes a fish script that fish loads and that completes commands and flags',
    async () => {
      const dir = scratch();
      writeFileSync(join(dir, 'volback.fish'), (await volback(['completion', 'fish'])).stdout);
      const run = spawnSync(
        'fish',
        [
          '-c',
          `source ${join(dir, 'volback.fish')}; complete -C 'volback ba'; complete -C 'volback restore x --to-'; complete -C 'volback repo ini'`,
        ],
        { encoding: 'utf8' },
      );
      expect(run.stderr).toBe('');
      const words = run.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]);
      expect(words).toEqual(['backup', 'backup-set', '--to-dir', '--to-volume', 'init']);
    },
  );

  it('tells "nothing listens (starting?)" apart from "no answer in time" and from "refused by the server"', async () => {
    const { createServer } = await import('node:net');
    const { createServer: createHttpServer } = await import('node:http');
    const listen = (server: {
      listen: (port: number, host: string, cb: () => void) => void;
      address: () => unknown;
    }) =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      );

    // A port nobody listens on (a server that was just closed): connection refused.
    const closed = createServer();
    const freePort = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const refused = await volback(['status', '--catalog', `http://127.0.0.1:${freePort}`]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain('is not answering (connection refused)');
    expect(refused.stderr).toContain('still starting');

    // Accepts the connection and never answers.
    const silent = createServer(() => undefined);
    const silentPort = await listen(silent);
    try {
      const late = await volback(['status', '--catalog', `http://127.0.0.1:${silentPort}`, '--timeout', '1']);
      expect(late.code).toBe(7);
      expect(late.stderr).toContain('did not answer within 1 s');
    } finally {
      silent.close();
    }

    // Answers, and says no.
    const strict = createHttpServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('no');
    });
    const strictPort = await listen(strict);
    try {
      const no = await volback(['status', '--catalog', `http://127.0.0.1:${strictPort}`, '--json']);
      expect(no.code).toBe(6);
      expect(no.stderr).toContain('refused the request: 401');
      expect(json<{ error: { code: string } }>(no).error.code).toBe('HTTP_401');
    } finally {
      strict.close();
    }
  });

  it('sends the token of VOLBACK_TOKEN_FILE, and names the variable when the file is bad', async () => {
    const { createServer } = await import('node:http');
    const seen: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('no');
    });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    const dir = scratch();
    const token = 'file-token-0123456789abcdef';
    writeFileSync(join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'two.token'), `${token} ${token}\n`, { mode: 0o600 });
    const catalog = ['status', '--catalog', `http://127.0.0.1:${port}`];
    try {
      const sent = await volback(catalog, {
        VOLBACK_TOKEN: '',
        VOLBACK_TOKEN_FILE: join(dir, 'admin.token'),
      });
      expect(sent.code).toBe(6);
      expect(seen).toEqual([`Bearer ${token}`]);
      // VOLBACK_TOKEN wins over the file.
      await volback(catalog, {
        VOLBACK_TOKEN: 'env-token-0123456789',
        VOLBACK_TOKEN_FILE: join(dir, 'admin.token'),
      });
      expect(seen[1]).toBe('Bearer env-token-0123456789');
      const missing = await volback(catalog, {
        VOLBACK_TOKEN: '',
        VOLBACK_TOKEN_FILE: join(dir, 'none.token'),
      });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/VOLBACK_TOKEN_FILE: cannot read .*none\.token \(ENOENT\)/);
      const two = await volback(catalog, { VOLBACK_TOKEN: '', VOLBACK_TOKEN_FILE: join(dir, 'two.token') });
      expect(two.code).toBe(2);
      expect(two.stderr).toContain('does not hold one token');
      expect(two.stderr).not.toContain(token);
      expect(seen).toHaveLength(2);
    } finally {
      server.close();
    }
  });
});
