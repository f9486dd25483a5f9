import { headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import { DATA_HEADERS, dataErrorSchema, type DataError } from '@volback/contracts';
import { CHUNKER_MAX_SIZE } from '@volback/repository';
import type { z } from 'zod';
import { DataPathError, DataPathErrorCode, type BlobRef } from './errors.ts';

/**
 * Largest data blob a gateway accepts: the chunker's maximum chunk (8 MiB) plus a margin, so a
 * chunk of another chunker configuration is not refused at the last byte.
 */
export const MAX_DATA_BLOB_BYTES = CHUNKER_MAX_SIZE + 64 * 1024;
/**
 * Largest tree blob a gateway accepts: a tree of a huge directory can outgrow a chunk, but a blob
 * travels in one NATS message, whose limit volback's servers set to 16 MiB.
 */
export const MAX_TREE_BLOB_BYTES = 15 * 1024 * 1024;

/**
 * Header of the first of a gateway's two answers to `flush`: "started" says the gateway received
 * the broadcast and is writing; its second answer (without the header) comes once its packs and
 * index are durable. The first answers tell the client how many gateways to wait for.
 */
export const FLUSH_PHASE_HEADER = 'Volback-Flush-Phase';
/** Value of {@link FLUSH_PHASE_HEADER} on a gateway's acknowledgement of a flush broadcast. */
export const FLUSH_STARTED = 'started';

/**
 * Header naming the gateway that answered: on every data-path reply, errors included, so a client
 * knows which gateways served its session (and waits for exactly those in a flush).
 */
export const GATEWAY_ID_HEADER = 'Volback-Gateway';

/** Longest message of an error reply (the schema's limit). */
const MAX_ERROR_MESSAGE = 4000;
/**
 * Most missing blobs one error reply names: the reply must fit in a NATS message. A client that
 * sends these and commits again learns the next ones.
 */
export const MAX_MISSING_PER_REPLY = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A reply or request ready to send: optional headers and a body. */
export interface Encoded {
  readonly headers?: MsgHdrs;
  readonly data: Uint8Array;
}

/** JSON body of a request or reply. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** An error reply: the code in `Volback-Error`, a {@link dataErrorSchema} JSON body. */
export function encodeError(code: string, message: string, missing?: readonly BlobRef[]): Encoded {
  const h = natsHeaders();
  h.set(DATA_HEADERS.error, code);
  const body: DataError = {
    code,
    message: message.slice(0, MAX_ERROR_MESSAGE) || code,
    ...(missing
      ? { missing: missing.slice(0, MAX_MISSING_PER_REPLY).map(({ type, id }) => ({ type, id })) }
      : {}),
  };
  return { headers: h, data: encodeJson(body) };
}

/** {@link encodeError} of a {@link DataPathError}. */
export function encodeDataPathError(error: DataPathError): Encoded {
  return encodeError(error.code, error.message, error.missing);
}

/** Outcome of parsing a request: the value, or the error to reply with. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DataPathError };

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) =>
      issue.path.length ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message,
    )
    .join('; ');
}

/**
 * Parses a UTF-8 JSON body against a schema (defaults filled in). Never throws: bad input gives a
 * `BAD_REQUEST` error naming the fields at fault.
 */
export function decodeJson<S extends z.ZodType>(schema: S, data: Uint8Array): Decoded<z.output<S>> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (cause) {
    return {
      ok: false,
      error: new DataPathError(DataPathErrorCode.BadRequest, `not UTF-8 JSON: ${(cause as Error).message}`),
    };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    return {
      ok: false,
      error: new DataPathError(DataPathErrorCode.BadRequest, describeIssues(parsed.error)),
    };
  }
  return { ok: true, value: parsed.data };
}

