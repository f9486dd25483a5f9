import type { TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { resolveTreePath } from './restore.ts';

/** One entry of a snapshot listing. */
export interface ListedNode {
  /** Absolute path inside the snapshot. */
  readonly path: string;
  readonly node: TreeNode;
}

/** Walks a snapshot (or a path inside it) depth first, in name order. */
export async function* listSnapshot(
  repo: Repository,
  snapshotRef: string,
  path = '/',
  options: { recursive?: boolean } = {},
): AsyncGenerator<ListedNode> {
  const { snapshot } = await repo.findSnapshot(snapshotRef);
  await repo.loadIndex();
  const base = `/${path.split('/').filter(Boolean).join('/')}`;
  const { tree, node } = await resolveTreePath(repo, snapshot.tree, base);
  if (node && node.type !== 'dir') {
    yield { path: base, node };
    return;
  }
  const recursive = options.recursive ?? true;
  async function* walk(treeId: string, prefix: string): AsyncGenerator<ListedNode> {
    for (const child of await repo.loadTree(treeId)) {
      const childPath = `${prefix === '/' ? '' : prefix}/${child.name}`;
      yield { path: childPath, node: child };
      if (recursive && child.type === 'dir' && child.subtree) yield* walk(child.subtree, childPath);
    }
  }
  yield* walk(tree, base);
}
