import type { IndexEntry } from '../format/index-file.ts';
import type { Repository } from '../repository.ts';

/** Options of {@link prune}. */
export interface PruneOptions {
  /** Unused share of a pack tolerated before it is repacked (restic `--max-unused`, per pack here). */
  readonly maxUnusedFraction?: number;
  readonly dryRun?: boolean;
}

/** What prune did (or would do). */
export interface PruneSummary {
  packsDeleted: number;
  packsRepacked: number;
  /** Half-written files of killed writers removed from the backend's staging area. */
  temporaryFilesRemoved: number;
  /** Packs no index named (left by interrupted backups), deleted too. */
  orphanedPacksDeleted: number;
  blobsRemoved: number;
  bytesFreed: number;
  durationMs: number;
}

/**
 * Removes data no snapshot uses, under an exclusive lock, in restic's crash-safe order: write the
 * repacked packs, then one new index for everything kept (superseding the old ones), then delete
 * the old index files, and only then the packs. A crash at any step leaves a repository check
 * accepts; what is left over is removed by the next prune.
 */
export async function prune(repo: Repository, options: PruneOptions = {}): Promise<PruneSummary> {
  const started = Date.now();
  const maxUnused = options.maxUnusedFraction ?? 0.05;
  const lock = await repo.lock(true);
  try {
    const snapshots = await repo.listSnapshots();
    await repo.loadIndex();
    const used = new Set<string>();
    const walk = async (treeId: string): Promise<void> => {
      if (used.has(`tree:${treeId}`)) return;
      used.add(`tree:${treeId}`);
      for (const node of await repo.loadTree(treeId)) {
        for (const id of node.content ?? []) used.add(`data:${id}`);
        if (node.subtree) await walk(node.subtree);
      }
    };
    for (const { snapshot } of snapshots) await walk(snapshot.tree);

    const onBackend = new Map<string, number>();
    for await (const { name, size } of repo.backend.list('data')) onBackend.set(name, size);
    const oldIndexFiles: string[] = [];
    for await (const { name } of repo.backend.list('index')) oldIndexFiles.push(name);

    const keep = new Map<string, IndexEntry[]>();
    const remove: string[] = [];
    const repack: Array<{ packId: string; entries: IndexEntry[] }> = [];
    const claimed = new Set<string>();
    let blobsRemoved = 0;
    let bytesFreed = 0;
    for (const [packId, entries] of repo.index.packs()) {
      if (!onBackend.has(packId)) continue;
      // A blob stored twice is used only in the first pack that claims it.
      const usedHere = entries.filter((e) => {
        const key = `${e.type}:${e.id}`;
        if (!used.has(key) || claimed.has(key)) return false;
        claimed.add(key);
        return true;
      });
      const size = onBackend.get(packId)!;
      const unusedBytes = entries.filter((e) => !usedHere.includes(e)).reduce((n, e) => n + e.length, 0);
      if (usedHere.length === 0) {
        remove.push(packId);
        blobsRemoved += entries.length;
        bytesFreed += size;
      } else if (unusedBytes > 0 && unusedBytes / size > maxUnused) {
        repack.push({ packId, entries: usedHere });
        blobsRemoved += entries.length - usedHere.length;
        bytesFreed += unusedBytes;
      } else {
        keep.set(packId, [...entries]);
      }
    }
    const indexed = new Set(repo.index.packIds());
    const orphans = [...onBackend.keys()].filter((id) => !indexed.has(id));
    for (const id of orphans) bytesFreed += onBackend.get(id)!;

    // Under the exclusive lock no one is writing: files staged by killed writers can go.
    const temporaryRemoved = options.dryRun ? 0 : ((await repo.backend.removeTemporary?.()) ?? 0);
    if (!options.dryRun && (remove.length || repack.length || orphans.length)) {
      // 1. Copy the used blobs of partly used packs into new packs (written by flush, with an index).
      const fresh = await repo.repack(repack.flatMap((r) => r.entries));
      // 2. One index for everything kept plus the new packs, superseding the old index files.
      for (const [packId, blobs] of fresh)
        keep.set(
          packId,
          blobs.map((b) => ({ ...b, packId })),
        );
      await repo.saveIndex(keep, oldIndexFiles);
      // 3. Old index files go; 4. then the packs nothing names any more.
      for (const name of oldIndexFiles) await repo.backend.remove({ type: 'index', name });
      for (const packId of [...remove, ...repack.map((r) => r.packId), ...orphans]) {
        await repo.backend.remove({ type: 'data', name: packId });
      }
    }
    return {
      packsDeleted: remove.length,
      packsRepacked: repack.length,
      orphanedPacksDeleted: orphans.length,
      temporaryFilesRemoved: temporaryRemoved,
      blobsRemoved,
      bytesFreed,
      durationMs: Date.now() - started,
    };
  } finally {
    await lock.release();
  }
}
