import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDockerEngine, type DockerEngine } from '@volback/testing';
import type Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConsistency, stopPlan, type ConsistencyPlan } from '../domain/consistency.ts';
import { AgentErrorCode, HookFailedError } from '../errors.ts';
import { HOOK_OUTPUT_LIMIT } from './hook-runner.ts';
import { Quiescer } from './quiesce.ts';
import { QUIESCE_JOURNAL_DIR } from './quiesce-journal.ts';

let engine: DockerEngine;
let docker: Dockerode;
let stateDir: string;
let quiescer: Quiescer;
/** The volume of the current test's containers. */
let volume: string;
let volumes = 0;

beforeAll(async () => {
  engine = await startDockerEngine();
  docker = engine.docker;
});

afterAll(async () => {
  await engine?.stop();
});

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'volback-quiesce-'));
  quiescer = new Quiescer(docker, { stateDir });
  volume = `data-${++volumes}`;
});

afterEach(async () => {
  for (const c of await docker.listContainers({ all: true })) {
    await docker.getContainer(c.Id).remove({ force: true });
  }
  await docker
    .getVolume(volume)
    .remove()
    .catch(() => undefined);
  await rm(stateDir, { recursive: true, force: true });
});

let counter = 0;

/** A running busybox container using `/data` of a volume; it exits at once on SIGTERM. */
async function service(labels: Record<string, string> = {}) {
  const name = `svc-${++counter}`;
  const container = await docker.createContainer({
    name,
    Image: engine.image,
    Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    Labels: labels,
    HostConfig: { Binds: [`${volume}:/data`], NetworkMode: 'none' },
  });
  await container.start();
  return { name, id: container.id, container };
}

async function state(id: string): Promise<string> {
  return (await docker.getContainer(id).inspect()).State.Status;
}

async function journals(): Promise<string[]> {
  return readdir(join(stateDir, QUIESCE_JOURNAL_DIR)).catch(() => []);
}

async function readVolumeFile(file: string): Promise<string> {
  const { Mountpoint } = await docker.getVolume(volume).inspect();
  return readFile(join(Mountpoint, file), 'utf8');
}

async function planFor(): Promise<ConsistencyPlan> {
  const users = await docker.listContainers({ all: true, filters: { volume: [volume] } });
  return resolveConsistency(
    { mode: 'none' },
    users.map((u) => ({
      id: u.Id,
      name: u.Names[0]!.slice(1),
      labels: u.Labels,
      state: u.State as 'running',
    })),
    { volumeName: volume, allowed: [] },
  );
}