/** The error a reply carries in its `Volback-Error` header, or undefined for a successful reply. */
export function readError(msg: Pick<Msg, 'headers' | 'data'>): DataPathError | undefined {
  const code = msg.headers?.get(DATA_HEADERS.error);
  if (!code) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(msg.data));
  } catch {
    body = undefined;
  }
  const parsed = dataErrorSchema.safeParse(body);
  if (!parsed.success) return new DataPathError(code, `the gateway answered ${code}`);
  return new DataPathError(
    code,
    parsed.data.message,
    parsed.data.missing ? { missing: parsed.data.missing } : undefined,
  );
}

/**
 * A successful JSON reply, validated; an error reply is thrown as its {@link DataPathError}, a reply
 * that does not match the schema as `BAD_REPLY`.
 */
export function decodeReply<S extends z.ZodType>(msg: Pick<Msg, 'headers' | 'data'>, schema: S): z.output<S> {
  const error = readError(msg);
  if (error) throw error;
  const decoded = decodeJson(schema, msg.data);
  if (!decoded.ok) {
    throw new DataPathError(DataPathErrorCode.BadReply, `unexpected reply: ${decoded.error.message}`);
  }
  return decoded.value;
}

/** What the blob headers of a `store-blob` request or `load-blob` reply say. */
export interface BlobHeaders {
  readonly type: 'data' | 'tree';
  readonly id: string;
  readonly repositoryId?: string;
  readonly sessionId?: string;
}

/** Headers naming a blob (and the session and repository it belongs to). */
export function encodeBlobHeaders(blob: BlobHeaders): MsgHdrs {
  const h = natsHeaders();
  h.set(DATA_HEADERS.blobType, blob.type);
  h.set(DATA_HEADERS.blobId, blob.id);
  if (blob.repositoryId) h.set(DATA_HEADERS.repositoryId, blob.repositoryId);
  if (blob.sessionId) h.set(DATA_HEADERS.sessionId, blob.sessionId);
  return h;
}

const BLOB_ID = /^[0-9a-f]{64}$/;
const REPOSITORY_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const WORK_ID = /^[\x21-\x7e]{1,200}$/;

/** Reads and checks the blob headers; `BAD_REQUEST` naming the header at fault. */
export function decodeBlobHeaders(
  h: MsgHdrs | undefined,
): Decoded<Required<Omit<BlobHeaders, 'sessionId'>> & { sessionId?: string }> {
  const bad = (message: string): Decoded<never> => ({
    ok: false,
    error: new DataPathError(DataPathErrorCode.BadRequest, message),
  });
  const type = h?.get(DATA_HEADERS.blobType) ?? '';
  if (type !== 'data' && type !== 'tree') return bad(`${DATA_HEADERS.blobType} must be data or tree`);
  const id = h?.get(DATA_HEADERS.blobId) ?? '';
  if (!BLOB_ID.test(id)) return bad(`${DATA_HEADERS.blobId} must be 64 lower-case hex digits`);
  const repositoryId = h?.get(DATA_HEADERS.repositoryId) || 'default';
  if (!REPOSITORY_ID.test(repositoryId)) return bad(`${DATA_HEADERS.repositoryId} is not a repository id`);
  const sessionId = h?.get(DATA_HEADERS.sessionId) || undefined;
  if (sessionId !== undefined && !WORK_ID.test(sessionId))
    return bad(`${DATA_HEADERS.sessionId} must be printable ASCII without spaces, at most 200 characters`);
  return { ok: true, value: { type, id, repositoryId, ...(sessionId ? { sessionId } : {}) } };
}

/** What the headers of a `store-blobs` request say: the blobs in its body, in order, and whose they are. */
export interface StoreBlobsHeaders {
  readonly type: 'data' | 'tree';
  readonly ids: readonly string[];
  readonly lengths: readonly number[];
  readonly repositoryId: string;
  readonly sessionId: string;
}

/** Headers of a `store-blobs` request. */
export function encodeStoreBlobsHeaders(batch: StoreBlobsHeaders): MsgHdrs {
  const h = natsHeaders();
  h.set(DATA_HEADERS.blobType, batch.type);
  h.set(DATA_HEADERS.blobIds, batch.ids.join(','));
  h.set(DATA_HEADERS.blobLengths, encodeBlobLengths(batch.lengths));
  h.set(DATA_HEADERS.repositoryId, batch.repositoryId);
  h.set(DATA_HEADERS.sessionId, batch.sessionId);
  return h;
}

