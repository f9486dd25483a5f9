import {
  resolveTreePath,
  type BlobSource,
  formatGoTime,
  goModeFromPosix,
  saveTree,
  sha256Hex,
  type BlobSink,
  type TreeNode,
} from '@volback/repository';

/**
 * What a volume snapshot holds, from its root:
 * - `volumes/<name>/…` — the volume's files (the snapshot's `paths` is `/volumes/<name>`);
 * - `.volback/volume.json` — the volume's driver, options and labels, to recreate it;
 * - `.volback/containers.json` — inspect output of the containers that used it, environment
 *   included unless a label or the agent's setting cuts it to names (`recordedContainer`); only
 *   ever inside the encrypted repository, never in events or logs;
 * - `.volback/dumps/<container>.<extension>` — database dumps a container's labels asked for
 *   (`planDumps`), when there are any.
 * `restic restore <id> --include /volumes/<name>` gives back just the data.
 */
export const SNAPSHOT_LAYOUT = {
  volumesDir: 'volumes',
  metadataDir: '.volback',
  volumeFile: 'volume.json',
  containersFile: 'containers.json',
  dumpsDir: 'dumps',
} as const;

/** Where the metadata files sit in a snapshot. */
export const METADATA_PATHS = {
  volume: `/${SNAPSHOT_LAYOUT.metadataDir}/${SNAPSHOT_LAYOUT.volumeFile}`,
  containers: `/${SNAPSHOT_LAYOUT.metadataDir}/${SNAPSHOT_LAYOUT.containersFile}`,
} as const;

/** The volume's settings as recorded in `.volback/volume.json`. */
export interface RecordedVolume {
  readonly name: string;
  readonly driver: string;
  readonly driverOptions: Record<string, string>;
  readonly labels: Record<string, string>;
}

function syntheticNode(name: string, type: 'dir' | 'file', now: Date): TreeNode {
  const time = formatGoTime(BigInt(now.getTime()) * 1_000_000n);
  return {
    name,
    type,
    mode: goModeFromPosix(type === 'dir' ? 0o040755 : 0o100600),
    mtime: time,
    atime: time,
    ctime: time,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    content: null,
  };
}

async function dumpsDirectory(
  sink: BlobSink,
  dumps: readonly StoredDumpFile[],
  now: Date,
): Promise<TreeNode> {
  const dir = syntheticNode(SNAPSHOT_LAYOUT.dumpsDir, 'dir', now);
  dir.mode = goModeFromPosix(0o040700);
  dir.subtree = await saveTree(
    sink,
    dumps.map((d) => ({
      ...syntheticNode(d.fileName, 'file', d.time),
      size: d.size,
      content: [...d.content],
    })),
  );
  return dir;
}

async function jsonFile(sink: BlobSink, name: string, value: unknown, now: Date): Promise<TreeNode> {
  const bytes = Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
  const id = sha256Hex(bytes);
  await sink.saveBlob('data', bytes, id);
  return { ...syntheticNode(name, 'file', now), size: bytes.length, content: bytes.length ? [id] : [] };
}

/** A dump file already stored (its blobs), to be placed in `.volback/dumps/`. */
export interface StoredDumpFile {
  readonly fileName: string;
  readonly content: readonly string[];
  readonly size: number;
  /** When the dump began: the file's mtime. */
  readonly time: Date;
}

/** Writes the snapshot's root tree around the volume's tree (see {@link SNAPSHOT_LAYOUT}); returns its id. */
export async function saveVolumeSnapshotTree(
  sink: BlobSink,
  input: {
    volumeRoot: TreeNode;
    volume: RecordedVolume;
    containers: readonly unknown[];
    dumps?: readonly StoredDumpFile[];
    now: Date;
  },
): Promise<string> {
  const { volumeRoot, volume, containers, now } = input;
  const dumps = input.dumps ?? [];
  const volumes = syntheticNode(SNAPSHOT_LAYOUT.volumesDir, 'dir', now);
  volumes.subtree = await saveTree(sink, [{ ...volumeRoot, name: volume.name }]);
  const metadata = syntheticNode(SNAPSHOT_LAYOUT.metadataDir, 'dir', now);
  metadata.mode = goModeFromPosix(0o040700);
  metadata.subtree = await saveTree(sink, [
    await jsonFile(sink, SNAPSHOT_LAYOUT.volumeFile, volume, now),
    await jsonFile(sink, SNAPSHOT_LAYOUT.containersFile, containers, now),
    ...(dumps.length ? [await dumpsDirectory(sink, dumps, now)] : []),
  ]);
  return saveTree(sink, [volumes, metadata]);
}

/**
 * A metadata file of a snapshot (`METADATA_PATHS`), parsed; undefined when the snapshot has none
 * (restic wrote it, or an older layout) or it is not JSON.
 */
export async function readMetadataJson(store: BlobSource, rootTree: string, path: string): Promise<unknown> {
  try {
    const { node } = await resolveTreePath(store, rootTree, path);
    const parts = await Promise.all((node?.content ?? []).map((id) => store.loadBlob('data', id)));
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
