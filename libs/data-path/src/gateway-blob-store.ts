import {
  decodeTree,
  loadAhead,
  loadTreeFrom,
  release,
  type BlobSink,
  type BlobSource,
  type BlobType,
  type SaveBlobOptions,
  type TreeNode,
} from '@volback/repository';
import { LOAD_BLOBS_MAX_IDS, STORE_BLOBS_MAX_BLOBS } from '@volback/contracts';
import type { DataPathClient } from './client.ts';
import { maxBlobBytes } from './codec.ts';
import { DataPathErrorCode, type DataPathError } from './errors.ts';
import { RecentKeys } from './recent-keys.ts';

/** Blobs a restore asks the gateways for ahead of the one it writes, one request each. */
const LOAD_AHEAD = 12;
/**
 * Distinct blobs one `load-blobs` request asks for (about 16 MiB of restic's chunks, a message's
 * worth), unless the caller says how large they are: then as many as {@link REPLY_TARGET_BYTES}
 * should hold, 1 to 256 (small files: a batch of them in one request).
 */
const BATCH_BLOBS = 16;
/**
 * What a `load-blobs` reply should hold when the blobs' sizes are known: a twelfth of the reply
 * budget, so that about six batches (each reserving twice this) are on their way at once. A
 * reply is one NATS message, which the server takes in whole before it passes it on: replies of
 * a whole message (16 MiB), three at a time, left the gateway and the agent waiting for each other
 * (`database` end to end, three runs each: restore 1.26–1.49 s against 1.15–1.30 s with 4 MiB).
 */
const REPLY_TARGET_BYTES = 4 * 1024 * 1024;
/** Requests for trees a store has under way at once, in the background. */
const TREE_LOADS_AHEAD = 2;
/** Trees kept for the walk, in multiples of `treesAheadBytes`. */
const TREES_KEPT_FACTOR = 4;
/**
 * Bytes of `treesAheadBytes` that stand for one tree named and not yet asked for: the list of them
 * is bounded by it (16,384 ids by default). Replies name trees breadth first and the walk reads
 * depth first, so without a bound the list grew to a whole level of the volume's directories
 * (32,000 ids, each holding the text of the tree it came from, in a restore of 51,000
 * directories). Trees left out are asked for by the walk, or wanted again when it reads their
 * parent.
 */
const WANTED_TREE_SHARE = 256;
/** The walk's next trees (named by those it read) wanted at most: a wide directory's worth. */
const TREES_NEXT_MAX = 8 * LOAD_BLOBS_MAX_IDS;
/** What precedes a directory's subtree in a tree's JSON, as restic writes it. */
const SUBTREE_KEY = Buffer.from('"subtree":"');
const TREE_ID = /^[0-9a-f]{64}$/;

/** Least a batch reserves of the reply budget. */
const MIN_RESERVED_BYTES = 64 * 1024;
/** Most places in a file one batch covers (a sparse file repeats its zero blob many times). */
const BATCH_PLACES = 256;
/** Batches of one file asked for ahead of the one being handed on. */
const BATCHES_AHEAD = 3;
/** After gateways did not know `load-blobs`, blobs are read one by one this long before asking again. */
const BATCHES_RETRY_MS = 60_000;

/** Most blobs one `store-blobs` request carries. */
const STORE_BATCH_BLOBS = STORE_BLOBS_MAX_BLOBS;
/** A `store-blobs` request is sent once its blobs reach this many bytes. */
const STORE_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * A batched operation this deployment does not offer: no gateway listens on it (older gateways),
 * or the NATS server's permissions predate it. The store then goes blob by blob for a while.
 */
const unsupported = (error: unknown) =>
  (error as DataPathError).code === DataPathErrorCode.NoGateway ||
  (error as DataPathError).code === DataPathErrorCode.NotPermitted;

/**
 * Blobs a session remembers as stored or on their way, at most twice this many: a volume of small
 * files has a blob for each, and remembering all of them grew the agent with the volume. One
 * forgotten is only sent again, and the gateway keeps it once.
 */
