import { createHash } from 'node:crypto';

/** Longest id the contracts accept (`workId`). */
const MAX_ID = 200;

/** An id that stays within `workId`: long ones keep a readable head and end in a hash of the whole. */
export function boundedId(id: string): string {
  if (id.length <= MAX_ID) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 32);
  return `${id.slice(0, MAX_ID - hash.length - 1)}~${hash}`;
}

const isoCache = new Map<number, string>();

/**
 * `2025-03-14T03:00:00Z`: whole seconds, the form slot ids use. Memoised: a round names the slot
 * of every waiting volume, and a fleet's volumes share a few slots (a quarter of a round's time
 * at 5,000 volumes went to formatting the same dates).
 */
export function isoSeconds(ms: number): string {
  let iso = isoCache.get(ms);
  if (iso === undefined) {
    iso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (isoCache.size >= 10_000) isoCache.clear();
    isoCache.set(ms, iso);
  }
  return iso;
}

/** A backup's first-attempt id; the same inputs always give the same id (one backup per volume and slot). */
export function backupId(hostId: string, volumeName: string, what: string): string {
  return boundedId(`bk-${hostId}-${volumeName}-${what}`);
}

/** The backup of a schedule slot. */
export function slotBackupId(hostId: string, volumeName: string, slotMs: number): string {
  return backupId(hostId, volumeName, isoSeconds(slotMs));
}

/** A retry's id: the first attempt's and the attempt number. */
export function retryBackupId(firstAttemptId: string, attempt: number): string {
  return boundedId(`${firstAttemptId}-retry${attempt}`);
}

/** A maintenance operation's id; attempts after the first carry their number. */
export function operationId(parts: readonly string[], attempt: number): string {
  return boundedId([...parts, ...(attempt > 1 ? [`a${attempt}`] : [])].join('-'));
}

/** A short stable hash, for ids derived from something long (a command's envelope id). */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** A uniform fraction in [0, 1) derived from `text`: the same text, the same fraction. */
export function stableFraction(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 2 ** 32;
}
