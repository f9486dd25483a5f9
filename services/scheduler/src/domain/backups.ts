import {
  BackupAbandoned,
  backupFailureIsRetried,
  BackupRequested,
  BackupSet,
  BackupVolume,
  memberBackupId,
  PERMANENT_BACKUP_FAILURE_CODES,
  BackupPhase,
} from '@volback/contracts';
import { backupId, boundedId, isoSeconds, retryBackupId, slotBackupId } from './ids.ts';
import { commandIntent, eventIntent, type Decision } from './intents.ts';
import { effectivePolicy, type EffectivePolicy } from './policy.ts';
import { dueSlot, jitterMs } from './schedule.ts';
import { backedUpAsSet, setOfVolume, setVolumes } from './sets.ts';
import type { SchedulerSettings } from './settings.ts';
import { type BackupTrigger, type InFlightBackup, type SchedulerState, type VolumeView } from './state.ts';

/** Failure codes a retry cannot cure: the backup is abandoned at once (the contracts' list). */
export const PERMANENT_FAILURE_CODES = PERMANENT_BACKUP_FAILURE_CODES;

/** A scheduled run this much later than its due time counts as a catch-up. */
export const CATCH_UP_AFTER_MS = 10 * 60_000;

/** A backup that is due, before the concurrency limits are applied. */
export interface BackupCandidate {
  readonly hostId: string;
  readonly volumeName: string;
  readonly backupId: string;
  readonly trigger: BackupTrigger;
  readonly attempt: number;
  /** For a retry: the first attempt's id. */
  readonly retryOf?: string;
  readonly slot?: number;
  readonly dueAt: number;
  /**
   * Since when the volume has waited (a scheduled one: its first missed slot): the longest waiting
   * go first when the limits leave room for only some, so none is starved by others always due at
   * the same newest slot.
   */
  readonly waitingSince?: number;
  readonly policy: EffectivePolicy;
}

/** Lower runs first when the limits leave room for only some. */
const PRIORITY: Record<BackupTrigger, number> = {
  manual: 0,
  'container-stopped': 1,
  retry: 2,
  'volume-discovered': 3,
  schedule: 4,
  'catch-up': 4,
};

/** An in-flight backup older than the timeout no longer holds its volume or a concurrency slot. */
export function isLive(flight: InFlightBackup, now: number, settings: SchedulerSettings): boolean {
  return now - flight.requestedAt < settings.backupTimeoutMs;
}

/** False when the host's agent missed three heartbeats (at least two minutes): its backups wait. */
export function hostOnline(state: SchedulerState, hostId: string, now: number): boolean {
  const host = state.hosts.get(hostId);
  if (!host) return true;
  return now - host.lastSeenAt <= Math.max(3 * (host.intervalSeconds ?? 30) * 1000, 120_000);
}

/** How long after a failed attempt the next one starts. */
export function retryDelayMs(failedAttempt: number, settings: SchedulerSettings): number {
  return Math.min(settings.retry.maxDelayMs, settings.retry.baseDelayMs * 2 ** (failedAttempt - 1));
}

/**
 * Whether the last attempt's failure gets another attempt: the contracts' rule
 * (`backupFailureIsRetried`), the same the agent states in `BackupFailed.willRetry`.
 */
function retriable(volume: VolumeView): boolean {
  const last = volume.lastOutcome;
  return (
    last !== undefined &&
    last.phase === BackupPhase.Failed &&
    !last.abandoned &&
    last.requestedByScheduler &&
    backupFailureIsRetried({ attempt: last.attempt, maxAttempts: last.maxAttempts, code: last.code })
  );
}

