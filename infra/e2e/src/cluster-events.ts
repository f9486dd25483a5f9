import { jetstreamManager } from '@nats-io/jetstream';
import { parseMessage, STREAMS, type Envelope } from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';
import { waitFor, waitUntil } from '@volback/testing';

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

/** Waits until every backup that failed so far was made good by a later snapshot of its volume. */
export async function failuresMadeGood(nc: NatsConnection, timeoutMs = 120_000): Promise<void> {
  await waitUntil(
    'every failed backup made good by a later snapshot of its volume',
    async () => {
      const backups = backupsOf((await storedEvents(nc)).events);
      return [...backups.values()]
        .filter((b) => b.outcome === 'io.volback.backup.failed.v1')
        .every((b) => recovery(backups, b.request.backupId));
    },
    timeoutMs,
  );
}

/** What {@link checkLogAndCatalog} counted. */
export interface LogFigures {
  readonly events: number;
  readonly backupsCompleted: number;
  readonly backupsFailed: number;
  readonly failedThenRetried: number;
  readonly failedThenSupersededByNewerSlot: number;
}

/**
 * Once every requested backup has its outcome in the log: no event is stored twice, no schedule
 * slot of a volume was asked for twice (retries aside), every failed backup was made good by a
 * later snapshot of its volume, and the catalog — once it has projected the whole log — lists
 * each backup once with the log's outcome. Throws saying what differs.
 */
export async function checkLogAndCatalog(
  nc: NatsConnection,
  catalog: { readonly url: string; readonly opsUrl: string },
): Promise<LogFigures> {
  const { events, lastSeq } = await waitFor(
    'every requested backup to have its outcome in the log',
    async () => {
      const read = await storedEvents(nc);
      return [...backupsOf(read.events).values()].every((b) => b.outcome) ? read : undefined;
    },
    120_000,
  );
  const backups = backupsOf(events);
  const ids = events.map((e) => e.id);
  const doubled = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (doubled.length > 0) throw new Error(`events stored twice: ${doubled.join(', ')}`);
  const slots = [...backups.values()]
    .filter((b) => b.request.slot && !b.request.retryOf)
    .map((b) => `${b.request.volumeName}@${b.request.slot}`);
  const doubledSlots = slots.filter((slot, i) => slots.indexOf(slot) !== i);
  if (doubledSlots.length > 0) throw new Error(`slots asked for twice: ${doubledSlots.join(', ')}`);
  const failed = [...backups.values()].filter((b) => b.outcome === 'io.volback.backup.failed.v1');
  const recoveries = failed.map((b) => recovery(backups, b.request.backupId));
  const unrecovered = failed.filter((_, i) => !recoveries[i]).map((b) => b.request.backupId);
  if (unrecovered.length > 0) throw new Error(`failed backups never made good: ${unrecovered.join(', ')}`);

  await waitUntil(
    `the catalog's checkpoint at ${lastSeq}`,
    async () => {
      const metrics = await (await fetch(`${catalog.opsUrl}/metrics`)).text();
      const match = /catalog_checkpoint_sequence(?:\{[^}]*\})? (\d+)/.exec(metrics);
      return Number(match?.[1] ?? 0) >= lastSeq;
    },
    60_000,
  );
  const listed: { backupId: string; phase: string }[] = [];
  for (let cursor: string | null = null; ;) {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page = (await (await fetch(`${catalog.url}/v1/backups?limit=500${query}`)).json()) as {
      items: { backupId: string; phase: string }[];
      nextCursor: string | null;
    };
    listed.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  const inCatalog = new Map(listed.map((b) => [b.backupId, b.phase]));
  if (inCatalog.size !== listed.length) throw new Error('the catalog lists a backup twice');
  const differences = [...backups.values()]
    .filter((b) => inCatalog.get(b.request.backupId) !== PHASE_OF[b.outcome!])
    .map((b) => `${b.request.backupId}: log ${b.outcome}, catalog ${inCatalog.get(b.request.backupId)}`);
  if (inCatalog.size !== backups.size || differences.length > 0) {
    throw new Error(
      `catalog (${inCatalog.size} backups) and log (${backups.size}) differ: ${differences.join('; ')}`,
    );
  }
  return {
    events: events.length,
    backupsCompleted: [...backups.values()].filter((b) => b.outcome === 'io.volback.backup.completed.v1')
      .length,
    backupsFailed: failed.length,
    failedThenRetried: recoveries.filter((r) => r === 'retried').length,
    failedThenSupersededByNewerSlot: recoveries.filter((r) => r === 'superseded').length,
  };
}
