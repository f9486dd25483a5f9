import type { Envelope, NotificationFilter, NotificationKind } from '@volback/contracts';

/**
 * What the notifier remembers between events: which volumes' last backup failed (a success after
 * one is a recovery), and the kind decided for the last event (a redelivered event gets the same
 * kind, not one decided on the state it already changed).
 */
export interface NotifierState {
  readonly failing: Set<string>;
  last?: { readonly sequence: number; readonly kind: NotificationKind | undefined };
}

/** An empty {@link NotifierState}. */
export function initialNotifierState(): NotifierState {
  return { failing: new Set() };
}

/** Who and what an event is about, as filters see it. */
export interface NotificationScope {
  readonly hostId?: string;
  readonly volumeName?: string;
}

type Data = Record<string, unknown>;

/** The type without prefix and version: `backup.failed`. */
function shortType(type: string): string {
  return type.replace(/^io\.volback\./, '').replace(/\.v\d+$/, '');
}

/** The host and volume an event concerns (a restore: its target volume, when it has one). */
export function notificationScope(event: Envelope): NotificationScope {
  const d = (event.data ?? {}) as Data;
  const hostId = typeof d['hostId'] === 'string' ? d['hostId'] : undefined;
  const target = d['target'] as Data | undefined;
  const volume = d['volumeName'] ?? target?.['volumeName'];
  return {
    ...(hostId !== undefined ? { hostId } : {}),
    ...(typeof volume === 'string' ? { volumeName: volume } : {}),
  };
}

const volumeKey = (event: Envelope): string | undefined => {
  const { hostId, volumeName } = notificationScope(event);
  return hostId !== undefined && volumeName !== undefined ? JSON.stringify([hostId, volumeName]) : undefined;
};

/**
 * The kind of notification an event at `sequence` calls for (undefined: none), and the state
 * after it. Each failed attempt of a backup is a `failure` (its text says whether it is retried),
 * a backup that completes after a failed one is a `recovery`, else a `success`.
 */
export function decideNotification(
  state: NotifierState,
  event: Envelope,
  sequence: number,
): NotificationKind | undefined {
  if (state.last && sequence <= state.last.sequence) {
    return sequence === state.last.sequence ? state.last.kind : undefined;
  }
  const key = volumeKey(event);
  let kind: NotificationKind | undefined;
  switch (shortType(event.type)) {
    case 'backup.failed':
    case 'backup.partially-failed':
      if (key) state.failing.add(key);
      kind = 'failure';
      break;
    case 'backup.abandoned':
      // Its last attempt's `BackupFailed` was notified already.
      if (key) state.failing.add(key);
      break;
    case 'backup.completed':
      kind = key && state.failing.has(key) ? 'recovery' : 'success';
      if (key) state.failing.delete(key);
      break;
    case 'restore.failed':
      kind = 'failure';
      break;
    case 'restore.completed':
      kind = 'success';
      break;
    case 'drill.failed':
      kind = 'failure';
      break;
    case 'drill.passed':
      kind = 'success';
      break;
    case 'volume.at-risk':
      kind = 'at-risk';
      break;
    case 'volume.protection-restored':
      kind = 'recovery';
      break;
  }
  state.last = { sequence, kind };
  return kind;
}

/** `*` matches any run of characters; everything else is literal. */
function globMatches(pattern: string, text: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return regex.test(text);
}

/** Whether a channel's filter lets a notification of `kind` about `scope` through. */
export function filterAccepts(
  filter: NotificationFilter,
  defaultKinds: readonly NotificationKind[],
  kind: NotificationKind,
  scope: NotificationScope,
): boolean {
  // A test goes to the channels it names, whatever they filter.
  if (kind === 'test') return true;
  if (!(filter.kinds ?? defaultKinds).includes(kind)) return false;
  if (filter.hosts && (scope.hostId === undefined || !filter.hosts.includes(scope.hostId))) return false;
  if (
    filter.volumes &&
    (scope.volumeName === undefined || !filter.volumes.some((p) => globMatches(p, scope.volumeName!)))
  ) {
    return false;
  }
  return true;
}
