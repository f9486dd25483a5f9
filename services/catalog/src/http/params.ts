import { volumeName } from '@volback/contracts';
import { z } from 'zod';

/** `limit` and `cursor` of every list. */
export const paging = {
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('items per page, 1 to 500'),
  cursor: z.string().min(1).max(2000).optional().describe('`nextCursor` of the previous page'),
};

/** `true`/`false` (or `1`/`0`) in a query string. */
export const queryFlag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

/** A host id, or a host's name as `GET /v1/hosts` shows it (resolved by the queries; ambiguous: 409). */
export const hostRef = z.string().min(1).max(255).describe('a host id or a host name');
export const hostParams = z.object({ hostId: hostRef });
export const volumeParams = z.object({ hostId: hostRef, volumeName });
/** A snapshot id or a unique prefix of it. */
export const snapshotRef = z.string().regex(/^[0-9a-f]{4,64}$/, '4 to 64 lower-case hex digits');
export const snapshotParams = z.object({ snapshotId: snapshotRef });
/** A volume-relative path inside a snapshot. */
export const volumePathQuery = z
  .string()
  .max(4096)
  .default('/')
  .describe('path inside the volume, `/` for its root');
export const requestedBy = z
  .string()
  .min(1)
  .max(200)
  .optional()
  .describe('who asks, for the record (a person, a pipeline); `api` when absent');
