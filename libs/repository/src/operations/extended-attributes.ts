import { isUtf8 } from 'node:buffer';
import type { TreeNode } from '../format/tree.ts';
import type { FsPath } from './fs-path.ts';
import { nativeXattr } from './xattr-native.ts';

/** One recorded attribute: its name and its value's bytes in base64 (restic's Go `[]byte`). */
export type ExtendedAttribute = NonNullable<TreeNode['extended_attributes']>[number];

let unavailableReported = false;

function reason(error: unknown): string {
  return (error as Error).message ?? String(error);
}

/**
 * An entry's extended attributes as restic records them (llistxattr then lgetxattr, the entry's
 * own and never a symlink target's, in the order the filesystem lists them), or undefined when
 * it has none. A filesystem without extended attributes gives none. An attribute that cannot be
 * read, or whose name is not UTF-8 (tree JSON holds UTF-8), goes to `warn` and the others are
 * kept. Without the native addon nothing is recorded, and a process warning says so once.
 */
export function readExtendedAttributes(
  path: FsPath,
  warn: (error: Error) => void,
): ExtendedAttribute[] | undefined {
  if (!nativeXattr) {
    if (!unavailableReported) {
      unavailableReported = true;
      process.emitWarning(
        'extended attributes are not backed up: the native addon is not built (scripts/build-native.sh) or VOLBACK_NATIVE=off',
        { code: 'VOLBACK_XATTR_UNAVAILABLE' },
      );
    }
    return undefined;
  }
  let names: Buffer[];
  try {
    names = nativeXattr.list(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOTSUP')
      warn(new Error(`extended attributes not recorded: ${reason(error)}`));
    return undefined;
  }
  if (names.length === 0) return undefined;
  const attributes: ExtendedAttribute[] = [];
  for (const raw of names) {
    if (!isUtf8(raw)) {
      warn(
        new Error(
          `extended attribute ${JSON.stringify(raw.toString('latin1'))}: name is not UTF-8, not recorded`,
        ),
      );
      continue;
    }
    const name = raw.toString('utf8');
    try {
      attributes.push({ name, value: nativeXattr.get(path, raw).toString('base64') });
    } catch (error) {
      // ENODATA: removed since it was listed.
      if ((error as NodeJS.ErrnoException).code !== 'ENODATA')
        warn(new Error(`extended attribute ${name} not recorded: ${reason(error)}`));
    }
  }
  return attributes.length > 0 ? attributes : undefined;
}

/**
 * Sets a node's recorded extended attributes on `path` (lsetxattr: a symlink's own, never its
 * target's). Attributes the target refuses (a filesystem without them, a namespace this process
 * may not write such as `trusted.*`, user attributes on a symlink) are named in one `warn` for
 * the entry; the others are still set.
 */
export function restoreExtendedAttributes(node: TreeNode, path: FsPath, warn: (error: Error) => void): void {
  const attributes = node.extended_attributes;
  if (!attributes?.length) return;
  if (!nativeXattr) {
    warn(
      new Error(
        `${attributes.length} extended attributes not restored: the native addon is not built (scripts/build-native.sh) or VOLBACK_NATIVE=off`,
      ),
    );
    return;
  }
  const refused: string[] = [];
  for (const { name, value } of attributes) {
    try {
      nativeXattr.set(path, name, Buffer.from(value ?? '', 'base64'));
    } catch (error) {
      refused.push(`${name} (${reason(error)})`);
    }
  }
  if (refused.length > 0) warn(new Error(`extended attributes not restored: ${refused.join('; ')}`));
}
