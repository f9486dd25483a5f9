import { randomUUID } from 'node:crypto';
import {
  createInbox,
  headers as natsHeaders,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';
import {
  commitSnapshotReply,
  DATA_HEADERS,
  DATA_OPERATIONS,
  dataSubject,
  findSnapshotReply,
  flushReply,
  inboxPrefix,
  LOAD_BLOBS_MAX_IDS,
  LOAD_TREES_MAX_TREES,
  missingBlobsReply,
  repositoryInfoReply,
  storeBlobReply,
  storeBlobsReply,
  STORE_BLOBS_MAX_BLOBS,
  type DataOperation,
  type DataRequester,
} from '@volback/contracts';
import { release, releaseAfterViews, sha256Hex } from '@volback/repository';
import type { z } from 'zod';
import {
  decodeBlobHeaders,
  decodeBlobLengths,
  decodeReply,
  encodeBlobHeaders,
  encodeJson,
  encodeStoreBlobsHeaders,
  FLUSH_PHASE_HEADER,
  FLUSH_STARTED,
  GATEWAY_ID_HEADER,
  readError,
} from './codec.ts';
import { ByteBudget } from './byte-budget.ts';
import { DataPathError, DataPathErrorCode, RETRYABLE_CODES, type BlobRef } from './errors.ts';

/** One gateway's answer to a flush. */
export interface FlushResult {
  readonly gatewayId: string;
  readonly packsWritten: number;
  /** Bytes the session's new blobs take in this gateway's packs, so far (absent from older gateways). */
  readonly bytesStored?: number;
}

/** Options of {@link DataPathClient}. */
export interface DataPathClientOptions {
  /**
   * Who asks: the agent of a host, or the catalog. It stands in every request's subject
   * (`volback.data.host.<H>.…`, `volback.data.catalog.…`); NATS permissions let an identity publish
   * only on its own, and the gateway serves each requester what it may read.
   */
  requester: DataRequester;
  /**
   * A restore's id, sent as `Volback-Grant` with every read (`findSnapshot`, `loadBlob`,
   * `loadBlobs`): its grant lets an agent read a snapshot of another host (KV `VOLBACK_GRANTS`,
   * written by the catalog). Without it an agent reads only its own host's snapshots.
   */
  grant?: string;
  /** The repository to talk to (`default` unless several are configured). */
  repositoryId?: string;
  /**
   * Id of this unit of work (a backup or restore): gateways hold a shared repository lock per
   * session until it commits or goes idle. A random one when absent.
   */
  sessionId?: string;
  /**
   * Time limit of one request in ms (default 30 000). `flush` and `commitSnapshot` write packs and
   * walk trees, so they get four times as long.
   */
  timeoutMs?: number;
  /** Further tries after a timeout or when no gateway listens (default 3), with exponential backoff. */
  retries?: number;
  /**
   * Told of every request the NATS server refuses (`NOT_PERMITTED`: permissions written before the
   * operation existed), e.g. to log the remedy: a store then falls back to slower operations.
   */
  onNotPermitted?: (error: DataPathError) => void;
}

/** What a gateway says about its repository. */
export interface RepositoryInfo {
  repositoryId: string;
  version: 1 | 2;
  /** The chunker polynomial, hex: chunk with it so blobs deduplicate across hosts (and with restic). */
  chunkerPolynomial: string;
}

/** The snapshot a commit writes; `time` is RFC 3339 with offset. */
export interface SnapshotToCommit {
  tree: string;
  paths: string[];
  hostname: string;
  time: string;
  parent?: string;
  tags?: string[];
}

/** A found snapshot, or nulls when none matches. */
export interface FoundSnapshot {
  snapshotId: string | null;
  tree: string | null;
  paths: string[];
  time: string | null;
  /** The snapshot's tags (`host-id:<id>` names the host that wrote it); absent from older gateways. */
  tags?: string[] | undefined;
}

/** Most blobs one `missing-blobs` request asks about (the contract's limit). */
export const MISSING_BLOBS_BATCH = 10_000;
/** How many `missing-blobs` batches are asked at once. */
const MISSING_BLOBS_PARALLEL = 4;
/**
 * How long a flush waits, after the last gateway acknowledged the broadcast, for more to do so,
 * unless every gateway that answered the client's requests has already finished. Gateways
 * acknowledge as soon as the message arrives, before they write anything.
 */
const FLUSH_ACK_WINDOW_MS = 500;
/** Slow operations (flush writes packs; commit flushes, reloads the index and walks trees). */
const SLOW_FACTOR = 4;
const BLOB_ID = /^[0-9a-f]{64}$/;
/**
 * Bytes of `load-blobs` replies one connection asks for at once (see {@link DataPathClient.replyBudget}).
 * The NATS server cuts off a client that lets more than 64 MiB wait for it (`max_pending`: a "slow
 * consumer"), and every reply on its way is lost with the connection.
 */
export const REPLY_BUDGET_BYTES = 48 * 1024 * 1024;
/** One budget per connection: every client and restore on it shares the server's limit. */
const replyBudgets = new WeakMap<NatsConnection, ByteBudget>();
/**
 * Replies of at least this many bytes are freed once their blobs are released ({@link
 * DataPathClient.loadBlobs}): four times one read from a socket (64 KiB; TLS gives 16 KiB), so
 * the NATS client gathered them into a buffer of their own.
 */
const OWN_REPLY_BUFFER_FROM = 256 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Maps a NATS request failure to a data-path error. */
function fromNatsError(error: unknown, subject: string, timeoutMs: number): DataPathError {
  if (error instanceof DataPathError) return error;
  if (error instanceof TimeoutError) {
    return new DataPathError(DataPathErrorCode.Timeout, `no answer on ${subject} within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  // nats.js fails the request with a RequestError whose cause is the server's refusal.
  if (
    error instanceof PermissionViolationError ||
    (error instanceof RequestError && error.cause instanceof PermissionViolationError)
  ) {
    return new DataPathError(
      DataPathErrorCode.NotPermitted,
      `the NATS server does not let this identity publish on ${subject} (permissions written before this operation existed: rewrite them with "volback init nats-config", which reloads NATS)`,
      { cause: error },
    );
  }
  if (error instanceof RequestError && error.isNoResponders()) {
    return new DataPathError(DataPathErrorCode.NoGateway, `no storage gateway listens on ${subject}`, {
      cause: error,
    });
  }
  return new DataPathError(
    DataPathErrorCode.Internal,
    `request on ${subject} failed: ${(error as Error).message}`,
    { cause: error },
  );
}

/**
 * The agent's side of the data path (DESIGN.md §2–3): request–reply with the storage gateways'
 * queue group. Every request carries the session, and is tried again after a timeout or when no
 * gateway listens. All requests are idempotent: storing a blob twice stores it once, and
 * committing the same snapshot twice (same tree, paths, host, time, parent, tags) writes it once.
 */
export class DataPathClient {
  /** Id of this unit of work, sent with every request. */
  readonly sessionId: string;
  /**
   * Bytes of replies asked for and not yet used, shared by every client on this NATS connection
   * ({@link REPLY_BUDGET_BYTES}): {@link GatewayBlobStore.loadBlobs} takes a batch's largest
   * possible reply before asking, and gives it back once the batch's blobs are handed on.
   */
  readonly replyBudget: ByteBudget;
  readonly #nc: NatsConnection;
  readonly #requester: DataRequester;
  readonly #grant: string | undefined;
  readonly #repositoryId: string;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #onNotPermitted: ((error: DataPathError) => void) | undefined;
  /** Gateways that answered a request of this client (each names itself): a flush waits for them. */
  readonly #servedBy = new Set<string>();

  constructor(nc: NatsConnection, options: DataPathClientOptions) {
    this.#nc = nc;
    this.#requester = options.requester;
    this.#grant = options.grant;
    this.#repositoryId = options.repositoryId ?? 'default';
    this.sessionId = options.sessionId ?? `session-${randomUUID()}`;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#retries = options.retries ?? 3;
    this.#onNotPermitted = options.onNotPermitted;
    let budget = replyBudgets.get(nc);
    if (!budget) {
      budget = new ByteBudget(REPLY_BUDGET_BYTES);
      replyBudgets.set(nc, budget);
    }
    this.replyBudget = budget;
    if (this.#grant !== undefined && !/^[\x21-\x7e]{1,200}$/.test(this.#grant)) {
      throw new DataPathError(DataPathErrorCode.BadRequest, 'grant must be a restore id');
    }
    if (!/^[\x21-\x7e]{1,200}$/.test(this.sessionId)) {
      throw new DataPathError(
        DataPathErrorCode.BadRequest,
        'sessionId must be printable ASCII without spaces, at most 200 characters',
      );
    }
  }

  /** The largest message the NATS server carries (its `max_payload`; NATS's default 1 MiB until known). */
  get maxMessageBytes(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  /** The repository's format version and chunker polynomial. */
  async repositoryInfo(): Promise<RepositoryInfo> {
    const msg = await this.#request('repositoryInfo', encodeJson({ repositoryId: this.#repositoryId }));
    return decodeReply(msg, repositoryInfoReply);
  }

  /**
   * Which of these blobs the repository lacks (in the order asked). The first request of a session
   * makes the answering gateway reload its index and take the session's shared lock.
   */
  async missingBlobs(blobs: ReadonlyArray<BlobRef>): Promise<BlobRef[]> {
    for (const blob of blobs) this.#checkBlob(blob.type, blob.id);
    const batches: BlobRef[][] = [];
    for (let i = 0; i < blobs.length; i += MISSING_BLOBS_BATCH)
      batches.push(blobs.slice(i, i + MISSING_BLOBS_BATCH).map(({ type, id }) => ({ type, id })));
    const results: BlobRef[][] = new Array<BlobRef[]>(batches.length);
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const index = next++;
        const msg = await this.#request(
          'missingBlobs',
          encodeJson({ repositoryId: this.#repositoryId, sessionId: this.sessionId, blobs: batches[index] }),
        );
        results[index] = decodeReply(msg, missingBlobsReply).missing;
      }
    };
    await Promise.all(Array.from({ length: Math.min(MISSING_BLOBS_PARALLEL, batches.length) }, worker));
    return results.flat();
  }

  /**
   * Sends one blob (its plaintext; the gateway checks that it hashes to `id`). `added` is false
   * when the repository already had it. The blob is durable only after {@link flush}.
   */
  async storeBlob(
    type: 'data' | 'tree',
    id: string,
    data: Uint8Array,
  ): Promise<{ added: boolean; storedLength: number }> {
    this.#checkBlob(type, id);
    const msg = await this.#request('storeBlob', data, {
      headers: () =>
        encodeBlobHeaders({ type, id, repositoryId: this.#repositoryId, sessionId: this.sessionId }),
    });
    return decodeReply(msg, storeBlobReply);
  }

  /**
   * Sends several blobs of one type in one round trip (1 to 256, together within a NATS message;
   * an id may repeat). The gateway checks every blob against its id before it stores any
   * (`BLOB_ID_MISMATCH`: nothing stored). `added[i]` is false when the repository already had
   * blob `i`. When nobody listens on `store-blobs` (gateways older than it), `NO_GATEWAY` comes at
   * once, without the retries: fall back to {@link storeBlob}.
   */
  async storeBlobs(
    type: 'data' | 'tree',
    blobs: ReadonlyArray<{ readonly id: string; readonly data: Uint8Array }>,
  ): Promise<boolean[]> {
    for (const blob of blobs) this.#checkBlob(type, blob.id);
    if (blobs.length === 0 || blobs.length > STORE_BLOBS_MAX_BLOBS) {
      throw new DataPathError(
        DataPathErrorCode.BadRequest,
        `storeBlobs takes 1 to ${STORE_BLOBS_MAX_BLOBS} blobs, not ${blobs.length}`,
      );
    }
    const joined = blobs.length > 1 ? Buffer.concat(blobs.map((b) => b.data)) : undefined;
    const msg = await this.#request('storeBlobs', joined ?? blobs[0]!.data, {
      headers: () =>
        encodeStoreBlobsHeaders({
          type,
          ids: blobs.map((b) => b.id),
          lengths: blobs.map((b) => b.data.length),
          repositoryId: this.#repositoryId,
          sessionId: this.sessionId,
        }),
      retryNoGateway: false,
    });
    // Answered, so its bytes have gone out (the NATS client copies a message into its own frame
    // before it writes it anyway). Freed now, not at a collection that comes after hundreds of MiB
    // of such bodies (a failed request's body may still wait in the client's queue, and is left to
    // the collector).
    release(joined, 0);
    const { added } = decodeReply(msg, storeBlobsReply);
    if (added.length !== blobs.length) {
      throw new DataPathError(
        DataPathErrorCode.BadReply,
        `the gateway answered for ${added.length} blobs, not the ${blobs.length} sent`,
      );
    }
    return added;
  }

  /**
   * Asks every gateway to write its open packs and their index, and waits for those that served
   * this client to finish (each names itself on every reply); when none did, or one of them does
   * not answer, for those that acknowledged the broadcast. Gateways acknowledge at once and
   * answer again when their packs are durable; a gateway that acknowledged nothing within 500 ms
   * of the last acknowledgement, or died while writing, is missed: its blobs are lost, and
   * {@link commitSnapshot} reports them as missing. That check, not this call, is the safety net.
   */
  async flush(): Promise<FlushResult[]> {
    const body = encodeJson({ repositoryId: this.#repositoryId, sessionId: this.sessionId });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#flushOnce(body);
      } catch (error) {
        const failure = fromNatsError(error, this.#subject('flush'), this.#timeoutMs * SLOW_FACTOR);
        if (!RETRYABLE_CODES.has(failure.code) || attempt >= this.#retries) throw failure;
        await sleep(this.#backoff(attempt));
      }
    }
  }

  async #flushOnce(body: Uint8Array): Promise<FlushResult[]> {
    const inbox = createInbox(
      inboxPrefix(
        this.#requester.kind === 'host'
          ? { kind: 'agent', hostId: this.#requester.hostId }
          : { kind: 'service', service: 'catalog' },
      ),
    );
    const sub = this.#nc.subscribe(inbox);
    const acknowledged = new Set<string>();
    const done = new Map<string, number>();
    const stored = new Map<string, number>();
    let failure: DataPathError | undefined;
    const deadline = Date.now() + this.#timeoutMs * SLOW_FACTOR;
    // When the last gateway made itself known (its acknowledgement, or an answer without one).
    let lastAck = 0;
    let wake: (() => void) | undefined;
    const timer = setInterval(() => wake?.(), 100);
    const servedBy = [...this.#servedBy];
    try {
      this.#nc.publish(this.#subject('flush'), body, { reply: inbox });
      const messages = (async () => {
        for await (const msg of sub) {
          if (msg.data.length === 0 && msg.headers?.code === 503) {
            throw new DataPathError(
              DataPathErrorCode.NoGateway,
              `no storage gateway listens on ${this.#subject('flush')}`,
            );
          }
          const error = readError(msg);
          if (error) {
            failure ??= error;
            const gatewayId = msg.headers?.get(GATEWAY_ID_HEADER) || `unnamed-${done.size}`;
            if (!acknowledged.has(gatewayId)) lastAck = Date.now();
            done.set(gatewayId, -1);
          } else {
            const reply = decodeReply(msg, flushReply);
            if (!acknowledged.has(reply.gatewayId)) lastAck = Date.now();
            acknowledged.add(reply.gatewayId);
            if (msg.headers?.get(FLUSH_PHASE_HEADER) !== FLUSH_STARTED) {
              done.set(reply.gatewayId, reply.packsWritten);
              if (reply.bytesStored !== undefined) stored.set(reply.gatewayId, reply.bytesStored);
            }
          }
          wake?.();
        }
      })();
      let messageError: unknown;
      messages.catch((error: unknown) => {
        messageError = error;
        wake?.();
      });
      for (;;) {
        if (messageError) throw messageError;
        // Every gateway that served this client is done: the others hold nothing of its session.
        if (servedBy.length > 0 && servedBy.every((id) => done.has(id))) break;
        const now = Date.now();
        const settled = lastAck > 0 && now - lastAck >= FLUSH_ACK_WINDOW_MS;
        if (settled && [...acknowledged].every((id) => done.has(id))) break;
        if (now >= deadline) {
          if (lastAck === 0) throw new TimeoutError();
          break; // gateways that acknowledged but never finished are left out (see above)
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      clearInterval(timer);
      sub.unsubscribe();
    }
    if (failure) throw failure;
    return [...done]
      .filter(([, packs]) => packs >= 0)
      .map(([gatewayId, packsWritten]) => ({
        gatewayId,
        packsWritten,
        ...(stored.has(gatewayId) ? { bytesStored: stored.get(gatewayId)! } : {}),
      }))
      .sort((a, b) => a.gatewayId.localeCompare(b.gatewayId));
  }

  /**
   * Writes the snapshot once every blob its tree reaches is stored; returns its id. The gateway
   * flushes its own packs first, so call {@link flush} before to reach the others. Blobs that are
   * not stored (a gateway died before flushing) raise `MISSING_BLOBS` with `missing`: send those
   * again and commit again.
   */
  async commitSnapshot(snapshot: SnapshotToCommit): Promise<string> {
    const msg = await this.#request(
      'commitSnapshot',
      encodeJson({ repositoryId: this.#repositoryId, sessionId: this.sessionId, snapshot }),
      { timeoutMs: this.#timeoutMs * SLOW_FACTOR },
    );
    return decodeReply(msg, commitSnapshotReply).snapshotId;
  }

  /** Reads one blob's plaintext; `BLOB_CORRUPT` unless it hashes to `id`. */
  async loadBlob(type: 'data' | 'tree', id: string): Promise<Buffer> {
    this.#checkBlob(type, id);
    const msg = await this.#request(
      'loadBlob',
      encodeJson({ repositoryId: this.#repositoryId, blob: { type, id } }),
      { headers: () => this.#sessionHeaders() },
    );
    const error = readError(msg);
    if (error) throw error;
    const blob = decodeBlobHeaders(msg.headers);
    if (!blob.ok || blob.value.id !== id || blob.value.type !== type) {
      throw new DataPathError(
        DataPathErrorCode.BadReply,
        `the gateway answered another blob than ${type} ${id}`,
      );
    }
    const data = Buffer.from(msg.data);
    if (sha256Hex(data) !== id) {
      throw new DataPathError(DataPathErrorCode.BlobCorrupt, `${type} blob ${id} does not match its id`);
    }
    return data;
  }

  /**
   * Reads blobs of one type in one round trip: the plaintexts of a prefix of `ids` (at least the
   * first, at most 256 ids; an id may repeat), as many as fit in one NATS message. Ask again for
   * the rest. Each is checked against its id (`BLOB_CORRUPT`); a blob the gateway cannot read
   * ends the prefix, or fails the call when it is the first. When nobody listens on `load-blobs`
   * (gateways older than it), `NO_GATEWAY` comes at once, without the retries: fall back to
   * {@link loadBlob}, which still retries when no gateway listens at all.
   * The blobs are views of the reply's bytes: a caller done with one may release it
   * (`release`, at most once each), and the last released frees them all.
   */
  async loadBlobs(type: 'data' | 'tree', ids: readonly string[]): Promise<Buffer[]> {
    for (const id of ids) this.#checkBlob(type, id);
    if (ids.length === 0 || ids.length > LOAD_BLOBS_MAX_IDS) {
      throw new DataPathError(
        DataPathErrorCode.BadRequest,
        `loadBlobs takes 1 to ${LOAD_BLOBS_MAX_IDS} ids, not ${ids.length}`,
      );
    }
    const msg = await this.#request(
      'loadBlobs',
      encodeJson({ repositoryId: this.#repositoryId, type, ids }),
      { headers: () => this.#sessionHeaders(), retryNoGateway: false },
    );
    const error = readError(msg);
    if (error) throw error;
    if (msg.headers?.get(DATA_HEADERS.blobType) !== type) {
      throw new DataPathError(
        DataPathErrorCode.BadReply,
        `the gateway answered other blobs than ${type} blobs`,
      );
    }
    const lengths = decodeBlobLengths(msg.headers.get(DATA_HEADERS.blobLengths), msg.data.length, ids.length);
    if (!lengths) {
      throw new DataPathError(
        DataPathErrorCode.BadReply,
        `the gateway's ${DATA_HEADERS.blobLengths} does not describe the ${msg.data.length} bytes of its answer to ${ids.length} ids`,
      );
    }
    // Views of the message's bytes (the NATS client gives every message buffers of its own).
    const body = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
    const blobs: Buffer[] = [];
    let offset = 0;
    for (const [i, length] of lengths.entries()) {
      const blob = body.subarray(offset, offset + length);
      offset += length;
      if (sha256Hex(blob) !== ids[i]) {
        throw new DataPathError(
          DataPathErrorCode.BlobCorrupt,
          `${type} blob ${ids[i]} does not match its id`,
        );
      }
      blobs.push(blob);
    }
    // Its blobs are freed together once each is released (a restore frees a blob once written
    // the last time): a 4 MiB reply lived until the next full collection, and a restore of many
    // small files moves hundreds of MiB through them. Only a reply larger than any read from the
    // socket, which the NATS client gathers into a buffer of its own: a smaller one may be a view
    // of a read that holds other messages.
    if (msg.data.byteLength >= OWN_REPLY_BUFFER_FROM && msg.data.buffer instanceof ArrayBuffer)
      releaseAfterViews(msg.data.buffer, blobs.length);
    return blobs;
  }

  /**
   * A tree and the trees below it, breadth first, each once, in one round trip: the root first,
   * then as many as `maxBytes` (and one message) hold. Each tree's id is the SHA-256 of its bytes;
   * the first must be `root` (`BLOB_CORRUPT` otherwise). When nobody listens on `load-trees`
   * (gateways older than it), `NO_GATEWAY` comes at once, without the retries: fall back to
   * {@link loadBlob}.
   */
  async loadTrees(root: string, maxBytes?: number): Promise<Array<{ id: string; data: Buffer }>> {
    this.#checkBlob('tree', root);
    const msg = await this.#request(
      'loadTrees',
      encodeJson({ repositoryId: this.#repositoryId, root, ...(maxBytes ? { maxBytes } : {}) }),
      { headers: () => this.#sessionHeaders(), retryNoGateway: false },
    );
    const error = readError(msg);
    if (error) throw error;
    const lengths = decodeBlobLengths(
      msg.headers?.get(DATA_HEADERS.blobLengths),
      msg.data.length,
      LOAD_TREES_MAX_TREES,
    );
    if (msg.headers?.get(DATA_HEADERS.blobType) !== 'tree' || !lengths) {
      throw new DataPathError(
        DataPathErrorCode.BadReply,
        `the gateway's answer to load-trees does not describe the ${msg.data.length} bytes of its trees`,
      );
    }
    const body = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
    const trees: Array<{ id: string; data: Buffer }> = [];
    let offset = 0;
    for (const length of lengths) {
      const data = body.subarray(offset, offset + length);
      offset += length;
      trees.push({ id: sha256Hex(data), data });
    }
    if (trees[0]!.id !== root) {
      throw new DataPathError(DataPathErrorCode.BlobCorrupt, `tree blob ${root} does not match its id`);
    }
    return trees;
  }

  /**
   * A snapshot by id, unique id prefix, or `latest` (the newest matching `filter`: same host, and
   * `path` among its paths). Nulls when none matches.
   */
  async findSnapshot(
    ref: string,
    filter: { hostname?: string; path?: string; tags?: readonly string[] } = {},
  ): Promise<FoundSnapshot> {
    const msg = await this.#request(
      'findSnapshot',
      encodeJson({
        repositoryId: this.#repositoryId,
        ref,
        ...(filter.hostname !== undefined ? { hostname: filter.hostname } : {}),
        ...(filter.path !== undefined ? { path: filter.path } : {}),
        ...(filter.tags?.length ? { tags: filter.tags } : {}),
      }),
      { headers: () => this.#grantHeaders() },
    );
    return decodeReply(msg, findSnapshotReply) satisfies z.output<typeof findSnapshotReply>;
  }

  #checkBlob(type: string, id: string): void {
    if ((type !== 'data' && type !== 'tree') || !BLOB_ID.test(id)) {
      throw new DataPathError(
        DataPathErrorCode.BadRequest,
        `not a blob: ${JSON.stringify(type)} ${JSON.stringify(id)} (data or tree, 64 lower-case hex digits)`,
      );
    }
  }

  #sessionHeaders(): MsgHdrs {
    const h = this.#grantHeaders();
    h.set(DATA_HEADERS.repositoryId, this.#repositoryId);
    h.set(DATA_HEADERS.sessionId, this.sessionId);
    return h;
  }

  #grantHeaders(): MsgHdrs {
    const h = natsHeaders();
    if (this.#grant !== undefined) h.set(DATA_HEADERS.grant, this.#grant);
    return h;
  }

  #subject(operation: DataOperation): string {
    return dataSubject(this.#requester, DATA_OPERATIONS[operation]);
  }

  #backoff(attempt: number): number {
    const base = Math.min(5_000, 250 * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  /**
   * One request, tried again after a timeout or when no gateway listens (unless `retryNoGateway`
   * is false); error replies are returned.
   */
  async #request(
    operation: DataOperation,
    data: Uint8Array,
    options: { headers?: () => MsgHdrs; timeoutMs?: number; retryNoGateway?: boolean } = {},
  ): Promise<Msg> {
    const subject = this.#subject(operation);
    const timeout = options.timeoutMs ?? this.#timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await this.#nc.request(subject, data, {
          timeout,
          ...(options.headers ? { headers: options.headers() } : {}),
        });
        const gatewayId = reply.headers?.get(GATEWAY_ID_HEADER);
        if (gatewayId) this.#servedBy.add(gatewayId);
        return reply;
      } catch (error) {
        const failure = fromNatsError(error, subject, timeout);
        if (failure.code === DataPathErrorCode.NotPermitted) this.#onNotPermitted?.(failure);
        const retry =
          RETRYABLE_CODES.has(failure.code) &&
          (options.retryNoGateway !== false || failure.code !== DataPathErrorCode.NoGateway);
        if (!retry || attempt >= this.#retries) throw failure;
        await sleep(this.#backoff(attempt));
      }
    }
  }
}
