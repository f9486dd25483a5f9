import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentErrorCode, HostIdError } from '../errors.ts';
import { HOST_ID_FILE, loadHostIdFromIdentity, loadOrCreateHostId } from './host-id-store.ts';

describe('persisted host id', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is created once, private to the agent, and the same after a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-host-id-'));
    const stateDir = join(dir, 'nested', 'state');
    const first = await loadOrCreateHostId(stateDir);
    const again = await loadOrCreateHostId(stateDir);
    expect(first.created).toBe(true);
    expect(again).toEqual({ ...first, created: false });
    expect(first.hostId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await readFile(join(stateDir, HOST_ID_FILE), 'utf8')).toBe(`${first.hostId}\n`);
    expect((await stat(join(stateDir, HOST_ID_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(stateDir)).toEqual([HOST_ID_FILE]);
  });

  it('gives agents starting together on one state dir the same id', async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-host-id-'));
    let n = 0;
    const results = await Promise.all(
      Array.from({ length: 8 }, () => loadOrCreateHostId(dir!, () => `host-${++n}`)),
    );
    expect(new Set(results.map((r) => r.hostId)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await readdir(dir)).toEqual([HOST_ID_FILE]);
  });

  it('refuses a damaged id file rather than inventing a new identity', async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-host-id-'));
    await writeFile(join(dir, HOST_ID_FILE), 'not a host id\n');
    const error = await loadOrCreateHostId(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostIdError);
    expect(error).toMatchObject({ code: AgentErrorCode.HostIdInvalid, file: join(dir, HOST_ID_FILE) });
    expect((error as Error).message).toContain('fix or remove it');
  });

  it('takes the id of an agent identity, and refuses a state dir that holds another host', async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-host-id-'));
    const identity = join(dir, 'agent-h1.json');
    await writeFile(identity, JSON.stringify({ hostId: 'h1', name: 'box' }));
    const state = join(dir, 'state');
    expect(await loadHostIdFromIdentity(state, identity)).toMatchObject({ hostId: 'h1', created: true });
    expect(await loadHostIdFromIdentity(state, identity)).toMatchObject({ hostId: 'h1', created: false });

    const other = join(dir, 'agent-h2.json');
    await writeFile(other, JSON.stringify({ hostId: 'h2', name: 'other' }));
    const error = await loadHostIdFromIdentity(state, other).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostIdError);
    expect((error as Error).message).toContain('holds host id h1, but the identity');
    expect(await readFile(join(state, HOST_ID_FILE), 'utf8')).toBe('h1\n');

    await writeFile(other, JSON.stringify({ hostId: 'gateway' }));
    expect(await loadHostIdFromIdentity(join(dir, 'fresh'), other).catch((e: Error) => e.message)).toMatch(
      /holds no valid hostId/,
    );
  });
});