const KNOWN_BLOBS = 65_536;

/** A small blob waiting for its `store-blobs` request. */
interface GatheredBlob {
  readonly id: string;
  readonly data: Uint8Array;
  /** Frees a blob handed over, once stored. */
  readonly done: () => void;
}

/**
 * Places `[start, end)` of a file's blob list: one `load-blobs` request, and another for the rest
 * when its reply filled a message. Its share of the reply budget is held until it is handed on.
 */
interface Batch {
  /** The first place the request under way covers. */
  start: number;
  readonly end: number;
  /** Bytes taken from the reply budget: the largest reply its first request may get. */
  readonly reserved: number;
  reply: Promise<Buffer[]>;
  /** The distinct ids the request under way asks for, in the order first wanted. */
  ids: readonly string[];
}

/** Tuning of a {@link GatewayBlobStore}. */
export interface GatewayBlobStoreOptions {
  /** Bytes of blobs on their way to gateways at once (flow control; default 64 MiB). */
  readonly maxInFlightBytes?: number;
  /** Requests on their way at once (default 16). */
  readonly maxInFlightRequests?: number;
  /**
   * Blobs smaller than this are sent without asking first whether the repository lacks them (the
   * gateway deduplicates anyway), gathered into `store-blobs` requests of up to 256 blobs or
   * 2 MiB: one round trip for many small files (default 64 KiB).
   */
  readonly askAboveBytes?: number;
  /**
   * Bytes of trees below a tree read with it and kept for the walk that reads them next (default
   * 4 MiB; 0 reads each tree on its own).
   */
  readonly treesAheadBytes?: number;
}

/**
 * The agent's side of the data path as a repository to back up into and restore from: chunks
 * hashed here, only those the repository lacks sent to a gateway, with a bound on the bytes in
 * flight so memory stays flat whatever the volume's size. Keys never reach this side.
 *
 * A file unchanged since the parent snapshot is taken as stored without asking: the gateway's
 * commit checks that every blob a snapshot reaches exists, so a blob pruned meanwhile fails
 * the commit (and the backup is retried) rather than leaving a snapshot with holes.
 */
export class GatewayBlobStore implements BlobSink, BlobSource {
  readonly chunkerPolynomial: string;
  readonly #client: DataPathClient;
  readonly #maxBytes: number;
  readonly #maxRequests: number;
  readonly #askAbove: number;
  /** Blobs this session knows to be in the repository or on their way (the last ones of them). */
  readonly #known = new RecentKeys(KNOWN_BLOBS);
  readonly #inFlight = new Set<Promise<void>>();
  #inFlightBytes = 0;
  #bytesAdded = 0;
  #bytesSent = 0;
  #error: unknown;
  /** saveBlob calls waiting for room among the requests in flight (backups save files concurrently). */
  #waiting: Array<() => void> = [];
  /** Until then, restores read blob by blob: the gateways did not answer `load-blobs`. */
  #batchesUnsupportedUntil = 0;
  /** Small blobs waiting to go in one `store-blobs` request, by type. */
  readonly #gathered = new Map<BlobType, { blobs: GatheredBlob[]; bytes: number }>();
  readonly #treesAheadBytes: number;
  /** Trees named and not yet asked for, at most ({@link WANTED_TREE_SHARE}). */
  readonly #treesWantedMax: number;
  /** Trees read with others and kept for the walk ({@link loadTree}), oldest first. */
  readonly #treesAhead = new Map<string, Buffer>();
  /** How often the walk will still read each kept tree: as often as the trees received name it. */
  readonly #treeReads = new Map<string, number>();
  /** `load-trees` requests under way, by root: the walk waits for them rather than ask again. */
  readonly #treesLoading = new Map<string, Promise<void>>();
  #treesKeptBytes = 0;
  /** Trees named by trees received and not received with them, to ask for in the background. */
  readonly #treesWanted: string[] = [];
  /**
   * Trees named by those the walk read and not kept nor on their way: what the walk reads next,
   * asked for first, and even while many trees are kept (the oldest kept make room).
   */
  readonly #treesNext: string[] = [];
  /** Background requests for trees under way ({@link TREE_LOADS_AHEAD} at most). */
  #treeRequests = 0;
  /** Until then, trees are read one by one: the gateways did not answer `load-trees`. */
  #treesUnsupportedUntil = 0;
  /** Until then, backups send blob by blob: the gateways did not answer `store-blobs`. */
  #storeBatchesUnsupportedUntil = 0;