const BLOB_IDS = /^[0-9a-f]{64}(?:,[0-9a-f]{64})*$/;

/**
 * Reads and checks the headers of a `store-blobs` request against its body: 1 to `most` ids, as
 * many lengths adding up to `bodyLength`, none above the type's limit, a session. `BAD_REQUEST`
 * (or `BLOB_TOO_LARGE`) naming what is wrong.
 */
export function decodeStoreBlobsHeaders(
  h: MsgHdrs | undefined,
  bodyLength: number,
  most: number,
): Decoded<StoreBlobsHeaders> {
  const fail = (message: string, code: string = DataPathErrorCode.BadRequest): Decoded<never> => ({
    ok: false,
    error: new DataPathError(code, message),
  });
  const type = h?.get(DATA_HEADERS.blobType) ?? '';
  if (type !== 'data' && type !== 'tree') return fail(`${DATA_HEADERS.blobType} must be data or tree`);
  const idsHeader = h?.get(DATA_HEADERS.blobIds) ?? '';
  if (!BLOB_IDS.test(idsHeader))
    return fail(`${DATA_HEADERS.blobIds} must be blob ids (64 lower-case hex digits) separated by commas`);
  const ids = idsHeader.split(',');
  if (ids.length > most)
    return fail(`a store-blobs request carries at most ${most} blobs, not ${ids.length}`);
  const lengths = decodeBlobLengths(h?.get(DATA_HEADERS.blobLengths), bodyLength, most);
  if (!lengths || lengths.length !== ids.length)
    return fail(
      `${DATA_HEADERS.blobLengths} must give the length of each of the ${ids.length} blobs, adding up to the body's ${bodyLength} bytes`,
    );
  const tooLarge = lengths.findIndex((length) => length > maxBlobBytes(type));
  if (tooLarge >= 0)
    return fail(
      `a ${type} blob may have at most ${maxBlobBytes(type)} bytes, ${ids[tooLarge]} has ${lengths[tooLarge]}`,
      DataPathErrorCode.BlobTooLarge,
    );
  const repositoryId = h?.get(DATA_HEADERS.repositoryId) || 'default';
  if (!REPOSITORY_ID.test(repositoryId)) return fail(`${DATA_HEADERS.repositoryId} is not a repository id`);
  const sessionId = h?.get(DATA_HEADERS.sessionId) ?? '';
  if (!WORK_ID.test(sessionId))
    return fail(
      `${DATA_HEADERS.sessionId} is required: printable ASCII without spaces, at most 200 characters`,
    );
  return { ok: true, value: { type, ids, lengths, repositoryId, sessionId } };
}

/** The largest body a blob of this type may have on the data path. */
export function maxBlobBytes(type: 'data' | 'tree'): number {
  return type === 'data' ? MAX_DATA_BLOB_BYTES : MAX_TREE_BLOB_BYTES;
}

/** The `Volback-Blob-Lengths` header of a `load-blobs` reply: decimal lengths, comma-separated. */
export function encodeBlobLengths(lengths: readonly number[]): string {
  return lengths.join(',');
}

const BLOB_LENGTHS = /^(?:0|[1-9]\d{0,9})(?:,(?:0|[1-9]\d{0,9}))*$/;

/**
 * Reads a `Volback-Blob-Lengths` header: between 1 and `most` lengths that add up to
 * `bodyLength`. Undefined when it is missing or says anything else.
 */
export function decodeBlobLengths(
  header: string | undefined,
  bodyLength: number,
  most: number,
): number[] | undefined {
  if (!header || !BLOB_LENGTHS.test(header)) return undefined;
  const lengths = header.split(',').map(Number);
  if (lengths.length > most) return undefined;
  let sum = 0;
  for (const length of lengths) sum += length;
  return sum === bodyLength ? lengths : undefined;
}
