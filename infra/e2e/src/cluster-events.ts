import { jetstreamManager } from '@nats-io/jetstream';
import { parseMessage, STREAMS, type Envelope } from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';

/**
 * Every event `VOLBACK_EVENTS` holds, in stream order, read with batched direct gets: any replica
 * answers them and no consumer is made, so the read works while a NATS node is down (a live
 * subscription misses what is published then; an ordered consumer may be placed on the dead node).
 */
export async function storedEvents(nc: NatsConnection): Promise<{ events: Envelope[]; lastSeq: number }> {
  const jsm = await jetstreamManager(nc, { timeout: 15_000 });
  const lastSeq = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
  const events: Envelope[] = [];
  for (let seq = 1; seq <= lastSeq;) {
    let read = 0;
    for await (const msg of await jsm.direct.getBatch(STREAMS.events.name, { seq, batch: 500 })) {
      const parsed = parseMessage(msg.data);
      if (parsed.ok && msg.seq <= lastSeq) events.push(parsed.message.envelope);
      seq = msg.seq + 1;
      read++;
    }
    if (read === 0) break;
  }
  return { events, lastSeq };
}

type BackupData = { backupId: string; volumeName: string; slot?: string; retryOf?: string; attempt?: number };

const OUTCOME = /^io\.volback\.backup\.(completed|partially-failed|failed)\.v1$/;
/** The catalog's phase for a backup outcome event type. */
export const PHASE_OF: Record<string, string> = {
  'io.volback.backup.completed.v1': 'Completed',
  'io.volback.backup.partially-failed.v1': 'PartiallyFailed',
  'io.volback.backup.failed.v1': 'Failed',
};

/** What the log says of each backup: its request and its last outcome (if any yet). */
export interface BackupRecord {
  readonly request: BackupData;
  readonly requestedAt: string;
  outcome?: string;
}

/** The backups of a log, by id, in the order they were requested. */
export function backupsOf(events: readonly Envelope[]): Map<string, BackupRecord> {
  const backups = new Map<string, BackupRecord>();
  for (const event of events) {
    const data = event.data as BackupData;
    if (event.type === 'io.volback.backup.requested.v1')
      backups.set(data.backupId, { request: data, requestedAt: event.time });
    else if (OUTCOME.test(event.type)) {
      const backup = backups.get(data.backupId);
      if (backup) backup.outcome = event.type;
    }
  }
  return backups;
}

const MADE_SNAPSHOT = new Set(['io.volback.backup.completed.v1', 'io.volback.backup.partially-failed.v1']);

/**
 * How a failed backup was made good: `retried` when a retry of it (same first attempt) made a
 * snapshot, `superseded` when a later backup of the same volume did (the scheduler runs a newer
 * schedule slot before a retry), undefined while neither has.
 */
export function recovery(
  backups: Map<string, BackupRecord>,
  failedId: string,
): 'retried' | 'superseded' | undefined {
  const failed = backups.get(failedId)!;
  const first = failed.request.retryOf ?? failedId;
  const later = [...backups.values()].filter(
    (b) => b.requestedAt > failed.requestedAt && b.outcome && MADE_SNAPSHOT.has(b.outcome),
  );
  if (later.some((b) => b.request.retryOf === first)) return 'retried';
  if (later.some((b) => b.request.volumeName === failed.request.volumeName)) return 'superseded';
  return undefined;
}