/** The one backup a volume needs now, if any, by the most pressing reason. */
export function candidateFor(
  state: SchedulerState,
  volume: VolumeView,
  now: number,
  settings: SchedulerSettings,
  busyVolumes: ReadonlySet<string>,
): BackupCandidate | undefined {
  if (busyVolumes.has(volume.key)) return undefined;
  const policy = effectivePolicy(state, volume, settings);
  if (!policy?.policy.enabled) return undefined;
  const { hostId, volumeName } = volume;
  const base = { hostId, volumeName, policy };

  // The schedule: the latest slot since the anchor, once, whatever was missed before it.
  const schedule = policy.policy.schedule;
  const anchor = Math.max(
    volume.lastSlot ?? -Infinity,
    volume.lastRequestedAt ?? -Infinity,
    volume.discoveredAt,
  );
  const due = dueSlot(schedule, anchor, now, jitterMs(volume.key, schedule, settings.jitterWindowMs));
  if (due) {
    const late = due.skippedEarlier || now - due.dueAt > CATCH_UP_AFTER_MS;
    return {
      ...base,
      backupId: slotBackupId(hostId, volumeName, due.slot),
      trigger: late ? 'catch-up' : 'schedule',
      attempt: 1,
      slot: due.slot,
      dueAt: due.dueAt,
      waitingSince: due.firstDueAt,
    };
  }

  const last = volume.lastOutcome;
  if (last && retriable(volume)) {
    const dueAt = last.at + retryDelayMs(last.attempt, settings);
    if (now < dueAt) return undefined;
    return {
      ...base,
      backupId: retryBackupId(last.firstAttemptId, last.attempt + 1),
      trigger: 'retry',
      attempt: last.attempt + 1,
      retryOf: last.firstAttemptId,
      ...(last.slot !== undefined ? { slot: last.slot } : {}),
      dueAt,
    };
  }

  const stopAt = volume.lastContainerStopAt;
  if (
    settings.backupOnContainerStop &&
    stopAt !== undefined &&
    stopAt > (volume.lastRequestedAt ?? -Infinity)
  ) {
    return {
      ...base,
      backupId: backupId(hostId, volumeName, `stopped-${isoSeconds(stopAt)}`),
      trigger: 'container-stopped',
      attempt: 1,
      dueAt: stopAt,
    };
  }

  if (volume.lastRequestedAt === undefined) {
    const dueAt = volume.discoveredAt + settings.firstBackupDelayMs;
    if (now < dueAt) return undefined;
    return {
      ...base,
      backupId: backupId(hostId, volumeName, `discovered-${isoSeconds(volume.discoveredAt)}`),
      trigger: 'volume-discovered',
      attempt: 1,
      dueAt,
    };
  }
  return undefined;
}

/** Options of {@link decideBackups}: repositories whose new backups wait (a prune is due or running). */
export interface BackupRound {
  readonly heldRepositories?: ReadonlySet<string>;
}

/** What is running now: live in-flight backups by volume and host. */
function running(state: SchedulerState, now: number, settings: SchedulerSettings) {
  const busy = new Set<string>();
  const perHost = new Map<string, number>();
  let total = 0;
  for (const flight of state.inFlight.values()) {
    if (!isLive(flight, now, settings)) continue;
    busy.add(`${flight.hostId}\u0000${flight.volumeName}`);
    perHost.set(flight.hostId, (perHost.get(flight.hostId) ?? 0) + 1);
    total++;
  }
  return { busy, perHost, total };
}

/** Every backup due now, before the concurrency limits: the volumes' most pressing reasons. */
export function dueBackups(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  round: BackupRound = {},
  busy: ReadonlySet<string> = running(state, now, settings).busy,
): BackupCandidate[] {
  const candidates: BackupCandidate[] = [];
  const online = new Map<string, boolean>();
  for (const volume of state.volumes.values()) {
    let up = online.get(volume.hostId);
    if (up === undefined) online.set(volume.hostId, (up = hostOnline(state, volume.hostId, now)));
    if (!up) continue;
    const candidate = candidateFor(state, volume, now, settings, busy);
    if (candidate && !round.heldRepositories?.has(candidate.policy.policy.repositoryId))
      candidates.push(candidate);
  }
  return candidates.sort(
    (a, b) =>
      PRIORITY[a.trigger] - PRIORITY[b.trigger] ||
      (a.waitingSince ?? a.dueAt) - (b.waitingSince ?? b.dueAt) ||
      a.dueAt - b.dueAt ||
      (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0),
  );
}

/**
 * The backups to request now: every volume's most pressing reason, then the per-host and global
 * concurrency limits (in-flight backups count), most urgent and longest due first.
 */
export function decideBackups(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  round: BackupRound = {},
): Decision[] {
  const { busy, perHost, total } = running(state, now, settings);
  let count = total;
  if (count >= settings.maxConcurrentBackups) return [];
  const decisions: Decision[] = [];
  const setsDecided = new Set<string>();
  for (const candidate of dueBackups(state, now, settings, round, busy)) {
    if (count >= settings.maxConcurrentBackups) break;
    const onHost = perHost.get(candidate.hostId) ?? 0;
    if (onHost >= settings.maxConcurrentBackupsPerHost) continue;
    const set = scheduledSet(state, candidate);
    if (set) {
      // The set's volumes go together, at the slot of the first of them due; one command.
      const key = `${candidate.hostId}\u0000${set}`;
      if (setsDecided.has(key)) continue;
      setsDecided.add(key);
      const members = setVolumes(state, candidate.hostId, set);
      if (members.some((m) => busy.has(m.key))) continue;
      decisions.push(setBackupDecision(candidate, set, members, now, settings));
    } else decisions.push(backupDecision(candidate, now, settings));
    perHost.set(candidate.hostId, onHost + 1);
    count++;
  }
  return decisions;
}

