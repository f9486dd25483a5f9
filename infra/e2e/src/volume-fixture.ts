import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';

const run = promisify(execFile);

/**
 * A shell script (busybox sh) that fills `/v` with every kind of entry a volume holds: nested
 * directories, a multi-chunk file, a sparse file, hardlinks, relative and dangling symlinks, a
 * fifo, unicode and 255-byte names, empty files and directories, odd modes and owners, old times.
 */
export const FILL_VOLUME_SCRIPT = `
set -e
cd /v
mkdir -p app/config/nested/deeper empty-dir
dd if=/dev/urandom of=app/big.bin bs=1024 count=\${BIG_KIB:-6144} 2>/dev/null
yes 'GET /health 200' | head -n 100000 > app/compressible.log
truncate -s 3M app/sparse.img
printf 'tail data' >> app/sparse.img
: > app/empty
echo leaf > app/config/nested/deeper/leaf.txt
echo 'shared by two names' > app/hard-a
ln app/hard-a app/config/hard-b
ln -s config/settings.json app/link-relative
ln -s does/not/exist app/link-dangling
echo '{"volback":true}' > app/config/settings.json
mkfifo app/queue.fifo
echo 'unicode name' > 'app/ünïcødé ✓ 名前.txt'
echo 'a long name' > "app/$(printf 'L%.0s' $(seq 1 255))"
printf '#!/bin/sh\\necho hi\\n' > app/script.sh
chmod 4755 app/script.sh
chmod 640 app/config/settings.json
chmod 1777 empty-dir
chown 1234:5678 app/config/settings.json
touch -d '2002-03-04 05:06:07' app/config/nested/deeper/leaf.txt
touch -d '2011-01-01 00:00:00' app/config/nested
`;

/**
 * Lists a tree as comparable lines: path, type+mode (hex), uid, gid, size (files), mtime (not for
 * symlinks, whose time a restore may not keep), link count (files), link target, and an md5 of
 * each file's bytes. The same script runs in busybox and with GNU tools on the host.
 */
export const LIST_TREE_SCRIPT = `
cd "$1" || exit 1
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
  if [ -L "$p" ]; then
    printf '%s symlink %s %s\\n' "$p" "$(stat -c '%u %g' "$p")" "$(readlink "$p")"
  elif [ -f "$p" ]; then
    printf '%s %s %s\\n' "$p" "$(stat -c '%f %u %g %s %Y %h' "$p")" "$(md5sum < "$p" | cut -c1-32)"
  elif [ -d "$p" ]; then
    printf '%s %s\\n' "$p" "$(stat -c '%f %u %g' "$p")"
  else
    printf '%s %s\\n' "$p" "$(stat -c '%f %u %g %Y' "$p")"
  fi
done
`;

/** Runs a busybox container with `volume` at `/v` to completion; returns its output. */
export async function runInVolume(
  docker: Dockerode,
  image: string,
  volume: string,
  script: string,
  env: string[] = [],
): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: ['sh', '-c', script, 'sh', '/v'],
    Env: env,
    HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/v`] },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    const text = demux(logs);
    if (StatusCode !== 0) throw new Error(`script failed (${StatusCode}) in volume ${volume}: ${text}`);
    return text;
  } finally {
    await container.remove({ force: true });
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
function demux(buffer: Buffer): string {
  let out = '';
  for (let offset = 0; offset + 8 <= buffer.length;) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return out;
}

/** The same listing of a directory on this machine (GNU tools), e.g. what `restic restore` wrote. */
export async function listHostTree(dir: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', LIST_TREE_SCRIPT, 'sh', dir], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * Volumes `names`, each with `mib` MiB of random data and its own name in `/v/name`, each used by
 * a running container labelled to be backed up every 3 seconds (`volback.schedule`) and with the
 * container labels `labels` besides.
 */
export async function createScheduledVolumes(
  docker: Dockerode,
  image: string,
  names: readonly string[],
  mib: number,
  labels: Record<string, string> = {},
): Promise<void> {
  for (const volume of names) {
    await docker.createVolume({ Name: volume });
    await runInVolume(
      docker,
      image,
      volume,
      `dd if=/dev/urandom of=/v/data.bin bs=1048576 count=${mib} 2>/dev/null && echo ${volume} > /v/name`,
    );
    const app = await docker.createContainer({
      name: `app-${volume}`,
      Image: image,
      Cmd: ['sleep', '3600'],
      Labels: { 'volback.schedule': '*/3 * * * * *', ...labels },
      HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/data`] },
    });
    await app.start();
  }
}
