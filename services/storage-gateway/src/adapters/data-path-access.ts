import type { DataRequester, RestoreGrant } from '@volback/contracts';
import { DataPathError, DataPathErrorCode } from '@volback/data-path';
import { decodeTree, IdTable, type TreeNode } from '@volback/repository';
import { loadQueued } from '../domain/reachability.ts';
import { snapshotHostId, type StoredSnapshot } from '../domain/snapshot-selection.ts';

/** What {@link DataPathAccess} reads of the repository. */
export interface AccessRepository {
  snapshots(): Promise<readonly StoredSnapshot[]>;
  loadTree(id: string): Promise<readonly TreeNode[]>;
}

/** Where grants come from (`RestoreGrants` of libs/messaging). */
export interface GrantSource {
  get(restoreId: string): Promise<RestoreGrant | undefined>;
}

/** Options of {@link DataPathAccess}. */
export interface DataPathAccessOptions {
  readonly repository: AccessRepository;
  readonly grants: GrantSource;
  /** Milliseconds since the epoch (tests pass their own). */
  readonly clock?: () => number;
  /** A requester's record of what it may read is dropped after this long unused (default 15 min). */
  readonly idleMs?: number;
  /** A grant read from KV is trusted this long before it is read again (default 10 s). */
  readonly grantCacheMs?: number;
}

const DATA = 0;
const TREE = 1;
const kindOf = (type: 'data' | 'tree') => (type === 'tree' ? TREE : DATA);
/** Trees a read scope's walk asks of the repository at once (more than the gateway reads at once). */
const WALK_LOADS = 64;

/**
 * What one requester may read in one context (its own host's snapshots, or one granted
 * snapshot): the blobs reachable from its roots, as far as they are known. Serving a tree makes
 * its children readable; a blob not yet known is looked for by walking the roots' trees. The
 * blobs known are packed ids, not strings: a scope reaching a whole volume's snapshot knows every
 * one of its blobs (500,000 ids took 48 MiB of heap as strings in a `Set`, 21 MiB packed).
 */
class ReadScope {
  /** The blobs known readable, data (kind 0) and trees (kind 1). */
  readonly #known = new IdTable();
  /** Trees whose whole subtree is recorded. */
  readonly #complete = new IdTable();
  /** Roots (snapshot ids) walked in full. */
  readonly #walked = new Set<string>();
  #walking: Promise<unknown> = Promise.resolve();
  readonly roots: () => Promise<readonly StoredSnapshot[]>;
  touched: number;

  constructor(roots: () => Promise<readonly StoredSnapshot[]>, now: number) {
    this.roots = roots;
    this.touched = now;
  }

  has(type: 'data' | 'tree', id: string): boolean {
    return this.#known.has(kindOf(type), id);
  }

  /** Makes a snapshot's root tree readable here. */
  allowTree(id: string): void {
    this.#known.add(TREE, id);
  }

  record(nodes: readonly TreeNode[]): string[] {
    const subtrees: string[] = [];
    for (const node of nodes) {
      if (node.type === 'file') for (const id of node.content ?? []) this.#known.add(DATA, id);
      else if (node.type === 'dir' && node.subtree) {
        this.#known.add(TREE, node.subtree);
        subtrees.push(node.subtree);
      }
    }
    return subtrees;
  }

  /** True when every id is readable here, walking the roots not walked yet to find out. */
  covers(
    type: 'data' | 'tree',
    ids: readonly string[],
    load: AccessRepository['loadTree'],
  ): Promise<boolean> {
    const missing = () => ids.filter((id) => !this.has(type, id));
    if (missing().length === 0) return Promise.resolve(true);
    // One walk at a time per scope: concurrent misses wait for it rather than walk twice.
    const result = this.#walking.then(async () => {
      for (const root of await this.roots()) {
        if (missing().length === 0) return true;
        if (this.#walked.has(root.id)) continue;
        this.allowTree(root.snapshot.tree);
        await this.#walk(root.snapshot.tree, load);
        this.#walked.add(root.id);
      }
      return missing().length === 0;
    });
    this.#walking = result.catch(() => undefined);
    return result;
  }

  /**
   * Records every tree below `rootId` and the data they name, breadth first, at most
   * {@link WALK_LOADS} trees asked of the repository at once: a volume's snapshot has tens of
   * thousands of directories, and a call waiting per directory held them all at once. Trees
   * recorded in full by an earlier walk ({@link #complete}) are skipped; this walk's trees join
   * them only once it has loaded every one, so a walk that fails leaves nothing marked complete
   * that is not.
   */
  async #walk(rootId: string, load: AccessRepository['loadTree']): Promise<void> {
    const seen = new IdTable();
    const queue: string[] = [];
    const visit = (id: string) => {
      if (!this.#complete.has(TREE, id) && seen.add(TREE, id)) queue.push(id);
    };
    visit(rootId);
    await loadQueued(queue, WALK_LOADS, load, (_, nodes) => {
      for (const subtree of this.record(nodes)) visit(subtree);
    });
    for (let row = 0; row < seen.rows; row++) this.#complete.add(TREE, seen.id(row));
  }
}

const forbidden = (message: string) => new DataPathError(DataPathErrorCode.Forbidden, message);

/**
 * Who may read what on the data path (SECURITY-PLAN §4). The requester comes from the subject.
 * The catalog reads anything (it serves tar downloads to authenticated API users). Agent H reads
 * the snapshots of host H, and a snapshot of another host only with a grant of the catalog (KV
 * `VOLBACK_GRANTS`, named by `Volback-Grant`) for H and that snapshot, unexpired; of either, only
 * the blobs the snapshot reaches.
 *
 * Each gateway keeps, per requester and grant, the blobs known readable: the root tree of a
 * snapshot it found for the requester, then the children of every tree it served. A request that
 * reached another gateway first (any gateway serves any request) is checked by walking the
 * readable snapshots' trees here once.
 */
