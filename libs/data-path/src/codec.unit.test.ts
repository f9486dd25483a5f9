import { createHash } from 'node:crypto';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { DATA_HEADERS, missingBlobsRequest, storeBlobReply } from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import {
  decodeBlobHeaders,
  decodeBlobLengths,
  decodeJson,
  decodeReply,
  decodeStoreBlobsHeaders,
  encodeBlobHeaders,
  encodeBlobLengths,
  encodeError,
  encodeJson,
  encodeStoreBlobsHeaders,
  MAX_DATA_BLOB_BYTES,
  MAX_MISSING_PER_REPLY,
  readError,
} from './codec.ts';
import { DataPathError, DataPathErrorCode } from './errors.ts';

const id = createHash('sha256').update('blob').digest('hex');

describe('data-path codec', () => {
  it('round-trips an error reply: code in the header, details in the body', () => {
    const reply = encodeError(DataPathErrorCode.MissingBlobs, 'two blobs are missing', [
      { type: 'data', id },
      { type: 'tree', id },
    ]);
    expect(reply.headers?.get(DATA_HEADERS.error)).toBe('MISSING_BLOBS');
    const error = readError(reply);
    expect(error).toBeInstanceOf(DataPathError);
    expect(error).toMatchObject({
      name: 'DataPathError',
      code: 'MISSING_BLOBS',
      message: 'two blobs are missing',
      missing: [
        { type: 'data', id },
        { type: 'tree', id },
      ],
    });
    expect(() => decodeReply(reply, storeBlobReply)).toThrow(error!);
  });

  it('caps an error reply so that it fits in one message', () => {
    const many = Array.from({ length: MAX_MISSING_PER_REPLY + 5 }, () => ({ type: 'data' as const, id }));
    const reply = encodeError(DataPathErrorCode.MissingBlobs, 'x'.repeat(10_000), many);
    const error = readError(reply)!;
    expect(error.missing).toHaveLength(MAX_MISSING_PER_REPLY);
    expect(error.message).toHaveLength(4000);
  });

  it('keeps the code of an error reply whose body it cannot read', () => {
    const h = natsHeaders();
    h.set(DATA_HEADERS.error, 'SOMETHING_NEW');
    expect(readError({ headers: h, data: new TextEncoder().encode('garbage') })?.code).toBe('SOMETHING_NEW');
  });

  it('validates JSON requests, filling defaults, and names what is wrong', () => {
    const ok = decodeJson(
      missingBlobsRequest,
      encodeJson({ sessionId: 's1', blobs: [{ type: 'data', id }] }),
    );
    expect(ok).toEqual({
      ok: true,
      value: { repositoryId: 'default', sessionId: 's1', blobs: [{ type: 'data', id }] },
    });
    const notJson = decodeJson(missingBlobsRequest, new TextEncoder().encode('{'));
    expect(notJson.ok || notJson.error.code).toBe(DataPathErrorCode.BadRequest);
    const bad = decodeJson(
      missingBlobsRequest,
      encodeJson({ sessionId: 'has space', blobs: [{ type: 'file', id }] }),
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error.code).toBe(DataPathErrorCode.BadRequest);
      expect(bad.error.message).toContain('sessionId');
      expect(bad.error.message).toContain('blobs.0.type');
    }
  });

  it('reports a reply that does not match its schema as BAD_REPLY', () => {
    expect(() => decodeReply({ data: encodeJson({ added: 'yes' }) }, storeBlobReply)).toThrow(
      expect.objectContaining({ code: DataPathErrorCode.BadReply }),
    );
  });

  it('round-trips blob headers and refuses bad ones', () => {
    const h = encodeBlobHeaders({ type: 'tree', id, repositoryId: 'default', sessionId: 'backup-1' });
    expect(decodeBlobHeaders(h)).toEqual({
      ok: true,
      value: { type: 'tree', id, repositoryId: 'default', sessionId: 'backup-1' },
    });
    expect(decodeBlobHeaders(encodeBlobHeaders({ type: 'data', id }))).toEqual({
      ok: true,
      value: { type: 'data', id, repositoryId: 'default' },
    });
    const cases: Array<[Record<string, string>, string]> = [
      [{ [DATA_HEADERS.blobType]: 'file', [DATA_HEADERS.blobId]: id }, DATA_HEADERS.blobType],
      [{ [DATA_HEADERS.blobType]: 'data', [DATA_HEADERS.blobId]: id.toUpperCase() }, DATA_HEADERS.blobId],
      [
        { [DATA_HEADERS.blobType]: 'data', [DATA_HEADERS.blobId]: id, [DATA_HEADERS.repositoryId]: 'A B' },
        DATA_HEADERS.repositoryId,
      ],
    ];
    for (const [values, named] of cases) {
      const bad = natsHeaders();
      for (const [k, v] of Object.entries(values)) bad.set(k, v);
      const decoded = decodeBlobHeaders(bad);
      expect(decoded.ok).toBe(false);
      if (!decoded.ok) expect(decoded.error.message).toContain(named);
    }
    expect(decodeBlobHeaders(undefined).ok).toBe(false);
  });

  it('reads the blob lengths of a load-blobs reply only when they describe the body', () => {
    expect(decodeBlobLengths(encodeBlobLengths([1048576, 0, 17]), 1048593, 3)).toEqual([1048576, 0, 17]);
    expect(decodeBlobLengths('5', 5, 1)).toEqual([5]);
    const refused: Array<[string | undefined, number, number]> = [
      [undefined, 0, 4], // no header
      ['', 0, 4],
      ['5,5', 9, 4], // do not add up
      ['5,5', 10, 1], // more than asked for
      ['05', 5, 1], // not canonical
      ['-5', 5, 1],
      ['5,', 5, 2],
      ['5 ,5', 10, 2],
      ['1e3', 1000, 1],
      ['99999999999', 99999999999, 1], // more digits than a message holds
    ];
    for (const [header, body, most] of refused)
      expect(decodeBlobLengths(header, body, most), String(header)).toBeUndefined();
  });

  it('round-trips the headers of a store-blobs request and checks them against the body', () => {
    const other = createHash('sha256').update('other').digest('hex');
    const batch = {
      type: 'tree',
      ids: [id, other, id],
      lengths: [10, 0, 10],
      repositoryId: 'default',
      sessionId: 'bk-1',
    } as const;
    expect(decodeStoreBlobsHeaders(encodeStoreBlobsHeaders(batch), 20, 256)).toEqual({
      ok: true,
      value: batch,
    });
    const refused = (
      edit: (h: ReturnType<typeof encodeStoreBlobsHeaders>) => void,
      body = 20,
      most = 256,
    ) => {
      const h = encodeStoreBlobsHeaders(batch);
      edit(h);
      const decoded = decodeStoreBlobsHeaders(h, body, most);
      expect(decoded.ok).toBe(false);
      return decoded.ok ? undefined : decoded.error;
    };
    expect(refused(() => undefined, 21)?.message).toContain(DATA_HEADERS.blobLengths);
    expect(refused(() => undefined, 20, 2)?.message).toContain('at most 2');
    expect(refused((h) => h.set(DATA_HEADERS.blobIds, `${id},${id}`))?.message).toContain(
      DATA_HEADERS.blobLengths,
    );
    expect(refused((h) => h.set(DATA_HEADERS.blobIds, `${id},,${id}`))?.message).toContain(
      DATA_HEADERS.blobIds,
    );
    expect(refused((h) => h.set(DATA_HEADERS.blobIds, id.toUpperCase()))?.message).toContain(
      DATA_HEADERS.blobIds,
    );
    expect(refused((h) => h.set(DATA_HEADERS.blobType, 'blob'))?.message).toContain(DATA_HEADERS.blobType);
    expect(refused((h) => h.set(DATA_HEADERS.sessionId, 'two words'))?.message).toContain(
      DATA_HEADERS.sessionId,
    );
    const huge = MAX_DATA_BLOB_BYTES + 1;
    const tooLarge = decodeStoreBlobsHeaders(
      encodeStoreBlobsHeaders({ ...batch, type: 'data', ids: [id], lengths: [huge] }),
      huge,
      256,
    );
    expect(tooLarge.ok ? undefined : tooLarge.error.code).toBe(DataPathErrorCode.BlobTooLarge);
  });
});
