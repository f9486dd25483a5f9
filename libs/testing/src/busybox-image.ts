import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { pack } from 'tar-stream';
import { BUSYBOX, resolveBinary } from '@volback/process';

const run = promisify(execFile);

/** Repository and tag of the image every engine we start holds; no registry is reachable. */
export const BUSYBOX_REPOSITORY = 'volback-test/busybox';
export const BUSYBOX_TAG = 'latest';
export const BUSYBOX_IMAGE = `${BUSYBOX_REPOSITORY}:${BUSYBOX_TAG}`;

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\n';

/**
 * The root file system of a minimal image, as a tar: the static busybox, a symlink per applet in
 * /bin, a writable /tmp and just enough of /etc for user names to resolve.
 */
export async function busyboxRootfs(busybox = resolveBinary(BUSYBOX)): Promise<Buffer> {
  const [binary, { stdout }] = await Promise.all([readFile(busybox), run(busybox, ['--list'])]);
  const applets = stdout
    .split('\n')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'busybox');
  const tar = pack();
  tar.entry({ name: 'bin/', type: 'directory', mode: 0o755 });
  tar.entry({ name: 'bin/busybox', mode: 0o755 }, binary);
  for (const applet of applets)
    tar.entry({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox', mode: 0o777 });
  tar.entry({ name: 'etc/', type: 'directory', mode: 0o755 });
  tar.entry({ name: 'etc/passwd', mode: 0o644 }, PASSWD);
  tar.entry({ name: 'etc/group', mode: 0o644 }, GROUP);
  tar.entry({ name: 'root/', type: 'directory', mode: 0o700 });
  tar.entry({ name: 'tmp/', type: 'directory', mode: 0o1777 });
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `docker import` of {@link busyboxRootfs} as {@link BUSYBOX_IMAGE}, with `sh` as its command. */
export async function importBusyboxImage(docker: Dockerode): Promise<string> {
  const rootfs = await busyboxRootfs();
  const progress = await docker.importImage(Readable.from([rootfs]), {
    repo: BUSYBOX_REPOSITORY,
    tag: BUSYBOX_TAG,
    changes: 'CMD ["sh"]',
  });
  // The engine reports a failed import inside the progress stream, not as an HTTP status.
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(progress, (error, output) => (error ? reject(error) : resolve(output))),
  );
  await docker.getImage(BUSYBOX_IMAGE).inspect();
  return BUSYBOX_IMAGE;
}
