import type { TreeNode } from '@volback/repository';

/** A blob a snapshot needs. */
export interface BlobRef {
  type: 'data' | 'tree';
  id: string;
}

/** How the walk sees the repository. */
export interface ReachabilityLookup {
  /** True when the blob is durably stored (in an index file), not merely pending. */
  has(type: 'data' | 'tree', id: string): boolean;
  loadTree(id: string): Promise<readonly TreeNode[]>;
  /** Trees already known complete (every blob below them stored); skipped. */
  isComplete?(treeId: string): boolean;
  /** Called for each tree found complete, for {@link isComplete} next time. */
  markComplete?(treeId: string): void;
}

/** A tree blob that cannot be a restic tree (a directory without subtree). */
export class MalformedTreeError extends Error {
  override readonly name = 'MalformedTreeError';
}

/**
 * Every blob reachable from `root` that is not stored, each once, trees first as found. A missing
 * tree hides what is below it: once sent, the next walk finds those too. Shared subtrees are
 * walked once. A data blob is asked of `lookup` at each place it is named, not remembered: a set
 * of every data id the snapshot names grows with the volume (a heap snapshot of the gateway at
 * the end of a backup of 4 GiB of small files held 424,816 id strings in all, 32 MiB of its 162
 * MiB live heap), and a lookup in the packed index costs no more than one in a set.
 */
export async function findMissingBlobs(root: string, lookup: ReachabilityLookup): Promise<BlobRef[]> {
  const missing: BlobRef[] = [];
  const missingData = new Set<string>();
  const walked = new Map<string, Promise<boolean>>();

  const walk = (treeId: string): Promise<boolean> => {
    let result = walked.get(treeId);
    if (!result) {
      result = walkTree(treeId);
      walked.set(treeId, result);
    }
    return result;
  };

  const walkTree = async (treeId: string): Promise<boolean> => {
    if (lookup.isComplete?.(treeId)) return true;
    if (!lookup.has('tree', treeId)) {
      missing.push({ type: 'tree', id: treeId });
      return false;
    }
    const nodes = await lookup.loadTree(treeId);
    let complete = true;
    const subtrees: string[] = [];
    for (const node of nodes) {
      if (node.type === 'file') {
        for (const id of node.content ?? []) {
          if (lookup.has('data', id)) continue;
          complete = false;
          if (missingData.has(id)) continue;
          missingData.add(id);
          missing.push({ type: 'data', id });
        }
      } else if (node.type === 'dir') {
        if (!node.subtree)
          throw new MalformedTreeError(
            `tree ${treeId}: directory ${JSON.stringify(node.name)} has no subtree`,
          );
        subtrees.push(node.subtree);
      }
    }
    const below = await Promise.all(subtrees.map(walk));
    if (below.includes(false)) complete = false;
    if (complete) lookup.markComplete?.(treeId);
    return complete;
  };

  await walk(root);
  return missing;
}