/** The set a scheduled backup runs in, when its volume's set asks to be backed up as one. */
function scheduledSet(state: SchedulerState, candidate: BackupCandidate): string | undefined {
  if (candidate.trigger !== 'schedule' && candidate.trigger !== 'catch-up') return undefined;
  if (candidate.slot === undefined) return undefined;
  const volume = state.volumes.get(`${candidate.hostId}\u0000${candidate.volumeName}`);
  const set = volume ? setOfVolume(state, volume) : undefined;
  return set && backedUpAsSet(state, candidate.hostId, set) ? set : undefined;
}

/** A set backup's id: one per host, set and slot. */
export function setSlotBackupId(hostId: string, setId: string, slotMs: number): string {
  return boundedId(`set-${hostId}-${setId}-${isoSeconds(slotMs)}`);
}

/**
 * A scheduled set backup: `BackupRequested` for every member volume under the id the agent gives
 * its member backup (`memberBackupId`), so slots, limits and the RPO watch hold per volume, then
 * one `BackupSet` to the host's agent. Members are not retried (no `maxAttempts`): the set's
 * outcome names a failed member, and the next slot backs the set up again.
 */
export function setBackupDecision(
  candidate: BackupCandidate,
  setId: string,
  members: readonly VolumeView[],
  now: number,
  settings: SchedulerSettings,
): Decision {
  const setBackupId = setSlotBackupId(candidate.hostId, setId, candidate.slot!);
  const stamp = (id: string, suffix: string) => ({
    id: `${id}.${suffix}`,
    now,
    source: settings.source,
    correlationid: setBackupId,
  });
  const repositoryId = candidate.policy.policy.repositoryId;
  return {
    what: 'backup-set',
    intents: [
      ...members.map((member) => {
        const id = memberBackupId(setBackupId, member.volumeName);
        return eventIntent(
          BackupRequested,
          {
            backupId: id,
            hostId: candidate.hostId,
            volumeName: member.volumeName,
            trigger: candidate.trigger,
            slot: new Date(candidate.slot!).toISOString(),
            attempt: 1,
            repositoryId,
            requestedBy: 'scheduler',
            requestedAt: new Date(now).toISOString(),
            setId,
            setBackupId,
          },
          stamp(id, 'requested'),
          true,
        );
      }),
      setBackupCommand(
        { setBackupId, setId, hostId: candidate.hostId, trigger: candidate.trigger, repositoryId },
        now,
        settings,
      ),
    ],
  };
}

/** The `BackupSet` command of a set backup (also what a new leader sends again). */
function setBackupCommand(
  set: { setBackupId: string; setId: string; hostId: string; trigger: BackupTrigger; repositoryId: string },
  now: number,
  settings: SchedulerSettings,
) {
  return commandIntent(
    BackupSet,
    {
      backupId: set.setBackupId,
      hostId: set.hostId,
      setId: set.setId,
      trigger: set.trigger,
      repositoryId: set.repositoryId,
      requestedBy: 'scheduler',
    },
    { id: `${set.setBackupId}.command`, now, source: settings.source, correlationid: set.setBackupId },
  );
}

/** `BackupRequested` (stored once per backup id, ever) and the `BackupVolume` command to the host's agent. */
export function backupDecision(
  candidate: BackupCandidate,
  now: number,
  settings: SchedulerSettings,
  requestedBy = 'scheduler',
  causationid?: string,
): Decision {
  const { backupId: id, hostId, volumeName, trigger, attempt, policy } = candidate;
  const stamp = (suffix: string) => ({
    id: `${id}.${suffix}`,
    now,
    source: settings.source,
    correlationid: id,
    ...(causationid ? { causationid } : {}),
  });
  return {
    what: 'backup',
    intents: [
      eventIntent(
        BackupRequested,
        {
          backupId: id,
          hostId,
          volumeName,
          trigger,
          ...(candidate.slot !== undefined ? { slot: new Date(candidate.slot).toISOString() } : {}),
          attempt,
          ...(candidate.retryOf ? { retryOf: candidate.retryOf } : {}),
          maxAttempts: settings.retry.maxAttempts,
          repositoryId: policy.policy.repositoryId,
          requestedBy: requestedBy.slice(0, 200),
          requestedAt: new Date(now).toISOString(),
        },
        stamp('requested'),
        true,
      ),
      backupCommand({ ...candidate, maxAttempts: settings.retry.maxAttempts }, now, settings, causationid),
    ],
  };
}

