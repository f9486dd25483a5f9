import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { extract } from 'tar-stream';
import { describe, expect, inject, it } from 'vitest';
import { DockerEngineStartError, startDockerEngine, type DockerEngine } from './docker-engine.ts';
import { mountsUnder } from './mounts.ts';
import { isAlive, pidsMentioning } from './processes.ts';

interface ArchivedFile {
  readonly type: string;
  readonly content: Buffer;
  readonly linkname?: string;
}

/** Entries of a tar stream by name, with their contents. */
async function readTar(archive: NodeJS.ReadableStream): Promise<Map<string, ArchivedFile>> {
  const files = new Map<string, ArchivedFile>();
  const tar = extract();
  archive.pipe(tar);
  for await (const entry of tar) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const { name, type, linkname } = entry.header;
    files.set(name, {
      type: type ?? 'file',
      content: Buffer.concat(chunks),
      ...(linkname ? { linkname } : {}),
    });
  }
  return files;
}

function sharedEngine(): { docker: Dockerode; image: string } {
  const harness = inject('harness');
  return { docker: new Dockerode({ socketPath: harness.dockerSocketPath }), image: harness.dockerImage };
}

async function runToCompletion(
  docker: Dockerode,
  options: Dockerode.ContainerCreateOptions,
): Promise<number> {
  const container = await docker.createContainer(options);
  try {
    await container.start();
    return ((await container.wait()) as { StatusCode: number }).StatusCode;
  } finally {
    await container.remove({ force: true });
  }
}

async function volumeNames(docker: Dockerode): Promise<string[]> {
  return ((await docker.listVolumes()).Volumes ?? []).map((volume) => volume.Name).sort();
}

const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

const NUMBERS = Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join('');

describe('docker-engine harness', () => {
  it('has no bridge network and runs containers with loopback only', async () => {
    const { docker, image } = sharedEngine();
    const networks = (await docker.listNetworks()).map((network) => network.Name).sort();
    expect(networks).toEqual(['host', 'none']);

    const status = await runToCompletion(docker, {
      Image: image,
      Cmd: ['sh', '-c', '[ "$(ls /sys/class/net)" = lo ]'],
      HostConfig: { NetworkMode: 'none' },
    });
    expect(status).toBe(0);
  });

  it('writes a volume from a container and reads it back through a never-started helper', async () => {
    const { docker, image } = sharedEngine();
    const volume = unique('harness-volume');
    await docker.createVolume({ Name: volume });
    let helper: Dockerode.Container | undefined;
    try {
      const written = await runToCompletion(docker, {
        Image: image,
        Cmd: [
          'sh',
          '-c',
          [
            "printf 'hello volback\\n' > /data/hello.txt",
            'mkdir /data/nested',
            "printf '\\000\\001\\002\\377' > /data/nested/bytes.bin",
            'seq 1 2000 > /data/nested/numbers.txt',
            'ln -s hello.txt /data/link',
          ].join(' && '),
        ],
        HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/data`] },
      });
      expect(written).toBe(0);

      helper = await docker.createContainer({
        Image: image,
        HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/data:ro`] },
      });
      const files = await readTar(await helper.getArchive({ path: '/data' }));

      expect((await helper.inspect()).State.Status).toBe('created');
      expect([...files.keys()].sort()).toEqual([
        'data/',
        'data/hello.txt',
        'data/link',
        'data/nested/',
        'data/nested/bytes.bin',
        'data/nested/numbers.txt',
      ]);
      expect(files.get('data/hello.txt')?.content.toString()).toBe('hello volback\n');
      expect(files.get('data/nested/bytes.bin')?.content).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(files.get('data/nested/numbers.txt')?.content.toString()).toBe(NUMBERS);
      expect(files.get('data/link')).toMatchObject({ type: 'symlink', linkname: 'hello.txt' });
      expect(files.get('data/nested/')?.type).toBe('directory');
    } finally {
      await helper?.remove({ force: true });
      await docker.getVolume(volume).remove();
    }
  });

  it('runs engines side by side, each with only its own volumes, and stops them without leftovers', async () => {
    const engines = await Promise.all([startDockerEngine(), startDockerEngine()]);
    const [first, second] = engines as [DockerEngine, DockerEngine];
    let sleeperPid = 0;
    try {
      expect(first.socketPath).not.toBe(second.socketPath);
      await first.docker.createVolume({ Name: 'only-on-first' });
      await second.docker.createVolume({ Name: 'only-on-second' });

      expect((await first.docker.info()).Driver).toBe(first.storageDriver);
      expect(await volumeNames(first.docker)).toEqual(['only-on-first']);
      expect(await volumeNames(second.docker)).toEqual(['only-on-second']);
      const shared = await volumeNames(sharedEngine().docker);
      expect(shared).not.toContain('only-on-first');
      expect(shared).not.toContain('only-on-second');

      // A container still running when its engine stops must not outlive it.
      const sleeper = await second.docker.createContainer({
        Image: second.image,
        Cmd: ['sleep', '600'],
        HostConfig: { NetworkMode: 'none', Binds: ['only-on-second:/data'] },
      });
      await sleeper.start();
      sleeperPid = (await sleeper.inspect()).State.Pid;
      expect(await isAlive(sleeperPid)).toBe(true);
      expect(await mountsUnder(second.rootDir)).not.toEqual([]);
    } finally {
      await Promise.all(engines.map((engine) => engine.stop()));
    }

    expect(await isAlive(sleeperPid)).toBe(false);
    for (const engine of engines) {
      expect(await isAlive(engine.pid)).toBe(false);
      expect(await isAlive(engine.containerdPid)).toBe(false);
      expect(await pidsMentioning(`${engine.rootDir}/`)).toEqual([]);
      expect(await mountsUnder(engine.rootDir)).toEqual([]);
      expect(existsSync(engine.rootDir)).toBe(false);
      await expect(engine.docker.ping()).rejects.toThrow();
    }
  });

  it('fails to start with its logs kept and nothing else left behind', async () => {
    const failure = await startDockerEngine({ storageDriver: 'no-such-driver' }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DockerEngineStartError);
    const { rootDir, code } = failure as DockerEngineStartError;
    try {
      expect(code).toBe('VOLBACK_DOCKER_ENGINE_START');
      expect(await readFile(join(rootDir, 'dockerd.log'), 'utf8')).toMatch(/no-such-driver/);
      expect(await pidsMentioning(`${rootDir}/`)).toEqual([]);
      expect(await mountsUnder(rootDir)).toEqual([]);
      expect(existsSync(join(rootDir, 'data'))).toBe(false);
    } finally {
      await rm(rootDir, { recursive: true, force: true });
    }
  });
});
