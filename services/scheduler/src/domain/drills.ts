import { RestoreDrill, RestoreDrillRequested, type DrillSpec } from '@volback/contracts';
import { hostOnline, isLive } from './backups.ts';
import { boundedId, isoSeconds } from './ids.ts';
import { commandIntent, eventIntent, type Decision } from './intents.ts';
import { effectivePolicy } from './policy.ts';
import { dueSlot, jitterMs } from './schedule.ts';
import type { SchedulerSettings } from './settings.ts';
import { hostScopedKey, type SchedulerState } from './state.ts';

/** A scheduled drill's id: one per volume and slot, whoever decides it. */
export function slotDrillId(hostId: string, volumeName: string, slotMs: number): string {
  return boundedId(`drill-${hostId}-${volumeName}-${isoSeconds(slotMs)}`);
}

/** A drill in flight no longer counts against the limits once older than the backup timeout. */
function drillLive(requestedAt: number, now: number, settings: SchedulerSettings): boolean {
  return now - requestedAt < settings.backupTimeoutMs;
}

/**
 * The drills due now: each volume whose enabled policy asks for one (`drill.schedule`, the
 * `volback.drill.schedule` label) and that has a snapshot, at the latest slot since its last drill
 * (missed slots run once), while no backup or drill of it runs. A drill counts against the same
 * per-host and global limits as backups (`starting`: the volumes whose backups this round starts).
 * Each is `RestoreDrillRequested` (stored once per volume and slot) and `RestoreDrill` to the agent.
 */
export function decideDrills(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  starting: readonly { readonly hostId: string; readonly volumeName: string }[] = [],
): Decision[] {
  const busy = new Set<string>();
  const perHost = new Map<string, number>();
  let total = 0;
  const count = (hostId: string, key: string) => {
    busy.add(key);
    perHost.set(hostId, (perHost.get(hostId) ?? 0) + 1);
    total++;
  };
  for (const b of starting) count(b.hostId, hostScopedKey(b.hostId, b.volumeName));
  for (const flight of state.inFlight.values()) {
    if (isLive(flight, now, settings)) count(flight.hostId, hostScopedKey(flight.hostId, flight.volumeName));
  }
  for (const drill of state.drillsInFlight.values()) {
    if (drillLive(drill.requestedAt, now, settings)) {
      count(drill.hostId, hostScopedKey(drill.hostId, drill.volumeName));
    }
  }
  const decisions: Decision[] = [];
  for (const volume of state.volumes.values()) {
    if (total >= settings.maxConcurrentBackups) break;
    if (busy.has(volume.key) || !volume.lastSuccess) continue;
    const policy = effectivePolicy(state, volume, settings)?.policy;
    const drill = policy?.enabled ? policy.drill : undefined;
    if (!drill) continue;
    if ((perHost.get(volume.hostId) ?? 0) >= settings.maxConcurrentBackupsPerHost) continue;
    if (!hostOnline(state, volume.hostId, now)) continue;
    const anchor = Math.max(volume.lastDrillSlot ?? -Infinity, volume.discoveredAt);
    const due = dueSlot(
      drill.schedule,
      anchor,
      now,
      jitterMs(volume.key, drill.schedule, settings.jitterWindowMs),
    );
    if (!due) continue;
    const drillId = slotDrillId(volume.hostId, volume.volumeName, due.slot);
    const key = { drillId, hostId: volume.hostId, volumeName: volume.volumeName };
    const repositoryId = volume.lastSuccess.repositoryId;
    decisions.push({
      what: 'drill',
      intents: [
        eventIntent(
          RestoreDrillRequested,
          {
            ...key,
            trigger: 'schedule',
            repositoryId,
            requestedBy: 'scheduler',
            requestedAt: new Date(now).toISOString(),
          },
          drillStamp(drillId, 'requested', now, settings),
          true,
        ),
        scheduledDrillCommand(key, repositoryId, drill, now, settings),
      ],
    });
    count(volume.hostId, volume.key);
  }
  return decisions;
}

function drillStamp(drillId: string, suffix: string, now: number, settings: SchedulerSettings) {
  return { id: `${drillId}.${suffix}`, now, source: settings.source, correlationid: drillId };
}

/** The `RestoreDrill` of a scheduled drill (also what is sent again when it may have been lost). */
function scheduledDrillCommand(
  key: { readonly drillId: string; readonly hostId: string; readonly volumeName: string },
  repositoryId: string,
  drill: DrillSpec,
  now: number,
  settings: SchedulerSettings,
) {
  return commandIntent(
    RestoreDrill,
    {
      ...key,
      trigger: 'schedule',
      repositoryId,
      containers: drill.containers,
      ...(drill.health !== undefined ? { health: drill.health } : {}),
      healthTimeoutSeconds: drill.healthTimeoutSeconds,
    },
    drillStamp(key.drillId, 'command', now, settings),
  );
}

/**
 * The `RestoreDrill` of every scheduled drill in flight, sent again under its id by a new leader
 * or after a failed publish (its request stored, its command perhaps not), from the volume's
 * policy as it is now; JetStream or the agent drops what already arrived. Drills asked for through
 * the API are the catalog's to send.
 */
export function resendDrillCommands(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const decisions: Decision[] = [];
  for (const [drillId, flight] of state.drillsInFlight) {
    if (flight.trigger !== 'schedule' || !drillLive(flight.requestedAt, now, settings)) continue;
    const volume = state.volumes.get(hostScopedKey(flight.hostId, flight.volumeName));
    const policy = volume ? effectivePolicy(state, volume, settings)?.policy : undefined;
    const repositoryId = flight.repositoryId ?? volume?.lastSuccess?.repositoryId;
    if (!policy?.drill || !repositoryId) continue;
    const key = { drillId, hostId: flight.hostId, volumeName: flight.volumeName };
    decisions.push({
      what: 'drill-resent',
      intents: [scheduledDrillCommand(key, repositoryId, policy.drill, flight.requestedAt, settings)],
    });
  }
  return decisions;
}
