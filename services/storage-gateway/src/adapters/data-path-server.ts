import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import {
  commitSnapshotRequest,
  DATA_HEADERS,
  DATA_OPERATIONS,
  dataSubjectFilters,
  findSnapshotRequest,
  flushRequest,
  GATEWAY_QUEUE_GROUP,
  loadBlobRequest,
  loadBlobsRequest,
  loadTreesRequest,
  LOAD_TREES_MAX_TREES,
  missingBlobsRequest,
  parseDataSubject,
  repositoryInfoRequest,
  STORE_BLOBS_MAX_BLOBS,
  type DataOperation,
  type DataRequester,
} from '@volback/contracts';
import {
  DataPathError,
  DataPathErrorCode,
  decodeBlobHeaders,
  decodeJson,
  decodeStoreBlobsHeaders,
  encodeBlobHeaders,
  encodeBlobLengths,
  encodeDataPathError,
  encodeJson,
  FLUSH_PHASE_HEADER,
  FLUSH_STARTED,
  GATEWAY_ID_HEADER,
  maxBlobBytes,
  type Encoded,
} from '@volback/data-path';
import type { Logger } from '@volback/observability';
import type { z } from 'zod';
import { toReplyFailure } from './error-replies.ts';
import { tagsOfCommit } from '../domain/snapshot-selection.ts';
import type { DataPathAccess } from './data-path-access.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import type { GatewayRepository } from './gateway-repository.ts';
import { Semaphore } from './semaphore.ts';

/** Options of {@link startDataPathServer}. */
export interface DataPathServerOptions {
  readonly nc: NatsConnection;
  readonly store: GatewayRepository;
  /** Who may read what (the requester comes from the subject). */
  readonly access: DataPathAccess;
  readonly gatewayId: string;
  /** The repository id requests must name. */
  readonly repositoryId: string;
  readonly logger: Logger;
  readonly metrics?: GatewayMetrics;
}

/** The data-path subscriptions of one gateway. */
export interface DataPathServer {
  /** Stops taking requests (the queue group sends new ones to other gateways) and answers those in hand. */
  stop(): Promise<void>;
  /** Stops at once; requests in hand get no answer (their clients time out and try again). */
  abort(): void;
}

/** Requests of one kind a gateway handles at once; more wait in the client library's buffer. */
const CONCURRENCY: Record<DataOperation, number> = {
  repositoryInfo: 16,
  missingBlobs: 8,
  // Bounded so that a slow backend holds back the senders (they await each answer).
  storeBlob: 8,
  // Up to 256 small blobs (a few MiB) each, stored one after the other.
  storeBlobs: 4,
  flush: 4,
  commitSnapshot: 4,
  loadBlob: 16,
  // Each answer holds up to a message's worth of blobs (16 MiB): bounds the gateway's memory.
  loadBlobs: 4,
  loadTrees: 2,
  findSnapshot: 4,
};

/** Room a reply's headers take in a NATS message (they count against `max_payload`). */
const REPLY_HEADER_BYTES = 1024;
/** … plus, on a `load-blobs` reply, this much per blob in `Volback-Blob-Lengths`. */
const LENGTH_HEADER_BYTES = 12;

