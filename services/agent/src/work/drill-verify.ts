import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  chunkStream,
  parseChunkerPolynomial,
  posixPermissionsFromGo,
  sha256Hex,
  type BlobSource,
  type TreeNode,
} from '@volback/repository';
import { extract } from 'tar-stream';

/** Differences listed in a failed drill's event; the count says how many in all. */
export const MISMATCHES_LISTED = 50;

/** What one entry of the restored volume is, as read back from it. */
interface ActualEntry {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
  /** Permission bits (0o777). */
  readonly mode: number;
  readonly linkTarget?: string;
}

/** What a verification found: entries compared, and the differences. */
export interface VerifyReport {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  mismatchCount: number;
  readonly mismatches: { path: string; problem: string }[];
}

/** Entries compared with the snapshot (device nodes are never restored; fifos and sockets have no content). */
const COMPARED = new Set(['file', 'dir', 'symlink']);

/**
 * Compares a restored volume with the snapshot it came from, entry by entry: every file, directory
 * and symlink of the snapshot is there, of the same kind, size and permission bits, a symlink with
 * the same target, and a file's content cut with the repository's chunker gives exactly the blob
 * ids the snapshot lists (SHA-256 of each chunk: no blob is read from the repository again).
 * Entries the snapshot does not have are differences too.
 */
export class SnapshotVerifier {
  readonly #expected = new Map<string, TreeNode>();
  readonly #seen = new Set<string>();
  readonly #pol: bigint;
  readonly report: VerifyReport = {
    files: 0,
    dirs: 0,
    symlinks: 0,
    bytes: 0,
    mismatchCount: 0,
    mismatches: [],
  };

  private constructor(chunkerPolynomial: string) {
    this.#pol = parseChunkerPolynomial(chunkerPolynomial);
  }

  /** Reads the snapshot's trees below the volume's root tree (`volumeTree`); no file content. */
  static async load(
    source: BlobSource,
    volumeTree: string,
    chunkerPolynomial: string,
  ): Promise<SnapshotVerifier> {
    const verifier = new SnapshotVerifier(chunkerPolynomial);
    const walk = async (tree: string, at: string): Promise<void> => {
      for (const node of await source.loadTree(tree)) {
        const path = posix.join(at, node.name);
        verifier.#expected.set(path, node);
        if (node.type === 'dir' && node.subtree) await walk(node.subtree, path);
      }
    };
    await walk(volumeTree, '/');
    return verifier;
  }

  #differs(path: string, problem: string): void {
    this.report.mismatchCount++;
    if (this.report.mismatches.length < MISMATCHES_LISTED) {
      this.report.mismatches.push({ path: path.slice(0, 4096), problem: problem.slice(0, 500) });
    }
  }

  /** Compares one restored entry (`content`: a file's bytes) with the snapshot's. */
  async #compare(
    path: string,
    actual: ActualEntry,
    content?: () => AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const node = this.#expected.get(path);
    if (!node) {
      this.#differs(path, 'not in the snapshot');
      return;
    }
    this.#seen.add(path);
    // A fifo or socket is written as the snapshot says, a device node never: neither is compared.
    if (!COMPARED.has(node.type)) return;
    if (node.type !== actual.kind) {
      this.#differs(path, `a ${actual.kind} where the snapshot has a ${node.type}`);
      return;
    }
    const mode = posixPermissionsFromGo(node.mode ?? 0) & 0o777;
    if (node.type !== 'symlink' && mode !== actual.mode) {
      this.#differs(path, `mode ${actual.mode.toString(8)}, the snapshot's is ${mode.toString(8)}`);
    }
    if (node.type === 'dir') this.report.dirs++;
    else if (node.type === 'symlink') {
      this.report.symlinks++;
      if ((node.linktarget ?? '') !== actual.linkTarget) {
        this.#differs(
          path,
          `links to ${JSON.stringify(actual.linkTarget)}, the snapshot's to ${JSON.stringify(node.linktarget)}`,
        );
      }
    } else {
      this.report.files++;
      if ((node.size ?? 0) !== actual.size) {
        this.#differs(path, `${actual.size} bytes, the snapshot's ${node.size ?? 0}`);
        return;
      }
      const want = node.content ?? [];
      // Read to the end even after a difference: a tar entry must be consumed whole.
      let at = 0;
      let differs = false;
      for await (const chunk of chunkStream(content!(), this.#pol)) {
        this.report.bytes += chunk.length;
        if (!differs && want[at] !== sha256Hex(chunk.data)) {
          this.#differs(path, `content differs at chunk ${at + 1} of ${want.length}`);
          differs = true;
        }
        at++;
      }
      if (!differs && at !== want.length) this.#differs(path, `${at} chunks, the snapshot's ${want.length}`);
    }
  }

  /** Reads the restored volume from its directory on this host. */
  async compareDirectory(root: string): Promise<VerifyReport> {
    const walk = async (dir: string, at: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        const full = join(dir, name);
        const path = posix.join(at, name);
        const stat = await lstat(full);
        const kind = stat.isFile()
          ? 'file'
          : stat.isDirectory()
            ? 'dir'
            : stat.isSymbolicLink()
              ? 'symlink'
              : 'other';
        await this.#compare(
          path,
          {
            kind,
            size: stat.size,
            mode: stat.mode & 0o777,
            ...(kind === 'symlink' ? { linkTarget: await readlink(full) } : {}),
          },
          () => createReadStream(full),
        );
        if (kind === 'dir' && this.#seen.has(path)) await walk(full, path);
      }
    };
    await walk(root, '/');
    return this.#finish();
  }

  /** Reads the restored volume from a tar stream of it (the Engine's archive API). */
  async compareArchive(tar: AsyncIterable<Uint8Array>): Promise<VerifyReport> {
    const reader = extract();
    const done = (async () => {
      for await (const entry of reader) {
        const parts = entry.header.name.split('/').filter((part) => part !== '' && part !== '.');
        if (parts.length === 0) {
          entry.resume();
          continue;
        }
        const type = entry.header.type;
        const kind =
          type === 'file' ? 'file' : type === 'directory' ? 'dir' : type === 'symlink' ? 'symlink' : 'other';
        await this.#compare(
          `/${parts.join('/')}`,
          {
            kind,
            size: entry.header.size ?? 0,
            mode: (entry.header.mode ?? 0) & 0o777,
            ...(kind === 'symlink' ? { linkTarget: entry.header.linkname ?? '' } : {}),
          },
          () => entry as AsyncIterable<Uint8Array>,
        );
        entry.resume();
      }
    })();
    await Promise.all([pipeline(Readable.from(tar), reader), done]);
    return this.#finish();
  }

  #finish(): VerifyReport {
    for (const [path, node] of this.#expected) {
      if (!this.#seen.has(path) && COMPARED.has(node.type)) this.#differs(path, 'missing');
    }
    return this.report;
  }
}