/** The `BackupVolume` command of a backup (also what is sent again when a new leader takes over). */
export function backupCommand(
  candidate: Pick<
    BackupCandidate,
    'backupId' | 'hostId' | 'volumeName' | 'trigger' | 'attempt' | 'policy'
  > & {
    readonly maxAttempts?: number | undefined;
  },
  now: number,
  settings: SchedulerSettings,
  causationid?: string,
) {
  const { policy } = candidate.policy;
  return commandIntent(
    BackupVolume,
    {
      backupId: candidate.backupId,
      hostId: candidate.hostId,
      volumeName: candidate.volumeName,
      trigger: candidate.trigger,
      attempt: candidate.attempt,
      ...(candidate.maxAttempts !== undefined ? { maxAttempts: candidate.maxAttempts } : {}),
      repositoryId: policy.repositoryId,
      // `none` lets the agent follow the containers' consistency labels.
      consistency: policy.consistency,
      excludes: policy.excludes,
    },
    {
      id: `${candidate.backupId}.command`,
      now,
      source: settings.source,
      correlationid: candidate.backupId,
      ...(causationid ? { causationid } : {}),
    },
  );
}

/**
 * `BackupAbandoned` for every volume whose last attempt failed with no retry left (attempts used
 * up, or a failure a retry cannot cure), on the first attempt's subject.
 */
export function decideAbandoned(state: SchedulerState, now: number, settings: SchedulerSettings): Decision[] {
  const decisions: Decision[] = [];
  for (const volume of state.volumes.values()) {
    const last = volume.lastOutcome;
    if (
      !last ||
      last.phase !== BackupPhase.Failed ||
      last.abandoned ||
      !last.requestedByScheduler ||
      retriable(volume)
    ) {
      continue;
    }
    decisions.push({
      what: 'backup-abandoned',
      intents: [
        eventIntent(
          BackupAbandoned,
          {
            backupId: last.firstAttemptId,
            hostId: volume.hostId,
            volumeName: volume.volumeName,
            ...(last.slot !== undefined ? { slot: new Date(last.slot).toISOString() } : {}),
            attempts: last.attempt,
            lastBackupId: last.backupId,
            code: last.code ?? 'VOLBACK_BACKUP_FAILED',
            reason: (PERMANENT_FAILURE_CODES.has(last.code ?? '')
              ? `not retried (${last.code}): ${last.reason ?? 'failed'}`
              : `${last.attempt} attempt(s) failed; the last: ${last.reason ?? 'failed'}`
            ).slice(0, 4000),
            abandonedAt: new Date(now).toISOString(),
          },
          {
            id: `${last.firstAttemptId}.abandoned`,
            now,
            source: settings.source,
            correlationid: last.firstAttemptId,
          },
        ),
      ],
    });
  }
  return decisions;
}

/**
 * The commands of backups requested but not started, sent again when a scheduler becomes leader:
 * the previous leader may have stored `BackupRequested` and died before sending the command. The
 * command's id is the same, so JetStream drops it within its duplicate window, and the agent does
 * not run a backup whose outcome is already stored.
 */
export function resendBackupCommands(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const decisions: Decision[] = [];
  const setsResent = new Set<string>();
  for (const flight of state.inFlight.values()) {
    if (flight.phase !== BackupPhase.Queued || !isLive(flight, now, settings)) continue;
    if (flight.set) {
      if (setsResent.has(flight.set.setBackupId)) continue;
      setsResent.add(flight.set.setBackupId);
      decisions.push({
        what: 'backup-set-resent',
        intents: [setBackupCommand({ ...flight, ...flight.set }, flight.requestedAt, settings)],
      });
      continue;
    }
    const volume = state.volumes.get(`${flight.hostId}\u0000${flight.volumeName}`);
    const policy = volume ? effectivePolicy(state, volume, settings) : undefined;
    decisions.push({
      what: 'backup-resent',
      intents: [
        backupCommand(
          {
            ...flight,
            policy: policy ?? {
              source: 'configuration',
              policy: { ...settings.defaultPolicy, repositoryId: flight.repositoryId },
            },
          },
          flight.requestedAt,
          settings,
        ),
      ],
    });
  }
  return decisions;
}