/** Parses a JSON request; a schema failure is thrown as `BAD_REQUEST` (nothing changes). */
function parse<S extends z.ZodType>(schema: S, msg: Msg): z.output<S> {
  const decoded = decodeJson(schema, msg.data);
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

/**
 * Serves the data path (DESIGN.md §2–3) for one gateway: every operation in the gateways' queue
 * group, except `flush`, which every gateway receives. Each request is validated before anything
 * changes; failures are answered with a stable code in `Volback-Error`, never a stack trace.
 */
export function startDataPathServer(options: DataPathServerOptions): DataPathServer {
  const { nc, store, access, gatewayId, repositoryId, metrics } = options;
  const log = options.logger.child({ component: 'data-path' });
  const subscriptions: Subscription[] = [];
  const loops: Promise<void>[] = [];
  const inFlight = new Set<Promise<void>>();
  let aborted = false;

  // NATS's default limit is 1 MiB; volback's servers raise it to 16 MiB.
  const maxPayload = () => nc.info?.max_payload ?? 1024 * 1024;

  /** A read request may name its session (`Volback-Session`): then it takes the session's lock. */
  const joinSessionOf = async (msg: Msg): Promise<void> => {
    const sessionId = msg.headers?.get(DATA_HEADERS.sessionId);
    if (!sessionId) return;
    if (!/^[\x21-\x7e]{1,200}$/.test(sessionId))
      throw new DataPathError(DataPathErrorCode.BadRequest, `${DATA_HEADERS.sessionId} is not a session id`);
    await store.joinSession(sessionId);
  };

  const checkRepository = (requested: string) => {
    if (requested !== repositoryId) {
      throw new DataPathError(
        DataPathErrorCode.UnknownRepository,
        `this gateway serves repository ${JSON.stringify(repositoryId)}, not ${JSON.stringify(requested)}`,
      );
    }
  };

  /** The restore whose grant a read names (`Volback-Grant`), if any. */
  const grantOf = (msg: Msg): string | undefined => {
    const grant = msg.headers?.get(DATA_HEADERS.grant);
    if (!grant) return undefined;
    if (!/^[\x21-\x7e]{1,200}$/.test(grant))
      throw new DataPathError(DataPathErrorCode.BadRequest, `${DATA_HEADERS.grant} is not a restore id`);
    return grant;
  };

  /** The requester, from the subject: NATS permissions make it the proof of who asks. */
  const requesterOf = (msg: Msg): DataRequester => {
    const parsed = parseDataSubject(msg.subject);
    // Only a host token no encoder produces gets here (`volback.data.host.a~2e.load-blob`).
    if (!parsed)
      throw new DataPathError(DataPathErrorCode.BadRequest, `not a data-path subject: ${msg.subject}`);
    return parsed.requester;
  };

  const handlers: Record<
    Exclude<DataOperation, 'flush'>,
    (msg: Msg, requester: DataRequester) => Promise<Encoded>
  > = {
    async repositoryInfo(msg) {
      const request = parse(repositoryInfoRequest, msg);
      checkRepository(request.repositoryId);
      return {
        data: encodeJson({
          repositoryId,
          version: store.config.version,
          chunkerPolynomial: store.config.chunker_polynomial,
        }),
      };
    },

    async missingBlobs(msg) {
      const request = parse(missingBlobsRequest, msg);
      checkRepository(request.repositoryId);
      await store.joinSession(request.sessionId);
      return { data: encodeJson({ missing: store.missingBlobs(request.blobs) }) };
    },

    async storeBlob(msg) {
      const headers = decodeBlobHeaders(msg.headers);
      if (!headers.ok) throw headers.error;
      const { type, id, sessionId } = headers.value;
      checkRepository(headers.value.repositoryId);
      if (!sessionId)
        throw new DataPathError(DataPathErrorCode.BadRequest, `${DATA_HEADERS.sessionId} is required`);
      if (msg.data.length > maxBlobBytes(type)) {
        throw new DataPathError(
          DataPathErrorCode.BlobTooLarge,
          `a ${type} blob may have at most ${maxBlobBytes(type)} bytes, got ${msg.data.length}`,
        );
      }
      // The body is checked against the id in a seal worker, before anything is stored.
      await store.joinSession(sessionId);
      const saved = await store.storeBlob(type, id, msg.data, sessionId);
      metrics?.blobs.inc({ type, outcome: saved.added ? 'added' : 'duplicate' });
      if (saved.added) metrics?.bytesAdded.inc({ type }, msg.data.length);
      return { data: encodeJson(saved) };
    },

    async storeBlobs(msg) {
      const headers = decodeStoreBlobsHeaders(msg.headers, msg.data.length, STORE_BLOBS_MAX_BLOBS);
      if (!headers.ok) throw headers.error;
      const { type, ids, lengths, sessionId } = headers.value;
      checkRepository(headers.value.repositoryId);
      // Every blob is checked (in a seal worker) before any is stored: one bad blob changes nothing.
      const blobs: Array<{ id: string; data: Uint8Array }> = [];
      let offset = 0;
      for (const [i, length] of lengths.entries()) {
        blobs.push({ id: ids[i]!, data: msg.data.subarray(offset, offset + length) });
        offset += length;
      }
      await store.joinSession(sessionId);
      const added = await store.storeBlobs(type, blobs, sessionId);
      for (const [i, { data }] of blobs.entries()) {
        metrics?.blobs.inc({ type, outcome: added[i] ? 'added' : 'duplicate' });
        if (added[i]) metrics?.bytesAdded.inc({ type }, data.length);
      }
      return { data: encodeJson({ added }) };
    },

    async commitSnapshot(msg, requester) {
      const request = parse(commitSnapshotRequest, msg);
      checkRepository(request.repositoryId);
      // An agent's snapshot is its host's, whatever the request says.
      const snapshot =
        requester.kind === 'host'
          ? { ...request.snapshot, tags: tagsOfCommit(request.snapshot.tags, requester.hostId) }
          : request.snapshot;
      const snapshotId = await store.commit(request.sessionId, snapshot);
      return { data: encodeJson({ snapshotId }) };
    },

    async loadBlob(msg, requester) {
      const request = parse(loadBlobRequest, msg);
      checkRepository(request.repositoryId);
      const { type, id } = request.blob;
      const scope = await access.admitBlobs(requester, grantOf(msg), type, [id]);
      await joinSessionOf(msg);
      const data = await store.loadBlob(type, id);
      access.served(scope, type, [id], [data]);
      if (data.length > maxPayload() - REPLY_HEADER_BYTES) {
        throw new DataPathError(
          DataPathErrorCode.BlobTooLarge,
          `${type} blob ${id} has ${data.length} bytes, more than this NATS server carries in a message`,
        );
      }
      return { headers: encodeBlobHeaders({ type, id, repositoryId }), data };
    },

    async loadBlobs(msg, requester) {
      const request = parse(loadBlobsRequest, msg);
      checkRepository(request.repositoryId);
      const scope = await access.admitBlobs(requester, grantOf(msg), request.type, request.ids);
      await joinSessionOf(msg);
      const limit = maxPayload() - REPLY_HEADER_BYTES;
      const blobs = await store.loadBlobs(
        request.type,
        request.ids,
        (count, bytes) => bytes + count * LENGTH_HEADER_BYTES <= limit,
      );
      access.served(scope, request.type, request.ids, blobs);
      const headers = natsHeaders();
      headers.set(DATA_HEADERS.blobType, request.type);
      headers.set(DATA_HEADERS.repositoryId, repositoryId);
      headers.set(DATA_HEADERS.blobLengths, encodeBlobLengths(blobs.map((b) => b.length)));
      return { headers, data: blobs.length === 1 ? blobs[0]! : Buffer.concat(blobs) };
    },

    async loadTrees(msg, requester) {
      const request = parse(loadTreesRequest, msg);
      checkRepository(request.repositoryId);
      const scope = await access.admitBlobs(requester, grantOf(msg), 'tree', [request.root]);
      await joinSessionOf(msg);
      // The root goes whatever `maxBytes` says (a message must carry it); the trees below, within it.
      const message = maxPayload() - REPLY_HEADER_BYTES;
      const wanted = Math.min(message, request.maxBytes ?? message);
      const trees = await store.loadTrees(
        request.root,
        (count, bytes) =>
          count <= LOAD_TREES_MAX_TREES &&
          bytes + count * LENGTH_HEADER_BYTES <= (count === 1 ? message : wanted),
      );
      access.servedTrees(scope, trees);
      const headers = natsHeaders();
      headers.set(DATA_HEADERS.blobType, 'tree');
      headers.set(DATA_HEADERS.repositoryId, repositoryId);
      headers.set(DATA_HEADERS.blobLengths, encodeBlobLengths(trees.map((t) => t.data.length)));
      return { headers, data: trees.length === 1 ? trees[0]!.data : Buffer.concat(trees.map((t) => t.data)) };
    },

    async findSnapshot(msg, requester) {
      const request = parse(findSnapshotRequest, msg);
      checkRepository(request.repositoryId);
      const grant = grantOf(msg);
      const readable = access.readable(requester);
      const selection = await store.findSnapshot({
        ref: request.ref,
        ...(readable ? { readable } : {}),
        ...(request.hostname !== undefined ? { hostname: request.hostname } : {}),
        ...(request.path !== undefined ? { path: request.path } : {}),
        ...(request.tags?.length ? { tags: request.tags } : {}),
      });
      switch (selection.kind) {
        case 'invalid':
          throw new DataPathError(DataPathErrorCode.BadRequest, selection.reason);
        case 'ambiguous':
          throw new DataPathError(
            DataPathErrorCode.BadRequest,
            `snapshot prefix ${request.ref} names ${selection.count} snapshots: give more digits`,
          );
        case 'none':
          return { data: encodeJson({ snapshotId: null, tree: null, paths: [], time: null }) };
        case 'found': {
          await access.admitSnapshot(requester, grant, selection.snapshot);
          const { id, snapshot } = selection.snapshot;
          return {
            data: encodeJson({
              snapshotId: id,
              tree: snapshot.tree,
              paths: snapshot.paths,
              time: snapshot.time,
              tags: snapshot.tags ?? [],
            }),
          };
        }
      }
    },
  };

  const fail = (operation: string, error: unknown, subject?: string): Encoded & { code: string } => {
    const failure = toReplyFailure(error);
    const { code, message: reason } = failure.error;
    if (failure.internal) log.error({ operation, err: error }, 'request failed');
    // A read of what the requester may not read is an attempt worth seeing (or a bug).
    else if (code === DataPathErrorCode.Forbidden)
      log.warn({ operation, subject, code, reason }, 'request refused');
    else log.debug({ operation, code, reason }, 'request refused');
    return { ...encodeDataPathError(failure.error), code: failure.error.code };
  };

  const handle = async (name: DataOperation, msg: Msg): Promise<void> => {
    const operation = DATA_OPERATIONS[name];
    const started = performance.now();
    let outcome = 'ok';
    if (name === 'flush') {
      outcome = await handleFlush(msg);
    } else {
      let reply: Encoded;
      try {
        reply = await handlers[name](msg, requesterOf(msg));
      } catch (error) {
        const failed = fail(operation, error, msg.subject);
        outcome = failed.code;
        reply = failed;
      }
      const headers = reply.headers ?? natsHeaders();
      headers.set(GATEWAY_ID_HEADER, gatewayId);
      msg.respond(reply.data, { headers });
    }
    metrics?.requests.inc({ operation, outcome });
    metrics?.requestSeconds.observe({ operation }, (performance.now() - started) / 1000);
  };

  /** Acknowledges at once, answers again once the packs and index are written. */
  const handleFlush = async (msg: Msg): Promise<string> => {
    const named = () => {
      const h = natsHeaders();
      h.set(GATEWAY_ID_HEADER, gatewayId);
      return h;
    };
    try {
      requesterOf(msg);
      const request = parse(flushRequest, msg);
      checkRepository(request.repositoryId);
      const ack = named();
      ack.set(FLUSH_PHASE_HEADER, FLUSH_STARTED);
      msg.respond(encodeJson({ gatewayId, packsWritten: 0 }), { headers: ack });
      const packsWritten = await store.flush();
      // A flush ends the session here (a commit follows, or the work is done): restic may lock
      // the repository again at once. A later request of the session takes the lock again.
      await store.endSession(request.sessionId);
      msg.respond(
        encodeJson({ gatewayId, packsWritten, bytesStored: store.storedBytesOf(request.sessionId) }),
        { headers: named() },
      );
      return 'ok';
    } catch (error) {
      const failed = fail('flush', error);
      failed.headers?.set(GATEWAY_ID_HEADER, gatewayId);
      msg.respond(failed.data, failed.headers ? { headers: failed.headers } : undefined);
      return failed.code;
    }
  };

  const serve = (name: DataOperation, subject: string, slots: Semaphore) => {
    const sub = nc.subscribe(subject, name === 'flush' ? {} : { queue: GATEWAY_QUEUE_GROUP });
    subscriptions.push(sub);
    const loop = (async () => {
      for await (const msg of sub) {
        if (aborted) break;
        if (!msg.reply) continue; // a publish, not a request: nobody to answer
        const release = await slots.acquire();
        if (aborted) {
          release();
          break;
        }
        const job = handle(name, msg)
          .catch((error: unknown) => log.error({ subject, err: error }, 'could not answer a request'))
          .finally(() => {
            release();
            inFlight.delete(job);
          });
        inFlight.add(job);
      }
    })().catch((error: unknown) => log.error({ subject, err: error }, 'subscription failed'));
    loops.push(loop);
  };

  // One subscription per operation and kind of requester, the semaphore shared: a slow operation
  // never holds up another, and no request reaches a gateway twice (flush is not in the group).
  for (const name of Object.keys(DATA_OPERATIONS) as DataOperation[]) {
    const slots = new Semaphore(CONCURRENCY[name]);
    for (const subject of dataSubjectFilters(DATA_OPERATIONS[name])) serve(name, subject, slots);
  }
  log.info({ gatewayId, repositoryId, queue: GATEWAY_QUEUE_GROUP }, 'serving the data path');

  return {
    async stop() {
      // Draining ends each loop once the requests already delivered here have been taken.
      await Promise.all(
        subscriptions.map((sub) => (sub.isClosed() ? undefined : sub.drain().catch(() => undefined))),
      );
      await Promise.all(loops);
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    abort() {
      aborted = true;
      for (const sub of subscriptions) if (!sub.isClosed()) sub.unsubscribe();
    },
  };
}
