import { join } from 'node:path';
import { goDisplayString } from '../format/go-quote.ts';
import { nodeNameBytes, type TreeNode } from '../format/tree.ts';

/**
 * A path on the file system: a string, or its bytes once a name on the way is not valid UTF-8
 * (Node's fs takes either; a string cannot hold such a name).
 */
export type FsPath = string | Buffer;

/**
 * The path of the entry `node` names inside `dir`: a string while both are UTF-8 (the common
 * case stays as it was), else bytes.
 */
export function childPath(dir: FsPath, node: Pick<TreeNode, 'name' | 'nameBytes'>): FsPath {
  if (typeof dir === 'string' && !node.nameBytes) return join(dir, node.name);
  const parent = typeof dir === 'string' ? Buffer.from(dir, 'utf8') : dir;
  const separator = parent.at(-1) === 0x2f ? [] : [Buffer.from('/')];
  return Buffer.concat([parent, ...separator, nodeNameBytes(node)]);
}

/** A path to show in messages and progress: U+FFFD for each byte that is not UTF-8. */
export function shownPath(path: FsPath): string {
  return typeof path === 'string' ? path : goDisplayString(path);
}