  private constructor(client: DataPathClient, chunkerPolynomial: string, options: GatewayBlobStoreOptions) {
    this.#client = client;
    this.chunkerPolynomial = chunkerPolynomial;
    this.#maxBytes = options.maxInFlightBytes ?? 64 * 1024 * 1024;
    this.#maxRequests = options.maxInFlightRequests ?? 16;
    this.#askAbove = options.askAboveBytes ?? 64 * 1024;
    this.#treesAheadBytes = options.treesAheadBytes ?? 4 * 1024 * 1024;
    this.#treesWantedMax = Math.max(
      LOAD_BLOBS_MAX_IDS,
      Math.floor(this.#treesAheadBytes / WANTED_TREE_SHARE),
    );
  }

  /** Asks a gateway for the repository's chunker polynomial and returns a store for one session. */
  static async open(
    client: DataPathClient,
    options: GatewayBlobStoreOptions = {},
  ): Promise<GatewayBlobStore> {
    const info = await client.repositoryInfo();
    return new GatewayBlobStore(client, info.chunkerPolynomial, options);
  }

  get client(): DataPathClient {
    return this.#client;
  }

  /** Plaintext bytes of data blobs (file contents) the repository did not have. */
  get bytesAdded(): number {
    return this.#bytesAdded;
  }

