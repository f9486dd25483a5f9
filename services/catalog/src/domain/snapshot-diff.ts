import type { TreeNode } from '@volback/repository';

/** How an entry present in both snapshots differs. */
export type ChangeKind = 'type' | 'content' | 'metadata';

/** One level of a diff: what was added, removed or changed, and the directories to compare below. */
export interface DirectoryDiff {
  added: TreeNode[];
  removed: TreeNode[];
  changed: Array<{ before: TreeNode; after: TreeNode; kind: ChangeKind }>;
  /** Directories in both whose subtrees differ (same subtree id: identical, skipped). */
  descend: Array<{ name: string; before: string; after: string }>;
}

function contentOf(n: TreeNode): string {
  return n.type === 'symlink' ? (n.linktarget ?? '') : (n.content ?? []).join(',');
}

function changeOf(before: TreeNode, after: TreeNode): ChangeKind | undefined {
  if (before.type !== after.type) return 'type';
  if (before.type === 'dir') {
    // A directory's own times follow its children; only its mode and owner are its own.
    return before.mode !== after.mode || before.uid !== after.uid || before.gid !== after.gid
      ? 'metadata'
      : undefined;
  }
  if (before.size !== after.size || contentOf(before) !== contentOf(after)) return 'content';
  if (
    before.mode !== after.mode ||
    before.mtime !== after.mtime ||
    before.uid !== after.uid ||
    before.gid !== after.gid
  )
    return 'metadata';
  return undefined;
}

/**
 * Compares the entries of one directory in two snapshots, by name (as restic's `diff` does): a
 * name only after is added, only before removed; in both, changed when its type, content (blob
 * ids, link target, size) or metadata (mode, owner, mtime) differ. Directories are not "changed"
 * by what is inside them: those with different subtrees are returned in `descend`.
 */
export function diffDirectory(before: readonly TreeNode[], after: readonly TreeNode[]): DirectoryDiff {
  const old = new Map(before.map((n) => [n.name, n]));
  const result: DirectoryDiff = { added: [], removed: [], changed: [], descend: [] };
  for (const node of after) {
    const was = old.get(node.name);
    old.delete(node.name);
    if (!was) {
      result.added.push(node);
      continue;
    }
    const kind = changeOf(was, node);
    if (kind) result.changed.push({ before: was, after: node, kind });
    if (kind !== 'type' && node.type === 'dir' && was.subtree && node.subtree && was.subtree !== node.subtree)
      result.descend.push({ name: node.name, before: was.subtree, after: node.subtree });
  }
  result.removed.push(...old.values());
  return result;
}
