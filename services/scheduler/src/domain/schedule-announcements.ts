import { VolumeBackupScheduled } from '@volback/contracts';
import { boundedId } from './ids.ts';
import { eventIntent, type Decision } from './intents.ts';
import { effectivePolicy, type EffectivePolicy } from './policy.ts';
import { dueSlot, jitterMs, nextSlotAfter } from './schedule.ts';
import type { SchedulerSettings } from './settings.ts';
import type { SchedulerState, VolumeView } from './state.ts';

/** A volume's next scheduled backup: its policy's next slot after the anchor, plus its jitter. */
export interface NextScheduledBackup {
  readonly dueAt: number;
  readonly policy: EffectivePolicy;
}

/**
 * When the schedule next asks for a backup of this volume, as `candidateFor` will see it: the first
 * slot after the schedule's anchor plus the volume's jitter, or, while a slot's backup waits (limits,
 * a prune's hold, an offline host), that slot's due time, already past. Undefined without an enabled
 * policy or when the schedule never runs again.
 */
export function nextScheduledBackup(
  state: SchedulerState,
  volume: VolumeView,
  now: number,
  settings: SchedulerSettings,
): NextScheduledBackup | undefined {
  const policy = effectivePolicy(state, volume, settings);
  if (!policy?.policy.enabled) return undefined;
  const schedule = policy.policy.schedule;
  const anchor = Math.max(
    volume.lastSlot ?? -Infinity,
    volume.lastRequestedAt ?? -Infinity,
    volume.discoveredAt,
  );
  const jitter = jitterMs(volume.key, schedule, settings.jitterWindowMs);
  const waiting = dueSlot(schedule, anchor, now, jitter);
  if (waiting) return { dueAt: waiting.dueAt, policy };
  const slot = nextSlotAfter(schedule, anchor);
  return slot === undefined ? undefined : { dueAt: slot + jitter, policy };
}

/**
 * `VolumeBackupScheduled` for every volume whose next scheduled backup differs from the last one
 * announced (the state remembers it from the log, so a restarted or new leader does not repeat
 * it). The id derives from the volume's incarnation (its discovery), how many announcements it
 * already has and the due time: the same decision is stored once, and a new fact never collides
 * with an earlier one. (With volume and due time alone, a volume removed and discovered again
 * announced the same due time under the same id; JetStream dropped it as a duplicate, the state
 * never saw it, and every round announced it again until the duplicate window ran out.)
 */
export function decideScheduleAnnouncements(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const decisions: Decision[] = [];
  for (const volume of state.volumes.values()) {
    const next = nextScheduledBackup(state, volume, now, settings);
    if (!next || next.dueAt === volume.announcedDueAt) continue;
    const { hostId, volumeName } = volume;
    const nextDueAt = new Date(next.dueAt).toISOString();
    const { schedule } = next.policy.policy;
    decisions.push({
      what: 'backup-scheduled',
      intents: [
        eventIntent(
          VolumeBackupScheduled,
          {
            hostId,
            volumeName,
            nextDueAt,
            ...(next.policy.policyId ? { policyId: next.policy.policyId } : {}),
            schedule: schedule.cron,
            timezone: schedule.timezone,
          },
          {
            id: boundedId(
              `backup-scheduled-${hostId}-${volumeName}-${new Date(volume.discoveredAt).toISOString()}-${volume.announcements ?? 0}-${nextDueAt}`,
            ),
            now,
            source: settings.source,
          },
        ),
      ],
    });
  }
  return decisions;
}
