import { z } from 'zod';
import { repositoryId, snapshotId, workId } from './fields.ts';

/**
 * The operations of the data path between agents (and the catalog) and the storage gateways
 * (DESIGN.md §2–3): NATS request–reply on `dataSubject(requester, operation)`, i.e.
 * `volback.data.host.<H>.<operation>` or `volback.data.catalog.<operation>`, gateways in one queue
 * group (`flush` goes to every gateway). Chunks travel as raw bytes with their id and type in
 * headers; everything else is JSON. The gateway never sends keys: agents learn only the chunker
 * polynomial.
 */
export const DATA_OPERATIONS = {
  /** The repository's chunker polynomial and format version. */
  repositoryInfo: 'repository-info',
  /** Which of these blobs the repository lacks. */
  missingBlobs: 'missing-blobs',
  /** Store one blob (raw plaintext body; id and type in headers). */
  storeBlob: 'store-blob',
  /**
   * Store several blobs of one type in one round trip (backups send small blobs this way): the
   * body is their plaintexts, concatenated; `Volback-Blob-Ids` and `Volback-Blob-Lengths` say
   * which and how long, in order. Every blob is checked against its id before any is stored: one
   * that does not match fails the request and nothing is stored.
   */
  storeBlobs: 'store-blobs',
  /** Every gateway writes the packs and index holding a session's blobs (not a queue group). */
  flush: 'flush',
  /** Write a snapshot once every blob its trees reach is stored. */
  commitSnapshot: 'commit-snapshot',
  /** Read one blob (raw plaintext reply). */
  loadBlob: 'load-blob',
  /**
   * Read several blobs of one type in one round trip (restores): the reply body is the plaintexts
   * of a prefix of the ids asked for (at least one), concatenated, their lengths in
   * `Volback-Blob-Lengths`. The gateway stops before the reply would outgrow the NATS server's
   * `max_payload`; the client asks again for the rest. A blob that cannot be read ends the prefix
   * before it, or is the error reply when it comes first.
   */
  loadBlobs: 'load-blobs',
  /**
   * Read a tree and the trees below it, breadth first, in one round trip (a restore or a backup
   * walking a snapshot's trees): the reply body is the trees, concatenated, the root first, their
   * lengths in `Volback-Blob-Lengths`; each tree after the root is a subtree of one before it. The
   * gateway stops before the reply outgrows `maxBytes` or the NATS server's `max_payload`.
   */
  loadTrees: 'load-trees',
  /** A snapshot's metadata by id, prefix or `latest` of a host and path. */
  findSnapshot: 'find-snapshot',
} as const;
/** One of the data path's operations, by its key in {@link DATA_OPERATIONS}. */
export type DataOperation = keyof typeof DATA_OPERATIONS;

/** Name of the gateways' queue group. */
export const GATEWAY_QUEUE_GROUP = 'volback-gateways';

/** Headers of `store-blob` and `store-blobs` requests / `load-blob` and `load-blobs` replies. */
export const DATA_HEADERS = {
  blobId: 'Volback-Blob-Id',
  /** On a `store-blobs` request: the ids of the blobs in the body, in order, separated by commas. */
  blobIds: 'Volback-Blob-Ids',
  blobType: 'Volback-Blob-Type',
  /**
   * On a `store-blobs` request and a `load-blobs` reply: the byte length of each blob in the body,
   * in order, as decimal numbers separated by commas (`1048576,523,0`); they add up to the body's
   * length.
   */
  blobLengths: 'Volback-Blob-Lengths',
  repositoryId: 'Volback-Repository',
  sessionId: 'Volback-Session',
  /** On a failed reply: the error code; the body is a {@link dataErrorSchema} JSON. */
  error: 'Volback-Error',
  /**
   * On the `find-snapshot`, `load-blob`, `load-blobs` and `load-trees` requests of a restore: its restore id, whose
   * grant (KV bucket `VOLBACK_GRANTS`) lets the agent read a snapshot of another host.
   */
  grant: 'Volback-Grant',
} as const;

const blobId = z.string().regex(/^[0-9a-f]{64}$/);
export const blobRef = z.object({ type: z.enum(['data', 'tree']), id: blobId });

export const repositoryInfoRequest = z.object({ repositoryId: repositoryId.default('default') });
export const repositoryInfoReply = z.object({
  repositoryId,
  version: z.union([z.literal(1), z.literal(2)]),
  chunkerPolynomial: z.string().regex(/^[0-9a-f]{1,16}$/),
});

export const missingBlobsRequest = z.object({
  repositoryId: repositoryId.default('default'),
  sessionId: workId,
  blobs: z.array(blobRef).max(10_000),
});
export const missingBlobsReply = z.object({ missing: z.array(blobRef) });

export const storeBlobReply = z.object({ added: z.boolean(), storedLength: z.number().int().nonnegative() });

