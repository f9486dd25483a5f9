import type { Envelope, NotificationKind } from '@volback/contracts';

/** One notification to send: what it is about, the CloudEvent behind it, and its words. */
export interface Notification {
  readonly kind: NotificationKind;
  /** The event notified about, sent as it is by generic webhooks (a test: `io.volback.notification.test.v1`). */
  readonly event: Envelope;
  readonly hostId?: string;
  /** The host's name, when known (filters and texts). */
  readonly hostName?: string;
  readonly volumeName?: string;
  /** One line: the subject of a mail, the title of a push. */
  readonly title: string;
  /** A few lines of plain text. */
  readonly text: string;
}

/** The `type` of the CloudEvent a test notification posts. */
export const TEST_EVENT_TYPE = 'io.volback.notification.test.v1';

type Data = Record<string, unknown>;

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** The words of a notification about `event` (a kind the scheduler decided). */
export function describeNotification(
  kind: NotificationKind,
  event: Envelope,
  where: { hostName?: string | undefined } = {},
): { title: string; text: string } {
  const d = (event.data ?? {}) as Data;
  const host = where.hostName ?? str(d['hostId']) ?? '?';
  const volume = str(d['volumeName']) ?? str((d['target'] as Data | undefined)?.['volumeName']);
  const what = volume ? `volume ${volume} on ${host}` : `host ${host}`;
  const lines = (...entries: [string, unknown][]): string =>
    entries
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${k}: ${String(v)}`)
      .join('\n');
  const type = event.type.replace(/^io\.volback\./, '').replace(/\.v\d+$/, '');
  switch (type) {
    case 'backup.failed':
      return {
        title: `volback: backup of ${what} failed`,
        text: lines(
          ['reason', d['reason']],
          ['code', d['code']],
          ['attempt', d['attempt']],
          ['retried', d['willRetry'] ? 'yes' : 'no'],
          ['backup', d['backupId']],
          ['at', d['failedAt']],
        ),
      };
    case 'backup.abandoned':
      return {
        title: `volback: backup of ${what} abandoned after ${String(d['attempts'])} attempts`,
        text: lines(
          ['reason', d['reason']],
          ['code', d['code']],
          ['backup', d['backupId']],
          ['at', d['abandonedAt']],
        ),
      };
    case 'backup.partially-failed':
      return {
        title: `volback: backup of ${what} missed ${String(d['unreadableCount'])} unreadable file(s)`,
        text: lines(['snapshot', d['snapshotId']], ['backup', d['backupId']], ['at', d['completedAt']]),
      };
    case 'backup.completed':
      return {
        title:
          kind === 'recovery'
            ? `volback: backup of ${what} succeeded again`
            : `volback: backup of ${what} completed`,
        text: lines(['snapshot', d['snapshotId']], ['backup', d['backupId']], ['at', d['completedAt']]),
      };
    case 'restore.failed':
      return {
        title: `volback: restore on ${host} failed`,
        text: lines(
          ['reason', d['reason']],
          ['code', d['code']],
          ['restore', d['restoreId']],
          ['at', d['failedAt']],
        ),
      };
    case 'restore.completed':
      return {
        title: `volback: restore on ${host} completed`,
        text: lines(['snapshot', d['snapshotId']], ['restore', d['restoreId']], ['at', d['completedAt']]),
      };
    case 'drill.failed':
      return {
        title: `volback: restore drill of ${what} failed (${String(d['stage'])})`,
        text: lines(
          ['reason', d['reason']],
          ['code', d['code']],
          ['snapshot', d['snapshotId']],
          ['differences', d['mismatchCount'] ? d['mismatchCount'] : undefined],
          [
            'left behind',
            Array.isArray(d['leftBehind']) && d['leftBehind'].length ? d['leftBehind'].join(', ') : undefined,
          ],
          ['drill', d['drillId']],
          ['at', d['failedAt']],
        ),
      };
    case 'drill.passed':
      return {
        title: `volback: restore drill of ${what} passed (RTO ${Math.round(Number(d['rtoMs']) / 100) / 10} s)`,
        text: lines(
          ['snapshot', d['snapshotId']],
          ['files', d['files']],
          [
            'containers',
            Array.isArray(d['containers']) && d['containers'].length ? d['containers'].join(', ') : undefined,
          ],
          ['drill', d['drillId']],
          ['at', d['completedAt']],
        ),
      };
    case 'volume.at-risk':
      return {
        title: `volback: ${what} is at risk`,
        text: lines(
          ['reason', d['reason']],
          ['last successful backup', d['lastSuccessAt'] ?? 'never'],
          ['RPO (seconds)', d['rpoSeconds']],
          ['at', d['detectedAt']],
        ),
      };
    case 'volume.protection-restored':
      return {
        title: `volback: ${what} is protected again`,
        text: lines(['last successful backup', d['lastSuccessAt']], ['at', d['restoredAt']]),
      };
    case 'notification.test':
      return {
        title: 'volback: test notification',
        text: lines(
          ['channel', d['channel']],
          ['requested by', d['requestedBy']],
          ['test', d['testId']],
          ['at', event.time],
        ),
      };
    default:
      return { title: `volback: ${type} (${what})`, text: lines(['event', event.id], ['at', event.time]) };
  }
}
