// Which command lines start deriving the repository's key before the command line loads: `repo`
// commands on a repository in a directory, its location and password read as commander reads
// them (real repository directories: a key file must be there).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startKeyAhead } from './key-ahead.ts';

/** A repository directory with a key file, in a directory of its own (for the password files beside it). */
function repositoryDir(): string {
  const root = join(mkdtempSync(join(tmpdir(), 'volback-cli-key-ahead-')), 'repo');
  mkdirSync(join(root, 'keys'), { recursive: true });
  const salt = Buffer.alloc(64, 7).toString('base64');
  writeFileSync(
    join(root, 'keys', 'b'.repeat(64)),
    JSON.stringify({ kdf: 'scrypt', N: 1024, r: 8, p: 1, salt }),
  );
  return root;
}

describe('startKeyAhead', () => {
  const root = repositoryDir();
  const env = { VOLBACK_PASSWORD: 'pw' };

  it.each([
    [['repo', 'snapshots', '--repo', root]],
    [['repo', '--repo', root, 'backup', '/data']],
    [['repo', 'restore', 'latest', `--repo=${root}`, '--target', '/tmp/x']],
    [['repo', '-r', root, 'check']],
    [['repo', `-r${root}`, 'check']],
  ])('starts for %j', (args) => {
    expect(startKeyAhead(args, env)).toBe(root);
  });

  it('takes the repository and password from the environment, or the password from a file', () => {
    expect(startKeyAhead(['repo', 'snapshots'], { VOLBACK_REPOSITORY: root, RESTIC_PASSWORD: 'pw' })).toBe(
      root,
    );
    const file = join(root, '..', 'password');
    writeFileSync(file, 'pw\n');
    expect(startKeyAhead(['repo', 'snapshots', '-r', root, '--password-file', file], {})).toBe(root);
    expect(
      startKeyAhead(['repo', 'snapshots', '-r', root, '-p', join(root, 'no-such-file')], env),
    ).toBeUndefined();
  });

  it('leaves a password file that is a pipe for the command line to read', () => {
    const fifo = join(root, '..', 'password-pipe');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO to read would block until a writer comes: returning at all shows it was not read.
    expect(startKeyAhead(['repo', 'snapshots', '-r', root, '-p', fifo], env)).toBeUndefined();
  });

  it.each([
    ['no password', ['repo', 'snapshots', '--repo', root], {}],
    ['not a repo command', ['snapshots', '--repo', root], env],
    ['init (no key yet)', ['repo', 'init', '--repo', root], env],
    ['no command', ['repo', '--repo', root], env],
    ['S3', ['repo', 'snapshots', '--repo', 's3:http://127.0.0.1:9000/bucket'], env],
    ['no key file', ['repo', 'snapshots', '--repo', join(root, 'keys')], env],
  ])('starts nothing: %s', (_, args, environment) => {
    expect(startKeyAhead(args, environment)).toBeUndefined();
  });
});
