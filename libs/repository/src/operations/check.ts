import type { RepositoryError } from '../errors.ts';
import { sha256Hex } from '../format/ids.ts';
import type { BlobType } from '../format/pack.ts';
import type { Repository } from '../repository.ts';

/** Options of {@link check}. */
export interface CheckOptions {
  /** Share of packs to read and verify entirely: 0 (structure only) to 1 (`--read-data`). */
  readonly readDataFraction?: number;
  readonly onProgress?: (progress: { phase: string; done: number; total: number }) => void;
}

/** What check found. `ok` is false when anything is damaged or missing. */
export interface CheckReport {
  ok: boolean;
  snapshots: number;
  packs: number;
  packsRead: number;
  blobs: number;
  errors: string[];
  /** Blobs missing or failing verification. */
  damagedBlobs: string[];
  /** Snapshots that refer to a damaged blob (directly or below). */
  damagedSnapshots: string[];
  /** Blobs in packs that no snapshot uses (prune removes them); not an error. */
  unusedBlobs: number;
  /** Packs no index names (left by an interrupted backup); not an error, prune removes them. */
  orphanedPacks: string[];
}

/**
 * Verifies a repository as `restic check` does: every index names packs that exist with the
 * headers they claim, every snapshot's trees load, every referenced blob is indexed; with a
 * read-data share, those packs are read in full and every blob decrypted and hashed.
 */
export async function check(repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const errors: string[] = [];
  const damaged = new Set<string>();
  await repo.loadIndex();

  // Packs on the backend against the index.
  const onBackend = new Map<string, number>();
  for await (const { name, size } of repo.backend.list('data')) onBackend.set(name, size);
  const indexed = repo.index.packs();
  let done = 0;
  for (const [packId, entries] of indexed) {
    options.onProgress?.({ phase: 'packs', done: done++, total: indexed.size });
    if (!onBackend.has(packId)) {
      errors.push(`pack ${packId} is in the index but missing`);
      for (const e of entries) damaged.add(e.id);
      continue;
    }
    try {
      const header = await repo.readPackHeader(packId);
      for (const e of entries) {
        const h = header.find((b) => b.id === e.id && b.type === e.type);
        if (!h || h.offset !== e.offset || h.length !== e.length) {
          errors.push(`pack ${packId}: blob ${e.id} is not where the index says`);
          damaged.add(e.id);
        }
      }
    } catch (error) {
      errors.push(`pack ${packId}: ${(error as Error).message}`);
      for (const e of entries) damaged.add(e.id);
    }
  }
  // Packs no index names come from interrupted backups: harmless, prune removes them (as restic says).
  const orphanedPacks = [...onBackend.keys()].filter((packId) => !indexed.has(packId));

  // Read data of a share of the packs.
  const fraction = Math.min(1, Math.max(0, options.readDataFraction ?? 0));
  const toRead = [...indexed.keys()].filter((id) => onBackend.has(id)).sort();
  const chosen =
    fraction >= 1 ? toRead : toRead.filter((id) => Number.parseInt(id.slice(0, 8), 16) / 2 ** 32 < fraction);
  let packsRead = 0;
  for (const packId of chosen) {
    options.onProgress?.({ phase: 'read-data', done: packsRead, total: chosen.length });
    const bytes = await repo.backend.load({ type: 'data', name: packId });
    packsRead++;
    if (sha256Hex(bytes) !== packId) errors.push(`pack ${packId}: content does not match its name`);
    for (const e of indexed.get(packId) ?? []) {
      try {
        await repo.loadBlob(e.type, e.id);
      } catch (error) {
        errors.push(`pack ${packId}: blob ${e.id}: ${(error as Error).message}`);
        damaged.add(e.id);
      }
    }
  }

  // Snapshots → trees → blobs.
  const snapshots = await repo.listSnapshots();
  const used = new Set<string>();
  const treeDamage = new Map<string, boolean>();
  const walk = async (treeId: string): Promise<boolean> => {
    const cached = treeDamage.get(treeId);
    if (cached !== undefined) return cached;
    used.add(`tree:${treeId}`);
    let bad = false;
    try {
      if (!repo.index.has('tree', treeId)) throw new Error('not in the index');
      for (const node of await repo.loadTree(treeId)) {
        if (node.type === 'file') {
          for (const id of node.content ?? []) {
            used.add(`data:${id}`);
            if (!repo.index.has('data', id)) {
              if (!damaged.has(id)) errors.push(`data blob ${id} (file ${node.name}) is missing`);
              damaged.add(id);
            }
            if (damaged.has(id)) bad = true;
          }
        } else if (node.type === 'dir') {
          if (!node.subtree) {
            errors.push(`tree ${treeId}: directory ${node.name} has no subtree`);
            bad = true;
          } else if (await walk(node.subtree)) bad = true;
        }
      }
    } catch (error) {
      if (!damaged.has(treeId)) errors.push(`tree ${treeId}: ${(error as RepositoryError).message}`);
      damaged.add(treeId);
      bad = true;
    }
    treeDamage.set(treeId, bad);
    return bad;
  };
  const damagedSnapshots: string[] = [];
  for (const [i, { id, snapshot }] of snapshots.entries()) {
    options.onProgress?.({ phase: 'snapshots', done: i, total: snapshots.length });
    if (await walk(snapshot.tree)) damagedSnapshots.push(id);
  }
  let unused = 0;
  for (const entries of indexed.values()) {
    for (const e of entries) if (!used.has(`${e.type satisfies BlobType}:${e.id}`)) unused++;
  }
  return {
    ok: errors.length === 0,
    snapshots: snapshots.length,
    packs: indexed.size,
    packsRead,
    blobs: repo.index.size,
    errors,
    damagedBlobs: [...damaged].sort(),
    damagedSnapshots,
    unusedBlobs: unused,
    orphanedPacks,
  };
}
