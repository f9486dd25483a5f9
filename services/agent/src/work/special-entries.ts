import { posix } from 'node:path';
import { GoMode, loadBlobsFrom, type BlobSource, type TreeNode } from '@volback/repository';

/** Entries a restore leaves out of what the snapshot records, and bits it strips. */
export interface SpecialEntries {
  /** Block and character device nodes: never written. */
  readonly devices: TreeNode[];
  /** Entries (not directories) written without their setuid and setgid bits. */
  readonly stripped: TreeNode[];
}

/** `mode` without its setuid and setgid bits (Go's FileMode, above 32-bit bitwise range). */
function withoutSpecialBits(mode: number): number {
  const bits = Math.floor(mode / GoMode.Setgid) % 4; // bit 0 setgid, bit 1 setuid
  return mode - (bits & 1 ? GoMode.Setgid : 0) - (bits & 2 ? GoMode.Setuid : 0);
}

function hasSpecialBits(node: TreeNode): boolean {
  return node.mode !== undefined && withoutSpecialBits(node.mode) !== node.mode;
}

/**
 * A tree's entries as a restore may write them: device nodes (`dev`, `chardev`) left out, and
 * unless `keepSpecialModes`, the setuid and setgid bits of every entry but a directory cleared. A
 * directory's setgid only makes new files take its group, which grants nothing, so it is kept.
 * FIFOs are kept (applications use them, and restic restores them); sockets are never restored.
 */
export function filterSpecialEntries(
  nodes: readonly TreeNode[],
  keepSpecialModes: boolean,
): SpecialEntries & { kept: TreeNode[] } {
  const kept: TreeNode[] = [];
  const devices: TreeNode[] = [];
  const stripped: TreeNode[] = [];
  for (const node of nodes) {
    if (node.type === 'dev' || node.type === 'chardev') {
      devices.push(node);
    } else if (!keepSpecialModes && node.type !== 'dir' && hasSpecialBits(node)) {
      stripped.push(node);
      kept.push({ ...node, mode: withoutSpecialBits(node.mode!) });
    } else {
      kept.push(node);
    }
  }
  return { kept, devices, stripped };
}

/** What a {@link SpecialEntryFilter} left out, by path in the snapshot. */
export interface FilteredEntries {
  /** Snapshot paths of the device nodes left out. */
  readonly devices: ReadonlyMap<string, TreeNode>;
  /** Snapshot paths of the entries whose setuid/setgid bits were cleared. */
  readonly stripped: ReadonlyMap<string, TreeNode>;
}

/**
 * A blob source whose trees are {@link filterSpecialEntries filtered}, so whatever reads through it
 * (a restore into a directory, a tar for the engine, a dry run's plan) never sees a device node,
 * nor a setuid or setgid bit unless kept. It notes what it left out, by path in the snapshot, for
 * entries at or below `within`: every walk starts at `rootTree`, so a tree's path is known from
 * its parent's listing before it is read.
 */
export class SpecialEntryFilter implements BlobSource {
  readonly #source: BlobSource;
  readonly #keepSpecialModes: boolean;
  readonly #within: string;
  /**
   * Tree id → the snapshot paths of the directories it lists (a tree may sit in several places),
   * for the trees named and not read yet: a tree's paths are dropped once it is read (a walk
   * reads a tree again at each place it reaches later, whose path its parent noted by then).
   */
  readonly #paths = new Map<string, Set<string>>();
  readonly #devices = new Map<string, TreeNode>();
  readonly #stripped = new Map<string, TreeNode>();

  constructor(
    source: BlobSource,
    options: { readonly rootTree: string; readonly within: string; readonly keepSpecialModes: boolean },
  ) {
    this.#source = source;
    this.#keepSpecialModes = options.keepSpecialModes;
    this.#within = posix.normalize(`/${options.within}`).replace(/(.)\/$/, '$1');
    this.#paths.set(options.rootTree, new Set(['/']));
  }

  /** What was left out so far. */
  get filtered(): FilteredEntries {
    return { devices: this.#devices, stripped: this.#stripped };
  }

  loadBlob(type: 'data' | 'tree', id: string): Promise<Buffer> {
    return this.#source.loadBlob(type, id);
  }

  loadBlobs(type: 'data' | 'tree', ids: readonly string[], bytes?: number): AsyncIterable<Buffer> {
    return loadBlobsFrom(this.#source, type, ids, bytes);
  }

  async loadTree(id: string): Promise<TreeNode[]> {
    const { kept, devices, stripped } = filterSpecialEntries(
      await this.#source.loadTree(id),
      this.#keepSpecialModes,
    );
    const dirs = this.#paths.get(id) ?? [];
    this.#paths.delete(id);
    for (const dir of dirs) {
      const note = (into: Map<string, TreeNode>, node: TreeNode) => {
        const path = posix.join(dir, node.name);
        if (this.#isWithin(path)) into.set(path, node);
      };
      for (const node of devices) note(this.#devices, node);
      for (const node of stripped) note(this.#stripped, node);
      for (const node of kept) {
        if (node.type !== 'dir' || !node.subtree) continue;
        const paths = this.#paths.get(node.subtree) ?? new Set<string>();
        paths.add(posix.join(dir, node.name));
        this.#paths.set(node.subtree, paths);
      }
    }
    return kept;
  }

  #isWithin(path: string): boolean {
    return this.#within === '/' || path === this.#within || path.startsWith(`${this.#within}/`);
  }
}