/** Most blobs one `store-blobs` request may carry. */
export const STORE_BLOBS_MAX_BLOBS = 256;
/** For each blob of a `store-blobs` request, in order: false when the repository already had it. */
export const storeBlobsReply = z.object({ added: z.array(z.boolean()).min(1).max(STORE_BLOBS_MAX_BLOBS) });

export const flushRequest = z.object({ repositoryId: repositoryId.default('default'), sessionId: workId });
export const flushReply = z.object({
  gatewayId: z.string().min(1),
  packsWritten: z.number().int().nonnegative(),
  /**
   * Bytes the blobs this session added through this gateway take in packs (compressed and
   * encrypted), counted since the session's first blob; absent from older gateways.
   */
  bytesStored: z.number().int().nonnegative().optional(),
});

export const commitSnapshotRequest = z.object({
  repositoryId: repositoryId.default('default'),
  sessionId: workId,
  snapshot: z.object({
    tree: blobId,
    paths: z.array(z.string().min(1)).min(1),
    /** The host's name, as restic users see it (agents also tag the snapshot `host-id:<hostId>`). */
    hostname: z.string().min(1).max(253),
    time: z.iso.datetime({ offset: true }),
    parent: snapshotId.optional(),
    tags: z.array(z.string().min(1).max(300)).max(60).default([]),
  }),
});
export const commitSnapshotReply = z.object({ snapshotId });

export const loadBlobRequest = z.object({ repositoryId: repositoryId.default('default'), blob: blobRef });

/** Most ids one `load-blobs` request may name. */
export const LOAD_BLOBS_MAX_IDS = 256;
/** Blobs of one type to read in one round trip, in this order; an id may repeat (sparse files). */
export const loadBlobsRequest = z.object({
  repositoryId: repositoryId.default('default'),
  type: z.enum(['data', 'tree']),
  ids: z.array(blobId).min(1).max(LOAD_BLOBS_MAX_IDS),
});

/** Most trees one `load-trees` reply carries. */
export const LOAD_TREES_MAX_TREES = 4096;
/** A tree and the trees below it (as many as `maxBytes` and one message hold). */
export const loadTreesRequest = z.object({
  repositoryId: repositoryId.default('default'),
  root: blobId,
  /** Most bytes of trees the reply carries (at least the root, whatever its size). */
  maxBytes: z.number().int().positive().optional(),
});

export const findSnapshotRequest = z.object({
  repositoryId: repositoryId.default('default'),
  /** Id, unique prefix, or `latest` (with hostname and path). */
  ref: z.string().min(1).max(64),
  hostname: z.string().min(1).max(253).optional(),
  path: z.string().optional(),
  /** For `latest`: the snapshot carries every one of these tags. */
  tags: z.array(z.string().min(1).max(300)).max(20).optional(),
});
export const findSnapshotReply = z.object({
  snapshotId: snapshotId.nullable(),
  tree: blobId.nullable(),
  paths: z.array(z.string()).default([]),
  time: z.string().nullable(),
  /** The snapshot's tags (`host-id:<id>` names the host that wrote it); absent from older gateways. */
  tags: z.array(z.string()).optional(),
});

/** A failed data-path request: a stable code, a message, and for commit the blobs still missing. */
export const dataErrorSchema = z.object({
  code: z.string().regex(/^[A-Z][A-Z0-9_]{2,63}$/),
  message: z.string().max(4000),
  missing: z.array(blobRef).optional(),
});
/** A parsed data-path error. */
export type DataError = z.infer<typeof dataErrorSchema>;

/**
 * The path a volume's snapshot records (restic's `paths`, and the tree's root): `/volumes/<name>`,
 * the same for every reading method, so parents, forget and `restic snapshots --path` find it.
 */
export function volumeSnapshotPath(volumeName: string): string {
  return `/volumes/${volumeName}`;
}

/**
 * Tags of every snapshot an agent writes, so restic users can select them
 * (`restic snapshots --tag volume:db`): `volback`, `volume:<name>`, `host:<host name>`, and
 * `host-id:<hostId>`, which is what volback itself selects a host's snapshots by (the host name,
 * the snapshot's `hostname`, may change; snapshots written before these tags have the host id as
 * `hostname`). Commas, which restic's `--tag` splits on, become `_`.
 */
export function snapshotTags(input: {
  hostId: string;
  hostName: string;
  volumeName: string;
  extra?: readonly string[];
}): string[] {
  const tags = [
    'volback',
    `volume:${input.volumeName}`,
    `host:${input.hostName}`,
    hostIdTag(input.hostId),
    ...(input.extra ?? []),
  ].map((tag) => tag.replaceAll(',', '_'));
  return [...new Set(tags)];
}

/** The tag that names a snapshot's host by id (see {@link snapshotTags}). */
export function hostIdTag(hostId: string): string {
  return `host-id:${hostId}`;
}
