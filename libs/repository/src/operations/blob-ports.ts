import { sha256Hex } from '../format/ids.ts';
import type { BlobType } from '../format/pack.ts';
import { decodeTree, encodeTree, type TreeNode } from '../format/tree.ts';
import type { Repository, SaveBlobOptions } from '../repository.ts';

/**
 * Where a backup's blobs go: a repository this process opened, or a storage gateway over NATS
 * (the agent's side of the data path, which never holds keys). Chunking and hashing happen before
 * the sink; compression, encryption and packing behind it.
 */
export interface BlobSink {
  /** The repository's chunker polynomial (hex), so chunks match what restic would cut. */
  readonly chunkerPolynomial: string;
  /**
   * Stores a blob unless the repository has it. Resolves once the sink has taken it (flow
   * control); a failure may surface on a later call or on {@link drain}. With `handOver` the
   * caller gives `data` up (a sink may move it to another thread instead of copying it, or free
   * it once stored).
   */
  saveBlob(type: BlobType, data: Uint8Array, id: string, options?: SaveBlobOptions): Promise<void>;
  /** True when the repository holds every one of these blobs (a file unchanged since the parent). */
  hasBlobs(type: BlobType, ids: readonly string[]): boolean | Promise<boolean>;
  /** A tree of the parent snapshot. */
  loadTree(id: string): Promise<TreeNode[]>;
  /** Several trees of the parent snapshot at once ({@link BlobSource.loadTrees}). */
  loadTrees?: BlobSource['loadTrees'];
  /** Waits until every blob taken so far is stored or failed; throws the first failure. */
  drain(): Promise<void>;
  /**
   * Optional: readies what stores blobs (threads that take tens of ms to start) because many
   * blobs are coming: the backup started its chunk workers.
   */
  warm?(): void;
  /** Plaintext bytes of data blobs (file contents) that were new to the repository, so far. */
  readonly bytesAdded: number;
}

/** Where a restore or dump reads blobs from. */
export interface BlobSource {
  loadBlob(type: BlobType, id: string): Promise<Buffer>;
  loadTree(id: string): Promise<TreeNode[]>;
  /**
   * Optional: the blobs of `ids` in that order (ids may repeat), fetched in as few reads as the
   * source can (a repository reads neighbouring blobs of a pack at once). Throws, after the
   * blobs before it, at the first one that cannot be loaded. Sources without it are read blob
   * by blob ({@link loadBlobsFrom}). `bytes`, when the caller knows it (a restore knows its files'
   * sizes), is the plaintext of all of `ids` together: a source may size its requests by it.
   */
  loadBlobs?(type: BlobType, ids: readonly string[], bytes?: number): AsyncIterable<Buffer>;
  /**
   * Optional: several trees at once, as {@link loadTree} each (one promise per id, in order),
   * in fewer reads (a repository reads trees close together in a pack at once).
   */
  loadTrees?(ids: readonly string[]): Array<Promise<TreeNode[]>>;
  /**
   * Optional: the caller now reads mostly large blobs and leaves its own thread idle, so the
   * source may open them on every core ({@link Repository.openWithEveryCore}).
   */
  openWithEveryCore?(): void;
}

/** Blobs loaded one by one ahead of the consumer, when a source cannot load them in batches. */
const READ_AHEAD = 4;

/**
 * The blobs of `ids` in order, each loaded on its own with up to `ahead` loads under way before
 * the consumer takes them (a consumer that stops early starts no more).
 */
export async function* loadAhead(
  load: (type: BlobType, id: string) => Promise<Buffer>,
  type: BlobType,
  ids: readonly string[],
  ahead: number = READ_AHEAD,
): AsyncGenerator<Buffer, void, undefined> {
  const loading: Array<Promise<Buffer>> = [];
  const want = (i: number) => {
    if (i >= ids.length) return;
    const blob = load(type, ids[i]!);
    blob.catch(() => undefined); // awaited in turn; a failure must not go unhandled meanwhile
    loading.push(blob);
  };
  for (let i = 0; i < Math.min(ahead, ids.length); i++) want(i);
  for (let i = 0; i < ids.length; i++) {
    const next = loading.shift()!;
    want(i + ahead);
    yield await next;
  }
}

/**
 * The blobs of `ids` in order, from any source: in batches when it offers
 * {@link BlobSource.loadBlobs}, else one `loadBlob` at a time with a few loading ahead.
 */
export async function* loadBlobsFrom(
  source: Pick<BlobSource, 'loadBlob' | 'loadBlobs'>,
  type: BlobType,
  ids: readonly string[],
  bytes?: number,
): AsyncGenerator<Buffer, void, undefined> {
  if (source.loadBlobs) yield* source.loadBlobs(type, ids, bytes);
  else yield* loadAhead((t, id) => source.loadBlob(t, id), type, ids);
}

/** Encodes a tree, hands it to the sink, and returns its id. */
export async function saveTree(sink: BlobSink, nodes: readonly TreeNode[]): Promise<string> {
  const bytes = encodeTree(nodes);
  const id = sha256Hex(bytes);
  await sink.saveBlob('tree', bytes, id);
  return id;
}

/** Reads a tree from any blob source. */
export async function loadTreeFrom(source: Pick<BlobSource, 'loadBlob'>, id: string): Promise<TreeNode[]> {
  return decodeTree(await source.loadBlob('tree', id), id);
}

/** A {@link BlobSink} writing straight into an open repository (the CLI's and the gateway's). */
export function repositorySink(repo: Repository): BlobSink {
  let bytesAdded = 0;
  return {
    chunkerPolynomial: repo.config.chunker_polynomial,
    async saveBlob(type, data, id, options) {
      const length = data.length; // before the buffer may be handed over
      const saved = await repo.saveBlob(type, data, id, options);
      if (saved.added && type === 'data') bytesAdded += length;
    },
    hasBlobs: (type, ids) => ids.every((id) => repo.hasBlob(type, id)),
    loadTree: (id) => repo.loadTree(id),
    loadTrees: (ids) => repo.loadTrees(ids),
    drain: async () => undefined,
    warm: () => repo.warmSealing(),
    get bytesAdded() {
      return bytesAdded;
    },
  };
}
