import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { checkEventOrigin, eventSubjectFilter, parseMessage, STREAMS } from '@volback/contracts';

/** Event names whose `data.snapshotId` is a snapshot the log knows. */
const NAMING_A_SNAPSHOT = new Set(['BackupCompleted', 'BackupPartiallyFailed', 'SnapshotImported']);

/**
 * The snapshot ids the event log knows: those of backup outcomes and of earlier imports. Reads
 * `volback.evt.backup.>` and `volback.evt.snapshot.>` with an ephemeral consumer without acks
 * (removed after, or by the server a minute after this gateway is gone), up to what the log held
 * when it was created.
 */
export async function knownSnapshotIds(nc: NatsConnection): Promise<Set<string>> {
  const known = new Set<string>();
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.add(STREAMS.events.name, {
    filter_subjects: [eventSubjectFilter('backup'), eventSubjectFilter('snapshot')],
    deliver_policy: DeliverPolicy.All,
    ack_policy: AckPolicy.None,
    inactive_threshold: 60_000_000_000,
    mem_storage: true,
  });
  // A consumer waits for a first message: read only when the log has one to give.
  if (info.num_pending === 0) {
    await jsm.consumers.delete(STREAMS.events.name, info.name).catch(() => undefined);
    return known;
  }
  const consumer = await jetstream(nc).consumers.get(STREAMS.events.name, info.name);
  const messages = await consumer.consume({ max_messages: 512 });
  try {
    for await (const msg of messages) {
      const parsed = parseMessage(msg.data);
      if (
        parsed.ok &&
        NAMING_A_SNAPSHOT.has(parsed.message.definition.name) &&
        // A forged outcome must not make a snapshot count as known (and so never imported).
        checkEventOrigin(msg.subject, parsed.message.envelope, msg.time).ok
      ) {
        const snapshotId = (parsed.message.envelope.data as { snapshotId?: unknown }).snapshotId;
        if (typeof snapshotId === 'string') known.add(snapshotId);
      }
      if (msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
    await jsm.consumers.delete(STREAMS.events.name, info.name).catch(() => undefined);
  }
  return known;
}