describe('Quiescer', () => {
  it('stops a running container, journals it first, and starts it again on resume (once)', async () => {
    const db = await service({ 'volback.consistency': 'stop', 'volback.stop.timeout': '5' });
    const run = (await docker.getContainer(db.id).inspect()).State.StartedAt;
    const quiesced = await quiescer.quiesce('backup/1', await planFor());
    // The run it ended is on record, for discovery to publish its stop as volback's.
    expect(quiescer.stoppedRuns().get(db.id)).toEqual(new Set([run]));
    expect(quiesced.quiesced).toEqual([db.name]);
    expect(await state(db.id)).toBe('exited');
    expect(quiescer.isHeld(db.id)).toBe(true);
    expect(await journals()).toEqual(['backup%2F1.json']);
    const journal = JSON.parse(
      await readFile(join(stateDir, QUIESCE_JOURNAL_DIR, 'backup%2F1.json'), 'utf8'),
    );
    expect(journal).toMatchObject({
      version: 1,
      workId: 'backup/1',
      containers: [{ id: db.id, name: db.name, action: 'stop' }],
    });

    const report = await quiesced.resume();
    expect(report).toEqual({ resumed: [db.name], stillHeld: [], gone: [], postHooks: [], errors: [] });
    expect(await state(db.id)).toBe('running');
    expect(quiescer.isHeld(db.id)).toBe(false);
    expect(await journals()).toEqual([]);
    expect(await quiesced.resume()).toBe(report);
  });

  it('kills a container that does not stop within its timeout', async () => {
    const container = await docker.createContainer({
      Image: engine.image,
      Cmd: ['sleep', '3600'], // PID 1 without a TERM handler: only SIGKILL ends it
      HostConfig: { NetworkMode: 'none' },
    });
    await container.start();
    const started = Date.now();
    const quiesced = await quiescer.quiesce('slow-stop', stopPlan([{ name: 'slow', id: container.id }], 1));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await state(container.id)).toBe('exited');
    await quiesced.resume();
    expect(await state(container.id)).toBe('running');
  });

  it('pauses and unpauses', async () => {
    const app = await service({ 'volback.consistency': 'pause' });
    const quiesced = await quiescer.quiesce('pause-1', await planFor());
    expect(await state(app.id)).toBe('paused');
    expect((await quiesced.resume()).resumed).toEqual([app.name]);
    expect(await state(app.id)).toBe('running');
  });

  it('runs the pre hook before and the post hook after, in the labelled container', async () => {
    const db = await service({
      'volback.hooks.pre': 'echo dumped > /data/dump.sql && echo pre done && echo warning >&2',
      'volback.hooks.post': 'rm /data/dump.sql && echo cleaned > /data/post',
    });
    const quiesced = await quiescer.quiesce('hooks-1', await planFor());
    expect(quiesced.quiesced).toEqual([]);
    expect(quiesced.preHooks).toMatchObject([{ phase: 'pre', container: db.name, exitCode: 0 }]);
    expect(quiesced.preHooks[0]!.output).toContain('pre done\n');
    expect(quiesced.preHooks[0]!.output).toContain('warning\n');
    expect(await readVolumeFile('dump.sql')).toBe('dumped\n');
    expect(await state(db.id)).toBe('running');
    const report = await quiesced.resume();
    expect(report.postHooks).toMatchObject([{ phase: 'post', container: db.name, exitCode: 0 }]);
    expect(report.errors).toEqual([]);
    expect(await readVolumeFile('post')).toBe('cleaned\n');
    await expect(readVolumeFile('dump.sql')).rejects.toThrow();
  });

  it('fails with the pre hook output and touches nothing else when the pre hook fails', async () => {
    const db = await service({
      'volback.hooks.pre': 'echo cannot connect >&2; exit 3',
      'volback.hooks.post': 'echo post > /data/post',
    });
    const web = await service({ 'volback.consistency': 'stop' });
    const error = await quiescer.quiesce('hook-fails', await planFor()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HookFailedError);
    expect(error).toMatchObject({
      code: AgentErrorCode.HookFailed,
      phase: 'pre',
      container: db.name,
      exitCode: 3,
      timedOut: false,
      output: 'cannot connect\n',
    });
    expect((error as Error).message).toBe(
      `pre hook \`echo cannot connect >&2; exit 3\` in container ${db.name} exited with 3; ` +
        'stderr (last 200 bytes at most): "cannot connect"',
    );
    expect(await state(db.id)).toBe('running');
    expect(await state(web.id)).toBe('running');
    await expect(readVolumeFile('post')).rejects.toThrow();
    expect(await journals()).toEqual([]);
    // The same work may be tried again.
    await docker.getContainer(db.id).remove({ force: true });
    await (await quiescer.quiesce('hook-fails', await planFor())).resume();
  });

  it('kills a hook that runs out of time and fails with what it printed', async () => {
    const db = await service();
    const plan: ConsistencyPlan = {
      mode: 'hooks',
      source: 'command',
      steps: [
        {
          kind: 'hooks',
          container: { name: db.name },
          pre: ['echo started; sleep 30'],
          post: [],
          timeoutSeconds: 1,
        },
      ],
      warnings: [],
    };
    const started = Date.now();
    const error = (await quiescer.quiesce('hook-slow', plan).catch((e: unknown) => e)) as HookFailedError;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(HookFailedError);
    expect(error).toMatchObject({ timedOut: true, exitCode: undefined, output: 'started\n' });
    expect(error.message).toContain('did not finish within 1 s (killed)');
    const exec = await docker.getContainer(db.id).exec({ Cmd: ['ps'], AttachStdout: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).not.toContain('sleep 30');
    expect(await state(db.id)).toBe('running');
  });

  it("puts a failing hook's exit status and a short stderr tail in its error, never its stdout", async () => {
    await service({
      'volback.hooks.pre':
        'echo row-$((6 * 7))-secret; yes e | head -c 5000 >&2; echo "last line" >&2; exit 2',
    });
    const error = (await quiescer.quiesce('hook-quiet', await planFor()).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(HookFailedError);
    const [before, tail] = error.message.split('; stderr (last 200 bytes at most): ');
    expect(before).toMatch(/exited with 2$/);
    const stderr = JSON.parse(tail!) as string;
    expect(stderr.endsWith('e\nlast line')).toBe(true);
    expect(Buffer.byteLength(stderr)).toBeLessThanOrEqual(200);
    expect(error.message).not.toContain('row-42-secret'); // what it printed on stdout
    // The whole output stays on the error object, for the agent; it is put in no event.
    expect((error as HookFailedError).output).toContain('row-42-secret');
  });

  it('keeps only the end of a long hook output', async () => {
    const db = await service({ 'volback.hooks.pre': 'yes 0123456789 | head -c 20000; echo; echo the end' });
    const quiesced = await quiescer.quiesce('loud', await planFor());
    const output = quiesced.preHooks[0]!.output;
    expect(output).toMatch(/^\[\d+ bytes cut\]\n/);
    expect(output.endsWith('the end\n')).toBe(true);
    expect(Buffer.byteLength(output)).toBeLessThan(HOOK_OUTPUT_LIMIT + 64);
    await quiesced.resume();
    expect(await state(db.id)).toBe('running');
  });

  it('fails when the hook container is not there or not running', async () => {
    const plan = (container: string): ConsistencyPlan => ({
      mode: 'hooks',
      source: 'command',
      steps: [{ kind: 'hooks', container: { name: container }, pre: ['true'], post: [], timeoutSeconds: 5 }],
      warnings: [],
    });
    await expect(quiescer.quiesce('h1', plan('no-such-container'))).rejects.toThrow(
      'could not run: no such container',
    );
    const db = await service();
    await docker.getContainer(db.id).stop();
    await expect(quiescer.quiesce('h2', plan(db.name))).rejects.toThrow(
      'could not run: the container is exited',
    );
  });

  it('reports a failing post hook without failing the resume of the others', async () => {
    const db = await service({ 'volback.hooks.post': 'echo disk full; exit 1' });
    const web = await service({ 'volback.consistency': 'stop' });
    const quiesced = await quiescer.quiesce('post-fails', await planFor());
    const report = await quiesced.resume();
    expect(report.resumed).toEqual([web.name]);
    expect(report.errors).toEqual([
      {
        container: db.name,
        code: AgentErrorCode.HookFailed,
        message: expect.stringMatching(/exited with 1$/), // its stdout is not repeated
      },
    ]);
    expect(await state(web.id)).toBe('running');
  });

  it('leaves containers that are not running alone, and does not start them after', async () => {
    const old = await service({ 'volback.consistency': 'stop' });
    await docker.getContainer(old.id).stop();
    const plan = stopPlan([{ name: old.name, id: old.id }]);
    const quiesced = await quiescer.quiesce('not-running', plan);
    expect(quiesced.quiesced).toEqual([]);
    // Someone else's stop: not volback's.
    expect(quiescer.stoppedRuns().has(old.id)).toBe(false);
    expect(quiesced.notes).toEqual([`${old.name}: not stopped, it is exited`]);
    expect((await quiesced.resume()).resumed).toEqual([]);
    expect(await state(old.id)).toBe('exited');
  });

  it('resumes a container two backups hold when the last of them is done', async () => {
    const db = await service();
    const plan = stopPlan([{ name: db.name, id: db.id }]);
    const first = await quiescer.quiesce('first', plan);
    const second = await quiescer.quiesce('second', plan);
    expect(second.quiesced).toEqual([db.name]);
    expect(await journals()).toEqual(['first.json', 'second.json']);
    expect(await first.resume()).toMatchObject({ resumed: [], stillHeld: [db.name] });
    expect(await state(db.id)).toBe('exited');
    expect(await second.resume()).toMatchObject({ resumed: [db.name], stillHeld: [] });
    expect(await state(db.id)).toBe('running');
    expect(await journals()).toEqual([]);
  });

  it('after a crash, a new agent resumes what the journal lists and deletes it', async () => {
    const db = await service();
    const cache = await service();
    const gone = await service();
    const plan: ConsistencyPlan = {
      mode: 'mixed',
      source: 'command',
      steps: [
        { kind: 'stop', container: { name: db.name, id: db.id }, timeoutSeconds: 5 },
        { kind: 'pause', container: { name: cache.name, id: cache.id } },
        { kind: 'stop', container: { name: gone.name, id: gone.id }, timeoutSeconds: 5 },
      ],
      warnings: [],
    };
    const runOf = async (id: string) => (await docker.getContainer(id).inspect()).State.StartedAt;
    const dbRun = await runOf(db.id);
    await quiescer.quiesce('crashed', plan); // and never resumed: the agent "crashed"
    expect([await state(db.id), await state(cache.id), await state(gone.id)]).toEqual([
      'exited',
      'paused',
      'exited',
    ]);
    await docker.getContainer(gone.id).remove({ force: true });
    await writeFile(join(stateDir, QUIESCE_JOURNAL_DIR, 'half-written.json.1.abcd.tmp'), '{"vers');

    const restarted = new Quiescer(docker, { stateDir });
    const report = await restarted.recover();
    expect(report.errors).toEqual([]);
    expect(report.containers.map((c) => [c.container, c.action, c.outcome])).toEqual([
      [db.name, 'stop', 'resumed'],
      [cache.name, 'pause', 'resumed'],
      [gone.name, 'stop', 'gone'],
    ]);
    expect([await state(db.id), await state(cache.id)]).toEqual(['running', 'running']);
    expect(await journals()).toEqual([]);
    // The new agent knows the run the crashed one stopped (a pause ends no run).
    expect([...restarted.stoppedRuns()]).toEqual([[db.id, new Set([dbRun])]]);
    expect(await restarted.recover()).toEqual({ containers: [], errors: [] });
  });

  it('after a crash, leaves alone a container that ran again since, and sets aside a damaged journal', async () => {
    const db = await service();
    await quiescer.quiesce('crashed-2', stopPlan([{ name: db.name, id: db.id }]));
    // Someone started and stopped it in between: it is not ours to start any more.
    await docker.getContainer(db.id).start();
    await docker.getContainer(db.id).stop();
    await writeFile(join(stateDir, QUIESCE_JOURNAL_DIR, 'damaged.json'), '{ not json');

    const restarted = new Quiescer(docker, { stateDir });
    const report = await restarted.recover();
    expect(report.containers).toMatchObject([{ container: db.name, outcome: 'changed' }]);
    // The stop since then may be anyone's: not claimed as volback's.
    expect(restarted.stoppedRuns().size).toBe(0);
    expect(report.errors).toMatchObject([
      { file: 'damaged.json', message: expect.stringContaining('renamed damaged.json.corrupt') },
    ]);
    expect(await state(db.id)).toBe('exited');
    expect(await journals()).toEqual(['damaged.json.corrupt']);
  });

  it('puts back what a crashed run of the same work left before quiescing it again', async () => {
    const db = await service();
    await quiescer.quiesce('retried', stopPlan([{ name: db.name, id: db.id }]));
    const restarted = new Quiescer(docker, { stateDir });
    const again = await restarted.quiesce('retried', stopPlan([]));
    expect(await state(db.id)).toBe('running');
    expect(await journals()).toEqual([]);
    await again.resume();
  });

  it('reports a container removed while it was stopped as gone', async () => {
    const db = await service();
    const quiesced = await quiescer.quiesce('removed', stopPlan([{ name: db.name, id: db.id }]));
    await docker.getContainer(db.id).remove({ force: true });
    expect(await quiesced.resume()).toMatchObject({ resumed: [], gone: [db.name], errors: [] });
    expect(await journals()).toEqual([]);
  });
});
