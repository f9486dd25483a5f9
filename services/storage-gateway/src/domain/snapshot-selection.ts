import { hostIdTag } from '@volback/contracts';
import type { Snapshot } from '@volback/repository';

/** A snapshot file and its id. */
export interface StoredSnapshot {
  readonly id: string;
  readonly snapshot: Snapshot;
  /**
   * Its recorded `time` as nanoseconds since the epoch, read by the adapter that loaded it (restic
   * writes Go's RFC 3339 with nanoseconds and any offset); absent when it cannot be read.
   */
  readonly timeNs?: bigint;
}

/** What `find-snapshot` asks for. */
export interface SnapshotQuery {
  /** Id, unique id prefix, or `latest`. */
  readonly ref: string;
  readonly hostname?: string;
  /** A path the snapshot records among its `paths`. */
  readonly path?: string;
  /** Tags the snapshot carries, all of them. */
  readonly tags?: readonly string[];
  /** For `latest`: only snapshots this predicate keeps (those the requester may read). */
  readonly readable?: (snapshot: StoredSnapshot) => boolean;
}

/** The outcome of a query: one snapshot, none, or a prefix that names several. */
export type SnapshotSelection =
  | { kind: 'found'; snapshot: StoredSnapshot }
  | { kind: 'none' }
  | { kind: 'ambiguous'; count: number }
  | { kind: 'invalid'; reason: string };

/** Nanoseconds since the epoch; unreadable times sort first. */
function timeKey(snapshot: StoredSnapshot): bigint {
  return snapshot.timeNs ?? -(2n ** 80n);
}

/**
 * Picks a snapshot as restic does: `latest` is the newest (by recorded time) of those matching the
 * host, path and tag filter; anything else is an id or unique id prefix (filters do not apply).
 */
export function selectSnapshot(all: readonly StoredSnapshot[], query: SnapshotQuery): SnapshotSelection {
  if (query.ref === 'latest') {
    let best: StoredSnapshot | undefined;
    for (const s of all) {
      if (query.readable && !query.readable(s)) continue;
      if (query.hostname !== undefined && s.snapshot.hostname !== query.hostname) continue;
      if (query.path !== undefined && !s.snapshot.paths.includes(query.path)) continue;
      if (query.tags?.some((tag) => !s.snapshot.tags?.includes(tag))) continue;
      if (!best || timeKey(s) > timeKey(best)) best = s;
    }
    return best ? { kind: 'found', snapshot: best } : { kind: 'none' };
  }
  if (!/^[0-9a-f]{1,64}$/.test(query.ref)) {
    return {
      kind: 'invalid',
      reason: `not a snapshot id, id prefix or "latest": ${JSON.stringify(query.ref)}`,
    };
  }
  const found = all.filter((s) => s.id.startsWith(query.ref));
  if (found.length === 1) return { kind: 'found', snapshot: found[0]! };
  return found.length === 0 ? { kind: 'none' } : { kind: 'ambiguous', count: found.length };
}

/** True when two snapshots record the same backup (a commit sent twice). */
export function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  const list = (x: readonly string[] | null | undefined) => JSON.stringify(x ?? []);
  return (
    a.tree === b.tree &&
    a.time === b.time &&
    (a.hostname ?? '') === (b.hostname ?? '') &&
    (a.parent ?? null) === (b.parent ?? null) &&
    list(a.paths) === list(b.paths) &&
    list(a.tags) === list(b.tags)
  );
}

const HOST_ID_TAG = hostIdTag('');

/**
 * The host a snapshot belongs to: its `host-id:` tag (which the gateway sets from the committing
 * agent's subject), else, for snapshots written before that tag, its `hostname`.
 */
export function snapshotHostId(snapshot: Snapshot): string {
  const tag = snapshot.tags?.find((t) => t.startsWith(HOST_ID_TAG));
  return tag === undefined ? (snapshot.hostname ?? '') : tag.slice(HOST_ID_TAG.length);
}

/**
 * The tags of a snapshot committed by host `hostId`'s agent: its own `host-id:` tag, whatever the
 * request said (a request may not speak for another host), the other tags as asked and in order.
 */
export function tagsOfCommit(requested: readonly string[] | undefined, hostId: string): string[] {
  const own = hostIdTag(hostId);
  const tags = (requested ?? []).filter((t) => t === own || !t.startsWith(HOST_ID_TAG));
  return tags.includes(own) ? tags : [...tags, own];
}