export class DataPathAccess {
  readonly #repository: AccessRepository;
  readonly #grants: GrantSource;
  readonly #clock: () => number;
  readonly #idleMs: number;
  readonly #grantCacheMs: number;
  readonly #scopes = new Map<string, ReadScope>();
  readonly #grantCache = new Map<string, { grant: RestoreGrant | undefined; at: number }>();

  constructor(options: DataPathAccessOptions) {
    this.#repository = options.repository;
    this.#grants = options.grants;
    this.#clock = options.clock ?? Date.now;
    this.#idleMs = options.idleMs ?? 15 * 60_000;
    this.#grantCacheMs = options.grantCacheMs ?? 10_000;
  }

  /** For `find-snapshot latest`: the snapshots the requester may pick among (all for the catalog). */
  readable(requester: DataRequester): ((snapshot: StoredSnapshot) => boolean) | undefined {
    if (requester.kind !== 'host') return undefined;
    return (s) => snapshotHostId(s.snapshot) === requester.hostId;
  }

  /** A snapshot `find-snapshot` found: its tree becomes readable, or `FORBIDDEN`. */
  async admitSnapshot(
    requester: DataRequester,
    grantId: string | undefined,
    found: StoredSnapshot,
  ): Promise<void> {
    if (requester.kind !== 'host') return;
    const { hostId } = requester;
    if (snapshotHostId(found.snapshot) === hostId) {
      this.#hostScope(hostId).allowTree(found.snapshot.tree);
      return;
    }
    const granted = grantId === undefined ? undefined : await this.#grantScope(hostId, grantId);
    if (granted?.snapshotId === found.id) {
      granted.scope.allowTree(found.snapshot.tree);
      return;
    }
    throw forbidden(
      `snapshot ${found.id} is not one of host ${JSON.stringify(hostId)}'s, and no grant of the catalog${grantId === undefined ? '' : ` (${grantId})`} lets this host read it`,
    );
  }

  /**
   * Before `load-blob(s)`: the scope the blobs are read in (undefined for the catalog), or
   * `FORBIDDEN` when one of them is in no snapshot the requester may read.
   */
  async admitBlobs(
    requester: DataRequester,
    grantId: string | undefined,
    type: 'data' | 'tree',
    ids: readonly string[],
  ): Promise<ReadScope | undefined> {
    if (requester.kind !== 'host') return undefined;
    const { hostId } = requester;
    const load = (id: string) => this.#repository.loadTree(id);
    const granted = grantId === undefined ? undefined : await this.#grantScope(hostId, grantId);
    if (granted && (await granted.scope.covers(type, ids, load))) return granted.scope;
    const own = this.#hostScope(hostId);
    if (await own.covers(type, ids, load)) return own;
    const outside = ids.find((id) => !own.has(type, id) && !granted?.scope.has(type, id));
    throw forbidden(
      `${type} blob ${outside ?? ids[0]} is in no snapshot of host ${JSON.stringify(hostId)}${granted ? ' nor in the snapshot its grant names' : ''}`,
    );
  }

  /** Blobs served in `scope`: the children of served trees become readable there. */
  served(
    scope: ReadScope | undefined,
    type: 'data' | 'tree',
    ids: readonly string[],
    blobs: readonly Uint8Array[],
  ): void {
    if (!scope || type !== 'tree') return;
    blobs.forEach((blob, i) => scope.record(decodeTree(blob, ids[i]!)));
  }

  /** Trees served in `scope` with their nodes (read already): their children become readable there. */
  servedTrees(
    scope: ReadScope | undefined,
    trees: ReadonlyArray<{ readonly nodes: readonly TreeNode[] }>,
  ): void {
    if (!scope) return;
    for (const { nodes } of trees) scope.record(nodes);
  }

  #hostScope(hostId: string): ReadScope {
    return this.#scope(`host:${hostId}`, async () =>
      // Newest first: a backup's parent or a restore's snapshot is most likely a recent one.
      (await this.#repository.snapshots()).filter((s) => snapshotHostId(s.snapshot) === hostId).toReversed(),
    );
  }

  async #grantScope(
    hostId: string,
    grantId: string,
  ): Promise<{ scope: ReadScope; snapshotId: string } | undefined> {
    const grant = await this.#grant(grantId);
    if (!grant || grant.hostId !== hostId || Date.parse(grant.expiresAt) <= this.#clock()) return undefined;
    const scope = this.#scope(`grant:${grantId}:${hostId}:${grant.snapshotId}`, async () =>
      (await this.#repository.snapshots()).filter((s) => s.id === grant.snapshotId),
    );
    return { scope, snapshotId: grant.snapshotId };
  }

  async #grant(grantId: string): Promise<RestoreGrant | undefined> {
    const now = this.#clock();
    const cached = this.#grantCache.get(grantId);
    if (cached && now - cached.at < this.#grantCacheMs) return cached.grant;
    const grant = await this.#grants.get(grantId);
    this.#grantCache.set(grantId, { grant, at: now });
    for (const [id, entry] of this.#grantCache)
      if (now - entry.at >= this.#grantCacheMs) this.#grantCache.delete(id);
    return grant;
  }

  #scope(key: string, roots: () => Promise<readonly StoredSnapshot[]>): ReadScope {
    const now = this.#clock();
    for (const [k, scope] of this.#scopes) if (now - scope.touched > this.#idleMs) this.#scopes.delete(k);
    let scope = this.#scopes.get(key);
    if (!scope) {
      scope = new ReadScope(roots, now);
      this.#scopes.set(key, scope);
    }
    scope.touched = now;
    return scope;
  }
}
