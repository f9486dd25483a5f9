import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { startDockerEngine, type DockerEngine } from '@volback/testing';
import type Dockerode from 'dockerode';
import { extract, pack, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentErrorCode,
  ArchiveError,
  HelperImageMissingError,
  InvalidArchiveError,
  VolumeExistsError,
  VolumeInUseError,
  VolumeNotFoundError,
} from '../errors.ts';
import { HELPER_LABELS, VolumeAccess } from './volume-access.ts';

const run = promisify(execFile);
const HOST_ID = 'host-volume-access-test';

let engine: DockerEngine;
let docker: Dockerode;
let access: VolumeAccess;

beforeAll(async () => {
  engine = await startDockerEngine();
  docker = engine.docker;
  access = new VolumeAccess(docker, { helperImage: engine.image, hostId: HOST_ID });
});

afterAll(async () => {
  await engine?.stop();
});

let counter = 0;
function unique(prefix: string): string {
  return `${prefix}-${++counter}`;
}

/** Runs a shell script in a throwaway busybox container with the volume at /v. */
async function runIn(volume: string, script: string): Promise<void> {
  const container = await docker.createContainer({
    Image: engine.image,
    Cmd: ['sh', '-euc', script],
    HostConfig: { Binds: [`${volume}:/v`], NetworkMode: 'none' },
  });
  await container.start();
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  const logs = (await container.logs({ stdout: true, stderr: true })).toString();
  await container.remove();
  if (StatusCode !== 0) throw new Error(`script exited with ${StatusCode}: ${logs}`);
}