  /** Plaintext bytes that crossed the network to gateways. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  async saveBlob(type: BlobType, data: Uint8Array, id: string, options?: SaveBlobOptions): Promise<void> {
    if (this.#error) throw this.#error;
    // A chunk handed over is freed once the gateway has it (or at once when not needed), not when
    // collected, however small: a volume of small files moves all its bytes through such chunks,
    // and each lives a round trip, long enough to outlast the young generation. Not after a
    // failure: a request that timed out may still sit in the socket's queue.
    const done = options?.handOver ? () => release(data, 0) : () => undefined;
    if (this.#known.has(type, id)) return done();
    this.#known.add(type, id);
    if (data.length < this.#askAbove && Date.now() >= this.#storeBatchesUnsupportedUntil) {
      let gathered = this.#gathered.get(type);
      if (!gathered) this.#gathered.set(type, (gathered = { blobs: [], bytes: 0 }));
      gathered.blobs.push({ id, data, done });
      gathered.bytes += data.length;
      if (gathered.blobs.length >= STORE_BATCH_BLOBS || gathered.bytes >= STORE_BATCH_BYTES)
        await this.#sendGathered(type);
      return;
    }
    await this.#dispatch(data.length, type, [id], () => this.#send(type, id, data), done);
  }

  /** Sends the small blobs of `type` gathered so far, as one `store-blobs` request. */
  async #sendGathered(type: BlobType): Promise<void> {
    const gathered = this.#gathered.get(type);
    if (!gathered) return;
    this.#gathered.delete(type);
    const { blobs, bytes } = gathered;
    await this.#dispatch(
      bytes,
      type,
      blobs.map((b) => b.id),
      () => this.#sendBatch(type, blobs),
      () => blobs.forEach((b) => b.done()),
    );
  }

  /**
   * Starts `work` (sending `bytes` of blobs) once there is room among the requests in flight; its
   * blobs count as known until it fails, and `done` runs once it succeeded.
   */
  async #dispatch(
    bytes: number,
    type: BlobType,
    ids: readonly string[],
    work: () => Promise<void>,
    done: () => void,
  ): Promise<void> {
    while (
      this.#inFlight.size > 0 &&
      (this.#inFlight.size >= this.#maxRequests || this.#inFlightBytes + bytes > this.#maxBytes)
    ) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      if (this.#error) throw this.#error;
    }
    this.#inFlightBytes += bytes;
    const task = work().then(done, (error: unknown) => {
      for (const id of ids) this.#known.delete(type, id);
      this.#error ??= error;
    });
    const tracked = task.finally(() => {
      this.#inFlightBytes -= bytes;
      this.#inFlight.delete(tracked);
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const wake of waiting) wake();
    });
    this.#inFlight.add(tracked);
  }

  async #send(type: BlobType, id: string, data: Uint8Array): Promise<void> {
    if (data.length >= this.#askAbove) {
      const missing = await this.#client.missingBlobs([{ type, id }]);
      if (missing.length === 0) return;
    }
    const stored = await this.#client.storeBlob(type, id, data);
    this.#bytesSent += data.length;
    if (stored.added && type === 'data') this.#bytesAdded += data.length;
  }

  /** One `store-blobs` request; blob by blob when the gateways do not know it. */
  async #sendBatch(type: BlobType, blobs: readonly GatheredBlob[]): Promise<void> {
    let added: boolean[];
    try {
      added = await this.#client.storeBlobs(type, blobs);
    } catch (error) {
      if (!unsupported(error)) throw error;
      // Nobody listens on store-blobs: older gateways, or none at all (storeBlob then retries).
      this.#storeBatchesUnsupportedUntil = Date.now() + BATCHES_RETRY_MS;
      for (const blob of blobs) await this.#send(type, blob.id, blob.data);
      return;
    }
    for (const [i, blob] of blobs.entries()) {
      this.#bytesSent += blob.data.length;
      if (added[i] && type === 'data') this.#bytesAdded += blob.data.length;
    }
  }

  hasBlobs(): boolean {
    return true;
  }

  /** Sends the small blobs gathered so far, then waits until the gateways have every blob. */
  async drain(): Promise<void> {
    for (const type of [...this.#gathered.keys()]) await this.#sendGathered(type);
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    if (this.#error) throw this.#error;
  }

  loadBlob(type: BlobType, id: string): Promise<Buffer> {
    return this.#client.loadBlob(type, id);
  }

  /**
   * A file's blobs in order, read in batches of up to 16 distinct blobs per `load-blobs` request,
   * up to 3 batches ahead of the one being handed on. Every batch first takes its largest possible
   * reply from the connection's reply budget ({@link DataPathClient.replyBudget}), so files read
   * at once never let more than 48 MiB wait at the NATS server or here. With `bytes` (what all of
   * `ids` hold, from the files' sizes), a batch is about 4 MiB of blobs (1 to 256) and takes twice
   * their expected size: a batch of small files is one request, and leaves room for others. A
   * reply that filled a message covers a prefix of its batch: the rest is asked for once that
   * prefix is handed on.
   * Gateways older than `load-blobs` are read blob by blob, 12 requests ahead.
   *
   * A consumer must take each file's blobs to the end or stop (`return`, as `for await` does)
   * without waiting on another file's blobs meanwhile: the budget it holds is freed that way.
   */
  async *loadBlobs(
    type: BlobType,
    ids: readonly string[],
    bytes?: number,
  ): AsyncGenerator<Buffer, void, undefined> {
    const budget = this.#client.replyBudget;
    const message = this.#client.maxMessageBytes;
    // With the bytes known, a batch is about REPLY_TARGET_BYTES of blobs, and reserves twice what
    // its blobs should take: batches leave room for others in the reply budget.
    const perPlace = bytes === undefined || ids.length === 0 ? undefined : Math.max(1, bytes / ids.length);
    const perBatch =
      perPlace === undefined
        ? BATCH_BLOBS
        : Math.max(1, Math.min(LOAD_BLOBS_MAX_IDS, Math.floor(REPLY_TARGET_BYTES / perPlace)));
    const reserve = (wanted: number) =>
      Math.min(
        message,
        perPlace === undefined
          ? wanted * maxBlobBytes(type)
          : Math.max(MIN_RESERVED_BYTES, Math.ceil(2 * perPlace * wanted)),
      );
    /** The distinct ids of the places from `start` on, up to `limit`, and where the batch ends. */
    const plan = (start: number, limit: number): { end: number; wanted: string[] } => {
      const wanted = new Set<string>();
      let end = start;
      while (end < limit && end - start < BATCH_PLACES) {
        const id = ids[end]!;
        if (!wanted.has(id)) {
          if (wanted.size === perBatch) break;
          wanted.add(id);
        }
        end++;
      }
      return { end, wanted: [...wanted] };
    };
    const ask = (wanted: readonly string[]): Promise<Buffer[]> => {
      const reply = this.#client.loadBlobs(type, wanted);
      reply.catch(() => undefined); // awaited in turn; must not go unhandled meanwhile
      return reply;
    };
    // A batch given up gives its share back once its reply is no longer on its way.
    const abandon = (batch: Batch) => {
      const release = () => budget.give(batch.reserved);
      batch.reply.then(release, release);
    };
    const pending: Batch[] = [];
    let asked = 0; // places asked for so far
    let position = 0; // places handed on so far
    try {
      while (position < ids.length) {
        if (Date.now() < this.#batchesUnsupportedUntil) {
          yield* loadAhead((t, id) => this.#client.loadBlob(t, id), type, ids.slice(position), LOAD_AHEAD);
          return;
        }
        // Ask ahead as far as the budget allows; with nothing under way, wait for it.
        while (pending.length < BATCHES_AHEAD && asked < ids.length) {
          const { end, wanted } = plan(asked, ids.length);
          const reserved = reserve(wanted.length);
          if (pending.length === 0) await budget.take(reserved);
          else if (!budget.tryTake(reserved)) break;
          pending.push({ start: asked, end, reserved, ids: wanted, reply: ask(wanted) });
          asked = end;
        }
        const batch = pending[0]!;
        let blobs: Buffer[];
        try {
          blobs = await batch.reply;
        } catch (error) {
          if (!unsupported(error)) throw error;
          // Nobody listens on load-blobs: older gateways, or none at all (loadBlob then retries).
          this.#batchesUnsupportedUntil = Date.now() + BATCHES_RETRY_MS;
          pending.splice(0).forEach(abandon);
          continue;
        }
        const loaded = new Map<string, Buffer>();
        for (const [i, blob] of blobs.entries()) loaded.set(batch.ids[i]!, blob);
        let covered = batch.start;
        while (covered < batch.end && loaded.has(ids[covered]!)) covered++;
        for (; position < covered; position++) yield loaded.get(ids[position]!)!;
        if (covered < batch.end) {
          // The reply filled a message: the rest of the batch, under the same reservation.
          batch.start = covered;
          batch.ids = plan(covered, batch.end).wanted;
          batch.reply = ask(batch.ids);
        } else {
          pending.shift();
          budget.give(batch.reserved);
        }
      }
    } finally {
      pending.forEach(abandon); // stopped early, or failed
    }
  }

  /**
   * A tree's nodes. A tree not read already comes with the trees below it (`load-trees`, up to
   * `treesAheadBytes`), kept here for the walk that reads them next; the trees below the last
   * ones a reply held are then asked for in the background, up to 256 in a `load-blobs` request
   * (two requests at most), so that the walk seldom waits. A kept tree is dropped once read as
   * often as the trees kept name it, and nothing more is asked ahead while 3 × `treesAheadBytes`
   * are kept.
   */
  async loadTree(id: string): Promise<TreeNode[]> {
    if (this.#treesAheadBytes === 0 || Date.now() < this.#treesUnsupportedUntil)
      return loadTreeFrom(this.#client, id);
    const kept =
      this.#takeTree(id) ?? (await this.#treesLoading.get(id)?.catch(() => undefined), this.#takeTree(id));
    if (kept) return this.#wantBelow(decodeTree(kept, id));
    // Not wanted in the background any more: the walk got there first.
    for (const list of [this.#treesNext, this.#treesWanted]) {
      const wanted = list.indexOf(id);
      if (wanted >= 0) list.splice(wanted, 1);
    }
    try {
      await this.#loadTrees(id);
    } catch (error) {
      if (!unsupported(error)) throw error;
      // Nobody listens on load-trees: older gateways, or none at all (loadBlob then retries).
      this.#treesUnsupportedUntil = Date.now() + BATCHES_RETRY_MS;
      return loadTreeFrom(this.#client, id);
    }
    const loaded = this.#takeTree(id);
    return this.#wantBelow(loaded ? decodeTree(loaded, id) : await loadTreeFrom(this.#client, id));
  }

  /**
   * The walk reads a tree: the trees it names are what the walk reads next, so they are wanted
   * ahead of the others (those it forgot for want of room are wanted again here).
   */
  #wantBelow(nodes: TreeNode[]): TreeNode[] {
    const below = nodes.flatMap((node) => (node.type === 'dir' && node.subtree ? [node.subtree] : []));
    this.#want(this.#treesNext, below, TREES_NEXT_MAX, true);
    this.#loadWantedTrees();
    return nodes;
  }

  /**
   * Asks for `root` and the trees below it (`load-trees`) and keeps them; the trees they name and
   * the reply left out are then wanted in the background ({@link #loadWantedTrees}).
   */
  #loadTrees(root: string): Promise<void> {
    const budget = this.#client.replyBudget;
    const reserved = Math.min(this.#client.maxMessageBytes, this.#treesAheadBytes);
    const loading = (async () => {
      await budget.take(reserved);
      try {
        const trees = await this.#client.loadTrees(root, this.#treesAheadBytes);
        const below = this.#keepTrees(trees);
        // The walk reads the root at least once, named by a tree received before or not.
        if (!this.#treeReads.has(root)) this.#treeReads.set(root, 1);
        this.#want(this.#treesWanted, below, this.#treesWantedMax);
      } finally {
        budget.give(reserved);
        this.#treesLoading.delete(root);
      }
      this.#loadWantedTrees();
    })();
    this.#treesLoading.set(root, loading);
    return loading;
  }

  /** Keeps trees received; returns the subtrees they name that are neither kept nor on their way. */
  #keepTrees(trees: ReadonlyArray<{ id: string; data: Buffer }>): string[] {
    const below = new Set<string>();
    for (const tree of trees) {
      this.#keepTree(tree.id, tree.data);
      for (const subtree of subtreeIds(tree.data)) {
        this.#treeReads.set(subtree, (this.#treeReads.get(subtree) ?? 0) + 1);
        below.add(subtree);
      }
    }
    for (const tree of trees) below.delete(tree.id);
    return [...below].filter((id) => !this.#treesAhead.has(id) && !this.#treesLoading.has(id));
  }

  /**
   * Adds trees to a list to ask for in the background, behind those in it or (`first`) ahead of
   * them. Beyond `max` the last ones are forgotten, and so is how often the walk reads them: it
   * asks for each itself when it gets there.
   */
  #want(list: string[], ids: readonly string[], max: number, first = false): void {
    const fresh = [...new Set(ids)]
      .filter((id) => !this.#treesAhead.has(id) && !this.#treesLoading.has(id))
      .slice(0, max);
    if (fresh.length === 0) return;
    if (first) list.unshift(...fresh);
    else list.push(...fresh.slice(0, Math.max(0, max - list.length)));
    for (const id of list.splice(max)) {
      if (!this.#treesAhead.has(id) && !this.#treesLoading.has(id)) this.#treeReads.delete(id);
    }
  }

  /**
   * Asks in the background for the trees wanted, the walk's next ones first, up to
   * {@link LOAD_BLOBS_MAX_IDS} in one `load-blobs` request, while fewer than
   * {@link TREE_LOADS_AHEAD} are under way and there is room (reply budget; kept bytes, except for
   * the walk's next ones). A directory of many subdirectories is one round trip, where `load-trees`
   * of each subdirectory was one each (an incremental backup of 32,000 small files in 3,200
   * directories asked 2,200 times). What a reply leaves out, and what its trees name, are wanted
   * next. Failures are dropped: the walk asks itself when it gets there.
   */
  #loadWantedTrees(): void {
    const budget = this.#client.replyBudget;
    const reserved = this.#client.maxMessageBytes;
    while (this.#treeRequests < TREE_LOADS_AHEAD) {
      const roomy = this.#treesKeptBytes <= (TREES_KEPT_FACTOR - 1) * this.#treesAheadBytes;
      const list = this.#treesNext.length > 0 ? this.#treesNext : roomy ? this.#treesWanted : undefined;
      if (!list || list.length === 0) return;
      const ids = [...new Set(list.splice(0, LOAD_BLOBS_MAX_IDS))].filter(
        (id) => !this.#treesAhead.has(id) && !this.#treesLoading.has(id),
      );
      if (ids.length === 0) continue;
      if (!budget.tryTake(reserved)) {
        list.unshift(...ids);
        return;
      }
      this.#treeRequests++;
      // The request's own promise, compared in its finally (set before its first await returns).
      const request = { loading: Promise.resolve() };
      request.loading = (async () => {
        try {
          const blobs = await this.#client.loadBlobs('tree', ids);
          const below = this.#keepTrees(blobs.map((data, i) => ({ id: ids[i]!, data })));
          list.unshift(...ids.slice(blobs.length));
          this.#want(this.#treesWanted, below, this.#treesWantedMax);
        } finally {
          budget.give(reserved);
          this.#treeRequests--;
          for (const id of ids)
            if (this.#treesLoading.get(id) === request.loading) this.#treesLoading.delete(id);
        }
        this.#loadWantedTrees();
      })();
      request.loading.catch(() => undefined); // the walk asks again itself
      for (const id of ids) this.#treesLoading.set(id, request.loading);
    }
  }

  #keepTree(id: string, data: Buffer): void {
    if (this.#treesAhead.has(id)) return;
    // A copy: a view would keep the whole reply alive until its last tree is dropped.
    this.#treesAhead.set(id, Buffer.from(data));
    this.#treesKeptBytes += data.length;
    for (const [oldest, bytes] of this.#treesAhead) {
      if (this.#treesKeptBytes <= TREES_KEPT_FACTOR * this.#treesAheadBytes) break;
      this.#treesAhead.delete(oldest);
      this.#treeReads.delete(oldest);
      this.#treesKeptBytes -= bytes.length;
    }
  }

  /** A kept tree, dropped once read as often as it was named. */
  #takeTree(id: string): Buffer | undefined {
    const bytes = this.#treesAhead.get(id);
    if (!bytes) return undefined;
    const reads = (this.#treeReads.get(id) ?? 1) - 1;
    if (reads > 0) this.#treeReads.set(id, reads);
    else {
      this.#treeReads.delete(id);
      this.#treesAhead.delete(id);
      this.#treesKeptBytes -= bytes.length;
    }
    return bytes;
  }
}

/**
 * The subtrees a tree's JSON names, found without parsing it. Each id is a string of its own: a
 * match in the tree's text would keep the whole text alive as long as the id.
 */
function subtreeIds(tree: Buffer): string[] {
  const ids: string[] = [];
  for (let at = tree.indexOf(SUBTREE_KEY); at >= 0; at = tree.indexOf(SUBTREE_KEY, at + 1)) {
    const start = at + SUBTREE_KEY.length;
    const id = tree.toString('latin1', start, start + 64);
    if (tree[start + 64] === 0x22 && TREE_ID.test(id)) ids.push(id);
  }
  return ids;
}
