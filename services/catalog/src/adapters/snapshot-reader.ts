import { Readable } from 'node:stream';
import { DataPathClient, DataPathError, DataPathErrorCode, GatewayBlobStore } from '@volback/data-path';
import type { NatsConnection } from '@volback/messaging';
import {
  dumpTree,
  loadBlobsFrom,
  RepositoryError,
  RepositoryErrorCode,
  resolveTreePath,
  type BlobSource,
  type BlobType,
  type TreeNode,
} from '@volback/repository';
import type { Glob } from '../domain/glob.ts';
import { diffDirectory, type ChangeKind } from '../domain/snapshot-diff.ts';
import { snapshotTreePath } from '../domain/snapshot-path.ts';
import { CatalogError, CatalogErrorCode, NotFoundError, UnavailableError } from '../errors.ts';
import type { SnapshotDiffView, TreeEntryView } from '../read-model.ts';

/** Which snapshot, in which repository, of which volume. */
export interface SnapshotRef {
  snapshotId: string;
  repositoryId: string;
  volumeName: string;
}

/** Options of {@link SnapshotReader}. */
export interface SnapshotReaderOptions {
  /** Data-path session id: gateways hold one shared repository lock per session while it is active. */
  sessionId: string;
  timeoutMs?: number;
  /** Trees kept in memory (they are immutable, named by their hash). */
  treeCacheSize?: number;
}

/** Most entries a `find` walks before it stops (per request). */
export const FIND_MAX_VISITED = 200_000;

/**
 * Reads snapshots through the storage gateways (the catalog holds no repository key): list a
 * directory, find files by pattern, stream a sub-tree as tar. Trees are cached by id.
 */
export class SnapshotReader {
  readonly #nc: NatsConnection;
  readonly #options: SnapshotReaderOptions;
  readonly #clients = new Map<string, DataPathClient>();
  readonly #stores = new Map<string, Promise<BlobSource>>();
  readonly #roots = new Map<string, string>();
  readonly #trees = new Map<string, TreeNode[]>();

  constructor(nc: NatsConnection, options: SnapshotReaderOptions) {
    this.#nc = nc;
    this.#options = options;
  }