async function helpers(): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${HELPER_LABELS.helper}=1`] } });
}

interface Listed {
  header: Header & { pax?: Record<string, string> | null };
  body: Buffer;
}

async function listTar(stream: NodeJS.ReadableStream): Promise<Listed[]> {
  const entries: Listed[] = [];
  const reader = extract();
  (stream as Readable).pipe(reader);
  for await (const entry of reader) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.push({ header: entry.header as Listed['header'], body: Buffer.concat(chunks) });
  }
  return entries;
}

async function tarOf(entries: [Partial<Header> & { name: string; pax?: Record<string, string> }, string?][]) {
  const archive = pack();
  for (const [header, body] of entries) archive.entry(header, body ?? '');
  archive.finalize();
  return archive as unknown as Readable;
}

/** What a directory tree holds, with the metadata a restore must keep (mtime to the second). */
async function describeTree(root: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  const inodes = new Map<bigint, string>();
  const walk = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const s = await lstat(path, { bigint: true });
      const key = `${rel}${name}`;
      let kind = s.isDirectory()
        ? 'dir'
        : s.isSymbolicLink()
          ? `symlink->${await readlink(path)}`
          : s.isFIFO()
            ? 'fifo'
            : s.isCharacterDevice()
              ? `chardev ${s.rdev}`
              : `file ${s.size}`;
      if (s.isFile() && s.nlink > 1n) {
        const first = inodes.get(s.ino);
        if (first) kind += ` hardlink of ${first}`;
        else inodes.set(s.ino, key);
      }
      tree[key] =
        `${kind} mode=${(s.mode & 0o7777n).toString(8)} ${s.uid}:${s.gid} mtime=${s.mtimeNs / 1_000_000_000n}`;
      if (s.isDirectory()) await walk(path, `${key}/`);
    }
  };
  const s = await lstat(root, { bigint: true });
  tree['.'] =
    `dir mode=${(s.mode & 0o7777n).toString(8)} ${s.uid}:${s.gid} mtime=${s.mtimeNs / 1_000_000_000n}`;
  await walk(root, '');
  return tree;
}

const POPULATE = [
  'mkdir -p /v/dir/sub /v/empty',
  'echo hello > /v/dir/sub/f && chown 1234:5678 /v/dir/sub/f && chmod 640 /v/dir/sub/f',
  'ln /v/dir/sub/f /v/dir/hard',
  'ln -s sub/f /v/dir/link && ln -s /nowhere /v/dangling',
  'mkfifo /v/fifo && mknod /v/null c 1 3',
  'echo big > /v/bigid && chown 3000000:3000001 /v/bigid',
  'chmod 4755 /v/empty && chmod 1777 /v/dir/sub',
  'touch -d "2001-02-03 04:05:06" /v/dir/sub/f /v/dir/sub /v/dir /v/empty',
  'touch -h -d "2002-02-02 02:02:02" /v/dir/link',
  'chown 42:43 /v && chmod 750 /v && touch -d "2003-03-03 03:03:03" /v',
].join('\n');

describe('VolumeAccess', () => {
  it('inspects a volume, or says it does not exist', async () => {
    const name = unique('inspected');
    await docker.createVolume({ Name: name, Labels: { team: 'shop' } });
    const volume = await access.inspectVolume(name);
    expect(volume).toMatchObject({
      name,
      driver: 'local',
      driverOptions: {},
      labels: { team: 'shop' },
      scope: 'local',
    });
    expect(volume.mountpoint).toBe(join(engine.dataRoot, 'volumes', name, '_data'));
    expect(volume.createdAt).toMatch(/^\d{4}-/);
    const error = await access.inspectVolume('no-such-volume').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VolumeNotFoundError);
    expect(error).toMatchObject({ code: AgentErrorCode.VolumeNotFound, volumeName: 'no-such-volume' });
    expect(await access.volumeExists(name)).toBe(true);
    expect(await access.volumeExists('no-such-volume')).toBe(false);
  });

  it('lists the containers that mount a volume, in any state, without helpers', async () => {
    const name = unique('used');
    const other = unique('other');
    const make = async (suffix: string, volume: string, labels: Record<string, string> = {}) =>
      docker.createContainer({
        name: `${name}-${suffix}`,
        Image: engine.image,
        Cmd: ['sleep', '3600'],
        Labels: labels,
        HostConfig: { Binds: [`${volume}:/data`], NetworkMode: 'none' },
      });
    const running = await make('running', name, { 'volback.consistency': 'stop' });
    await running.start();
    const paused = await make('paused', name);
    await paused.start();
    await paused.pause();
    const exited = await make('exited', name);
    await exited.start();
    await exited.kill();
    await make('created', name);
    await make('elsewhere', other);
    const archive = await access.exportArchive(name); // a helper mounting it
    try {
      const users = await access.containersUsing(name);
      expect(users.map((u) => [u.name, u.state])).toEqual([
        [`${name}-created`, 'created'],
        [`${name}-exited`, 'exited'],
        [`${name}-paused`, 'paused'],
        [`${name}-running`, 'running'],
      ]);
      expect(users[3]!.labels).toEqual({ 'volback.consistency': 'stop' });
      expect(users[3]!.id).toBe(running.id);
      expect(users[3]!.inspect.Id).toBe(running.id);
      expect(await access.containersUsing(unique('unused'))).toEqual([]);
    } finally {
      await archive.close();
      await paused.unpause();
      for (const c of await docker.listContainers({ all: true, filters: { name: [name] } })) {
        await docker.getContainer(c.Id).remove({ force: true });
      }
    }
  });

  it('gives the mountpoint to read directly only when this process can read it there', async () => {
    const name = unique('direct');
    await docker.createVolume({ Name: name });
    const volume = await access.inspectVolume(name);
    expect(await access.directPath(volume)).toBe(volume.mountpoint);

    const remote = new VolumeAccess(docker, { helperImage: engine.image, hostId: HOST_ID, local: false });
    expect(await remote.directPath(volume)).toBeUndefined();

    // A volume the driver mounts only while a container uses it: its directory may be empty.
    const tmpfs = unique('tmpfs');
    await docker.createVolume({ Name: tmpfs, DriverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    expect(await access.directPath(await access.inspectVolume(tmpfs))).toBeUndefined();

    expect(
      await access.directPath({ ...volume, mountpoint: join(engine.rootDir, 'missing') }),
    ).toBeUndefined();
    const file = join(engine.rootDir, 'a-file');
    await writeFile(file, 'x');
    expect(await access.directPath({ ...volume, mountpoint: file })).toBeUndefined();
    const { mountpoint: _, ...withoutMountpoint } = volume;
    expect(await access.directPath(withoutMountpoint)).toBeUndefined();
  });

  it('reads a volume as a tar from a read-only helper that never runs, and removes the helper', async () => {
    const name = unique('exported');
    await docker.createVolume({ Name: name });
    await runIn(name, POPULATE);
    const mountpoint = (await access.inspectVolume(name)).mountpoint!;
    // What the archive API leaves out: other xattrs, sub-second times, sockets.
    await run('python3', [
      '-c',
      'import os,sys; os.setxattr(sys.argv[1], "user.note", b"kept?")',
      join(mountpoint, 'bigid'),
    ]);
    await run('touch', ['-d', '2004-04-04 04:04:04.123456789', join(mountpoint, 'bigid')]);
    const socket = createServer();
    // In a directory whose time is not checked: creating it changes its directory's mtime.
    await new Promise<void>((resolve) => socket.listen(join(mountpoint, 'empty', 'socket'), resolve));

    const archive = await access.exportArchive(name);
    const [helper] = await helpers();
    expect(helper).toBeDefined();
    const inspected = await docker.getContainer(helper!.Id).inspect();
    expect(inspected.Config.Labels).toEqual({
      [HELPER_LABELS.helper]: '1',
      [HELPER_LABELS.host]: HOST_ID,
      [HELPER_LABELS.volume]: name,
      [HELPER_LABELS.purpose]: 'export',
    });
    expect(inspected.HostConfig.NetworkMode).toBe('none');
    expect(inspected.State.Status).toBe('created');
    expect(inspected.Mounts).toMatchObject([
      { Type: 'volume', Name: name, Destination: '/volume', RW: false },
    ]);

    const entries = await listTar(archive.stream);
    await archive.close();
    await archive.close(); // twice is fine
    socket.close();
    expect(await helpers()).toEqual([]);
    expect(
      await docker
        .getContainer(helper!.Id)
        .inspect()
        .then(
          () => 200,
          (e: { statusCode: number }) => e.statusCode,
        ),
    ).toBe(404);

    const byName = new Map(entries.map((e) => [e.header.name, e.header]));
    expect(entries.map((e) => e.header.name).sort()).toEqual([
      './',
      './bigid',
      './dangling',
      './dir/',
      './dir/hard',
      './dir/link',
      './dir/sub/',
      './dir/sub/f',
      './empty/',
      './fifo',
      './null',
    ]);
    expect(byName.get('./')).toMatchObject({
      type: 'directory',
      mode: 0o40750,
      uid: 42,
      gid: 43,
      mtime: new Date('2003-03-03T03:03:03Z'),
    });
    expect(byName.get('./empty/')).toMatchObject({ type: 'directory', mode: 0o44755 });
    expect(byName.get('./dir/sub/')).toMatchObject({
      mode: 0o41777,
      mtime: new Date('2001-02-03T04:05:06Z'),
    });
    // The first of a hard-linked pair in walk order is the file; the other points at its `./` name.
    expect(byName.get('./dir/hard')).toMatchObject({
      type: 'file',
      uid: 1234,
      gid: 5678,
      mode: 0o100640,
      size: 6,
    });
    expect(byName.get('./dir/sub/f')).toMatchObject({ type: 'link', linkname: './dir/hard' });
    expect(byName.get('./dir/link')).toMatchObject({
      type: 'symlink',
      linkname: 'sub/f',
      mtime: new Date('2002-02-02T02:02:02Z'),
    });
    expect(byName.get('./dangling')).toMatchObject({ type: 'symlink', linkname: '/nowhere' });
    expect(byName.get('./fifo')).toMatchObject({ type: 'fifo' });
    expect(byName.get('./null')).toMatchObject({ type: 'character-device', devmajor: 1, devminor: 3 });
    // ids from 2^21 on are in PAX records; the ustar field says 0 (tar-stream does not apply them).
    const bigid = byName.get('./bigid')!;
    expect(bigid.pax).toEqual({ uid: '3000000', gid: '3000001' });
    expect(bigid.uid).toBe(0);
    // Seconds only, and no user xattr: neither is in the archive.
    expect(bigid.mtime).toEqual(new Date('2004-04-04T04:04:04Z'));
  });

  it('stops reading on abort and still removes the helper', async () => {
    const name = unique('aborted');
    await docker.createVolume({ Name: name });
    await runIn(name, 'dd if=/dev/zero of=/v/big bs=1M count=64 2>/dev/null');
    const abort = new AbortController();
    const archive = await access.exportArchive(name, abort.signal);
    const failed = new Promise<Error>((resolve) => archive.stream.once('error', resolve));
    await new Promise<void>((resolve) => archive.stream.once('data', () => resolve()));
    abort.abort(new Error('backup cancelled'));
    expect((await failed).message).toBe('backup cancelled');
    await archive.close();
    expect(await helpers()).toEqual([]);
    await expect(access.exportArchive(name, abort.signal)).rejects.toThrow('backup cancelled');
    expect(await helpers()).toEqual([]);
  });

  it('neither creates a missing volume nor leaves a helper when it cannot read', async () => {
    const missing = unique('missing');
    await expect(access.exportArchive(missing)).rejects.toBeInstanceOf(VolumeNotFoundError);
    await expect(access.importArchive(missing, await tarOf([]))).rejects.toBeInstanceOf(VolumeNotFoundError);
    expect(await access.volumeExists(missing)).toBe(false);

    const name = unique('no-image');
    await docker.createVolume({ Name: name });
    const noImage = new VolumeAccess(docker, { helperImage: 'volback-test/absent:1', hostId: HOST_ID });
    const error = await noImage.exportArchive(name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HelperImageMissingError);
    expect(error).toMatchObject({ code: AgentErrorCode.HelperImageMissing, image: 'volback-test/absent:1' });
    expect((error as Error).message).toContain('VOLBACK_HELPER_IMAGE');
    expect(await helpers()).toEqual([]);
  });

  it('writes an exported volume into another one with owners, modes, times, links, fifos and devices', async () => {
    const source = unique('source');
    const target = unique('target');
    await docker.createVolume({ Name: source });
    await runIn(source, POPULATE);
    await docker.createVolume({ Name: target });
    const archive = await access.exportArchive(source);
    try {
      await access.importArchive(target, archive.stream);
    } finally {
      await archive.close();
    }
    expect(await helpers()).toEqual([]);
    const sourceTree = await describeTree((await access.inspectVolume(source)).mountpoint!);
    const targetTree = await describeTree((await access.inspectVolume(target)).mountpoint!);
    expect(targetTree).toEqual(sourceTree);
    expect(targetTree['.']).toBe(`dir mode=750 42:43 mtime=${Date.UTC(2003, 2, 3, 3, 3, 3) / 1000}`);
    expect(targetTree['bigid']).toContain(' 3000000:3000001 ');
    expect(targetTree['dir/sub/f']).toContain('hardlink of dir/hard');
  });

  it('keeps sub-second times and xattrs given as PAX records, and names of any length', async () => {
    const name = unique('pax');
    await docker.createVolume({ Name: name });
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}`;
    await access.importArchive(
      name,
      await tarOf([
        [
          {
            name: 'f',
            mode: 0o600,
            uid: 7,
            gid: 8,
            mtime: new Date(0),
            pax: { mtime: '1000000000.123456789', 'SCHILY.xattr.user.k': 'v' },
          },
          'x',
        ],
        [{ name: long, mode: 0o644 }, 'long'],
      ]),
    );
    const mountpoint = (await access.inspectVolume(name)).mountpoint!;
    const s = await lstat(join(mountpoint, 'f'), { bigint: true });
    expect([s.uid, s.gid, s.mode & 0o7777n, s.mtimeNs]).toEqual([7n, 8n, 0o600n, 1_000_000_000_123_456_789n]);
    const { stdout } = await run('python3', [
      '-c',
      'import os,sys; print(os.getxattr(sys.argv[1], "user.k").decode())',
      join(mountpoint, 'f'),
    ]);
    expect(stdout.trim()).toBe('v');
    expect((await lstat(join(mountpoint, long))).size).toBe(4);
  });

  it('refuses entries that could land outside the volume before they are written, and removes the helper', async () => {
    const name = unique('refused');
    await docker.createVolume({ Name: name });
    const mountpoint = (await access.inspectVolume(name)).mountpoint!;
    for (const entries of [
      [[{ name: '../escape' }, 'x']],
      [[{ name: '/etc/passwd' }, 'x']],
      [[{ name: 'a', type: 'symlink', linkname: '/etc' }], [{ name: 'a/pwned' }, 'x']],
    ] as Parameters<typeof tarOf>[0][]) {
      const error = await access.importArchive(name, await tarOf(entries)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArchiveError);
      expect((error as InvalidArchiveError).code).toBe(AgentErrorCode.ArchiveInvalid);
    }
    // Nothing outside the volume, nothing refused. The symlink entry before the refused one may
    // or may not have reached the engine before the upload was cut off (a race on the stream).
    expect(['a']).toEqual(expect.arrayContaining(await readdir(mountpoint)));
    expect(await helpers()).toEqual([]);
  });

  it('replaces the files an archive holds and keeps the others', async () => {
    const name = unique('existing');
    await docker.createVolume({ Name: name });
    await runIn(
      name,
      'echo old > /v/replaced && echo mine > /v/kept && mkdir /v/dir && echo x > /v/dir/kept',
    );
    await access.importArchive(
      name,
      await tarOf([[{ name: 'replaced' }, 'new'], [{ name: 'dir/', type: 'directory' }]]),
    );
    const mountpoint = (await access.inspectVolume(name)).mountpoint!;
    expect(await readFile(join(mountpoint, 'replaced'), 'utf8')).toBe('new');
    expect(await readFile(join(mountpoint, 'kept'), 'utf8')).toBe('mine\n');
    expect(await readFile(join(mountpoint, 'dir', 'kept'), 'utf8')).toBe('x\n');
  });

  it('reports what the engine refuses as an archive error', async () => {
    const name = unique('engine-refused');
    await docker.createVolume({ Name: name });
    const error = await access
      .importArchive(name, await tarOf([[{ name: 'h', type: 'link', linkname: 'not-there' }]]))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).code).toBe(AgentErrorCode.ArchiveFailed);
    expect((error as Error).message).toContain('the engine refused the archive');
    expect(await helpers()).toEqual([]);
  });

  it('creates a volume only under a free name, and removes one only when no container uses it', async () => {
    const name = unique('created');
    const created = await access.createVolume({
      name,
      labels: { 'io.volback.restored-from': 'abc' },
      driverOptions: { type: 'tmpfs', device: 'tmpfs' },
    });
    expect(created).toMatchObject({
      name,
      driver: 'local',
      labels: { 'io.volback.restored-from': 'abc' },
      driverOptions: { type: 'tmpfs', device: 'tmpfs' },
    });
    const exists = await access.createVolume({ name }).catch((e: unknown) => e);
    expect(exists).toBeInstanceOf(VolumeExistsError);
    expect(exists).toMatchObject({ code: AgentErrorCode.VolumeExists, volumeName: name });
    expect((await access.inspectVolume(name)).labels).toEqual({ 'io.volback.restored-from': 'abc' });

    const user = await docker.createContainer({
      Image: engine.image,
      Cmd: ['true'],
      HostConfig: { Binds: [`${name}:/v`], NetworkMode: 'none' },
    });
    const inUse = await access.removeVolume(name).catch((e: unknown) => e);
    expect(inUse).toBeInstanceOf(VolumeInUseError);
    expect(inUse).toMatchObject({ code: AgentErrorCode.VolumeInUse });
    await user.remove();
    await access.removeVolume(name);
    expect(await access.volumeExists(name)).toBe(false);
    await expect(access.removeVolume(name)).rejects.toBeInstanceOf(VolumeNotFoundError);
  });

  it('removes the helpers this host left behind, and only those', async () => {
    const name = unique('leftover');
    await docker.createVolume({ Name: name });
    await access.exportArchive(name); // never closed: as after a crash
    await access.exportArchive(name);
    const foreign = await docker.createContainer({
      Image: engine.image,
      Cmd: ['true'],
      Labels: { [HELPER_LABELS.helper]: '1', [HELPER_LABELS.host]: 'another-host' },
    });
    const removed = await access.removeLeftoverHelpers();
    expect(removed).toHaveLength(2);
    for (const helperName of removed) expect(helperName).toMatch(/^volback-helper-[0-9a-f]{12}$/);
    expect((await helpers()).map((h) => h.Id)).toEqual([foreign.id]);
    await foreign.remove();
    expect(await access.removeLeftoverHelpers()).toEqual([]);
    expect(await access.volumeExists(name)).toBe(true);
  });
});
