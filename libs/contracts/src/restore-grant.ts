import { z } from 'zod';
import { hostId, snapshotId, timestamp } from './fields.ts';
import { encodeSubjectToken } from './subject-token.ts';

/**
 * The JetStream KV bucket of restore grants (SECURITY-PLAN §4). Before the catalog sends a
 * `RestoreSnapshot` to host H for snapshot S, it puts a grant under the restore's id; the gateways
 * then let H's agent read S (and only the blobs S reaches) when its requests carry that id in
 * `Volback-Grant`. Only the catalog and the scheduler may write the bucket.
 */
export const GRANTS_BUCKET = 'VOLBACK_GRANTS';

/** How long a grant lets its host read the snapshot: a day, for the longest restores. */
export const GRANT_TTL_MS = 24 * 3_600_000;

/** A grant: host `hostId` may read snapshot `snapshotId` until `expiresAt`. */
export const restoreGrant = z.object({
  hostId,
  snapshotId,
  expiresAt: timestamp,
});
/** A parsed {@link restoreGrant}. */
export type RestoreGrant = z.infer<typeof restoreGrant>;

/**
 * The KV key of a restore's grant: the restore id as one subject token, `~` written `=` (KV keys
 * allow `[-/_=.A-Za-z0-9]`), so every restore id has one key and no two share it.
 */
export function grantKey(restoreId: string): string {
  return encodeSubjectToken(restoreId).replaceAll('~', '=');
}