  #client(repositoryId: string): DataPathClient {
    let client = this.#clients.get(repositoryId);
    if (!client) {
      client = new DataPathClient(this.#nc, {
        requester: { kind: 'catalog' },
        repositoryId,
        sessionId: `${this.#options.sessionId}-${repositoryId}`,
        timeoutMs: this.#options.timeoutMs ?? 15_000,
        retries: 1,
      });
      this.#clients.set(repositoryId, client);
    }
    return client;
  }

  #store(repositoryId: string): Promise<BlobSource> {
    let store = this.#stores.get(repositoryId);
    if (!store) {
      store = GatewayBlobStore.open(this.#client(repositoryId)).then((gateway) => this.#caching(gateway));
      store.catch(() => this.#stores.delete(repositoryId));
      this.#stores.set(repositoryId, store);
    }
    return store;
  }

  #caching(gateway: GatewayBlobStore): BlobSource {
    const limit = this.#options.treeCacheSize ?? 10_000;
    return {
      loadBlob: (type: BlobType, id: string) => gateway.loadBlob(type, id),
      loadBlobs: (type: BlobType, ids: readonly string[]) => gateway.loadBlobs(type, ids),
      loadTree: async (id: string) => {
        const cached = this.#trees.get(id);
        if (cached) return cached;
        const nodes = await gateway.loadTree(id);
        if (this.#trees.size >= limit) this.#trees.delete(this.#trees.keys().next().value!);
        this.#trees.set(id, nodes);
        return nodes;
      },
    };
  }

  /** The root tree of a snapshot (asked of a gateway once, then remembered: snapshots never change). */
  async #root(ref: SnapshotRef): Promise<string> {
    const cached = this.#roots.get(ref.snapshotId);
    if (cached) return cached;
    const found = await this.#client(ref.repositoryId).findSnapshot(ref.snapshotId);
    if (!found.tree || found.snapshotId !== ref.snapshotId) {
      throw new NotFoundError(
        CatalogErrorCode.SnapshotNotFound,
        `snapshot ${ref.snapshotId} is not in repository ${ref.repositoryId} (forgotten and pruned?)`,
      );
    }
    this.#roots.set(ref.snapshotId, found.tree);
    return found.tree;
  }

  async #resolve(
    ref: SnapshotRef,
    volumePath: string,
  ): Promise<{ store: BlobSource; root: string; node?: TreeNode; tree: string }> {
    return this.#guard(async () => {
      const store = await this.#store(ref.repositoryId);
      const root = await this.#root(ref);
      try {
        const { tree, node } = await resolveTreePath(
          store,
          root,
          snapshotTreePath(ref.volumeName, volumePath),
        );
        return { store, root, tree, ...(node ? { node } : {}) };
      } catch (error) {
        if (error instanceof RepositoryError && error.code === RepositoryErrorCode.FileNotFound) {
          throw new NotFoundError(
            CatalogErrorCode.PathNotFound,
            `${volumePath} is not in snapshot ${ref.snapshotId}`,
            {
              cause: error,
            },
          );
        }
        throw error;
      }
    });
  }

  /** The entries of a directory (or the one entry of a file) at a volume-relative path. */
  async list(ref: SnapshotRef, volumePath: string): Promise<TreeEntryView[]> {
    const { store, node, tree } = await this.#resolve(ref, volumePath);
    if (node && node.type !== 'dir') return [entry(node, volumePath)];
    const children = await this.#guard(() => store.loadTree(tree));
    const prefix = volumePath === '/' ? '' : volumePath;
    return children.map((child) => entry(child, `${prefix}/${child.name}`));
  }

  /**
   * Files matching `glob` under the volume root of a snapshot, depth first in name order, at most
   * `limit`; walks at most {@link FIND_MAX_VISITED} entries.
   */
  async find(
    ref: SnapshotRef,
    glob: Glob,
    limit: number,
  ): Promise<{ entries: TreeEntryView[]; truncated: boolean }> {
    const { store, tree } = await this.#resolve(ref, '/');
    const entries: TreeEntryView[] = [];
    let visited = 0;
    const walk = async (treeId: string, prefix: string): Promise<boolean> => {
      for (const child of await store.loadTree(treeId)) {
        if (++visited > FIND_MAX_VISITED) return false;
        const path = `${prefix}/${child.name}`;
        if (glob.matches(path)) {
          entries.push(entry(child, path));
          if (entries.length >= limit) return false;
        }
        if (child.type === 'dir' && child.subtree && !(await walk(child.subtree, path))) return false;
      }
      return true;
    };
    const complete = await this.#guard(() => walk(tree, ''));
    return { entries, truncated: !complete };
  }

  /** A sub-tree as a tar stream, names relative to `volumePath` (a file: just that file). */
  async tar(ref: SnapshotRef, volumePath: string): Promise<Readable> {
    const { store, root } = await this.#resolve(ref, volumePath);
    return this.#guard(() => dumpTree(store, root, snapshotTreePath(ref.volumeName, volumePath)));
  }

  /** A file's content as a stream of its blobs, in order. */
  async file(ref: SnapshotRef, volumePath: string): Promise<{ size: number; stream: Readable }> {
    const { store, node } = await this.#resolve(ref, volumePath);
    if (!node || node.type !== 'file') {
      throw new NotFoundError(
        CatalogErrorCode.PathNotFound,
        `${volumePath} is not a file in snapshot ${ref.snapshotId}`,
      );
    }
    const blobs = await this.#guard(async () => loadBlobsFrom(store, 'data', node.content ?? [], node.size));
    return { size: node.size ?? 0, stream: Readable.from(blobs) };
  }

  /**
   * What changed from snapshot `before` to `after` (see {@link diffDirectory}), paths in name
   * order, at most `limit` entries; identical subtrees (same id) are never read.
   */
  async diff(before: SnapshotRef, after: SnapshotRef, limit: number): Promise<SnapshotDiffView> {
    const a = await this.#resolve(before, '/');
    const b = await this.#resolve(after, '/');
    const out: SnapshotDiffView = { added: [], removed: [], changed: [], truncated: false };
    let count = 0;
    const full = () => (count >= limit ? ((out.truncated = true), true) : false);
    const walk = async (beforeTree: string, afterTree: string, prefix: string): Promise<boolean> => {
      const [was, is] = await Promise.all([a.store.loadTree(beforeTree), b.store.loadTree(afterTree)]);
      const level = diffDirectory(was, is);
      for (const node of level.removed) {
        if (full()) return false;
        out.removed.push(entry(node, `${prefix}/${node.name}`));
        count++;
      }
      for (const node of level.added) {
        if (full()) return false;
        out.added.push(entry(node, `${prefix}/${node.name}`));
        count++;
      }
      for (const c of level.changed) {
        if (full()) return false;
        out.changed.push(changed(c.before, c.after, c.kind, `${prefix}/${c.after.name}`));
        count++;
      }
      for (const d of level.descend)
        if (!(await walk(d.before, d.after, `${prefix}/${d.name}`))) return false;
      return true;
    };
    if (a.tree !== b.tree) await this.#guard(() => walk(a.tree, b.tree, ''));
    const byPath = (x: { path: string }, y: { path: string }) =>
      x.path < y.path ? -1 : x.path > y.path ? 1 : 0;
    out.added.sort(byPath);
    out.removed.sort(byPath);
    out.changed.sort(byPath);
    return out;
  }

  /** Maps data-path failures to catalog errors (503 for unreachable gateways). */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof CatalogError) throw error;
      if (error instanceof DataPathError) {
        if (error.code === DataPathErrorCode.NotFound) {
          throw new NotFoundError(CatalogErrorCode.SnapshotNotFound, 'the repository does not hold it', {
            cause: error,
          });
        }
        throw new UnavailableError(
          CatalogErrorCode.RepositoryUnavailable,
          error.code === DataPathErrorCode.NoGateway || error.code === DataPathErrorCode.Timeout
            ? 'no storage gateway answered'
            : `the storage gateway could not serve the request (${error.code})`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function changed(before: TreeNode, after: TreeNode, kind: ChangeKind, path: string) {
  return {
    path,
    kind,
    type: after.type,
    sizeBefore: before.type === 'file' ? (before.size ?? 0) : null,
    sizeAfter: after.type === 'file' ? (after.size ?? 0) : null,
    mtimeBefore: before.mtime ?? null,
    mtimeAfter: after.mtime ?? null,
  };
}

function entry(node: TreeNode, path: string): TreeEntryView {
  return {
    name: node.name,
    path,
    type: node.type,
    size: node.type === 'file' ? (node.size ?? 0) : null,
    mode: node.mode ?? null,
    mtime: node.mtime ?? null,
    uid: node.uid,
    gid: node.gid,
    linkTarget: node.linktarget ?? null,
  };
}
