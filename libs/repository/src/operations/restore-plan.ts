import { lstat, readdir } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import type { TreeNode } from '../format/tree.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import type { BlobSource } from './blob-ports.ts';
import {
  assertSafeTree,
  childNode,
  namesBelow,
  resolveTreePath,
  type RestoreTreeOptions,
} from './restore.ts';

/** What a dry run finds at a path of the target. */
export type TargetEntryKind = 'missing' | 'dir' | 'other';

/**
 * Reads the target of a dry run; paths are relative to the target, `/`-separated with a leading
 * `/`. A directory (not a symlink to one) is `dir`; everything else that exists is `other`.
 */
export interface TargetProbe {
  kind(path: string): Promise<TargetEntryKind>;
  /** The names in a path `kind` called `dir`. */
  list(path: string): Promise<string[]>;
}

/** Entries of one kind in a {@link RestorePlan}. */
export interface RestorePlanEntries {
  /** How many entries; `paths` lists the first of them. */
  count: number;
  /** Bytes of the files among them (what the snapshot records). */
  bytes: number;
  /** Paths relative to the target (`/2024/01/photo-7.jpg`), a directory with a trailing `/`. */
  paths: string[];
}

/**
 * What a restore would do to its target: entries it would create (`written`), entries already
 * there that it would overwrite (`replaced`; an existing directory the snapshot also holds is
 * kept and not listed), and entries in the directories it restores that the snapshot lacks
 * (`leftAlone`: a restore never removes anything).
 */
export interface RestorePlan {
  written: RestorePlanEntries;
  replaced: RestorePlanEntries;
  leftAlone: RestorePlanEntries;
}

/** Options of {@link planRestore}: those of a restore, plus how many paths to list per kind. */
export type PlanRestoreOptions = Omit<RestoreTreeOptions, 'target' | 'onProgress'> & {
  readonly probe: TargetProbe;
  /** Most paths listed per kind (default 1000); the counts cover every entry. */
  readonly maxListed?: number;
};

/** Entry types a restore writes (sockets and irregular files are skipped, as restic does). */
const RESTORED_TYPES = new Set(['dir', 'file', 'symlink', 'fifo', 'dev', 'chardev']);

/** A probe of a directory on this machine; nothing below it is followed through a symlink. */
export function directoryProbe(target: string): TargetProbe {
  const base = resolve(target);
  return {
    async kind(path) {
      const stats = await lstat(join(base, path)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
        throw error;
      });
      if (!stats) return 'missing';
      return stats.isDirectory() ? 'dir' : 'other';
    },
    async list(path) {
      return (await readdir(join(base, path))).sort();
    },
  };
}

/**
 * A probe of a directory read as a tar stream (a volume exported through the Docker Engine:
 * names `./a/b`, directories `./a/`); reads the whole stream, keeping names and kinds only.
 */
export async function archiveProbe(tar: AsyncIterable<Uint8Array>): Promise<TargetProbe> {
  const kinds = new Map<string, TargetEntryKind>([['/', 'dir']]);
  const children = new Map<string, string[]>();
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const parts = entry.header.name.split('/').filter((part) => part !== '' && part !== '.');
      if (parts.length > 0) {
        const path = `/${parts.join('/')}`;
        if (!kinds.has(path)) {
          const parent = `/${parts.slice(0, -1).join('/')}`;
          children.set(parent, [...(children.get(parent) ?? []), parts.at(-1)!]);
        }
        kinds.set(path, entry.header.type === 'directory' ? 'dir' : 'other');
      }
      entry.resume();
    }
  })();
  await Promise.all([pipeline(Readable.from(tar), reader), done]);
  return {
    kind: async (path) => kinds.get(posix.normalize(path).replace(/(.)\/$/, '$1')) ?? 'missing',
    list: async (path) => [...(children.get(posix.normalize(path).replace(/(.)\/$/, '$1')) ?? [])].sort(),
  };
}

/**
 * A dry run of {@link restoreTree} with the same `tree`, `path` and `root`: reads the snapshot
 * and the target through `probe`, writes nothing, and says what the restore would write,
 * replace and leave alone.
 */
export async function planRestore(source: BlobSource, options: PlanRestoreOptions): Promise<RestorePlan> {
  const max = options.maxListed ?? 1000;
  const empty = (): RestorePlanEntries => ({ count: 0, bytes: 0, paths: [] });
  const plan: RestorePlan = { written: empty(), replaced: empty(), leftAlone: empty() };
  const add = (entries: RestorePlanEntries, path: string, bytes: number) => {
    entries.count++;
    entries.bytes += bytes;
    if (entries.paths.length < max) entries.paths.push(path);
  };
  const { probe } = options;

  const visitTree = async (treeId: string, dir: string, exists: boolean): Promise<void> => {
    const nodes = await source.loadTree(treeId);
    assertSafeTree(nodes, treeId);
    if (exists) {
      const inSnapshot = new Set(nodes.map((n) => n.name));
      for (const name of await probe.list(dir)) {
        if (!inSnapshot.has(name)) add(plan.leftAlone, posix.join(dir, name), 0);
      }
    }
    for (const node of nodes) await visitNode(node, posix.join(dir, node.name), exists);
  };
  const visitNode = async (node: TreeNode, path: string, parentExists: boolean): Promise<void> => {
    if (!RESTORED_TYPES.has(node.type)) return;
    const kind = parentExists ? await probe.kind(path) : 'missing';
    if (node.type !== 'dir') {
      add(
        kind === 'missing' ? plan.written : plan.replaced,
        path,
        node.type === 'file' ? (node.size ?? 0) : 0,
      );
      return;
    }
    if (kind !== 'dir') add(kind === 'missing' ? plan.written : plan.replaced, `${path}/`, 0);
    if (!node.subtree)
      throw new RepositoryError(RepositoryErrorCode.Malformed, `directory ${node.name} has no subtree`);
    await visitTree(node.subtree, path, kind === 'dir');
  };

  const path = options.path ?? '/';
  const root = options.root ?? path;
  const below = namesBelow(root, path);
  const start = await resolveTreePath(source, options.tree, root);
  if (below.length === 0) {
    if (start.node && start.node.type !== 'dir') await visitNode(start.node, `/${start.node.name}`, true);
    else await visitTree(start.tree, '/', (await probe.kind('/')) === 'dir');
    return plan;
  }
  let tree = start.tree;
  let dir = '/';
  let exists = (await probe.kind('/')) === 'dir';
  for (const [i, name] of below.entries()) {
    const node = await childNode(source, tree, name, path);
    const at = posix.join(dir, name);
    if (i === below.length - 1) {
      await visitNode(node, at, exists);
      break;
    }
    if (node.type !== 'dir' || !node.subtree) {
      throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
    }
    const kind = exists ? await probe.kind(at) : 'missing';
    if (kind !== 'dir') add(kind === 'missing' ? plan.written : plan.replaced, `${at}/`, 0);
    exists = kind === 'dir';
    dir = at;
    tree = node.subtree;
  }
  return plan;
}
