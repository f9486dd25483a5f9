import { decideAbandoned, decideBackups, resendBackupCommands } from './backups.ts';
import { decideDrills, resendDrillCommands } from './drills.ts';
import type { Decision } from './intents.ts';
import {
  decideForgets,
  decideRepositoryMaintenance,
  heldRepositories,
  resendMaintenanceCommands,
} from './maintenance.ts';
import { containersByVolume, decideConfiguredDefault, decideLabelPolicies } from './policy.ts';
import { decideProtection } from './protection.ts';
import type { SchedulerSettings } from './settings.ts';
import type { SchedulerState } from './state.ts';

/**
 * One round of the leader: everything the state and the clock call for now. The configured default
 * and label policies first
 * (their effect shows in the next round, once their events are in the state), then abandoned
 * retries, backups within the limits, the protection watch, retention and maintenance.
 */
export function decideTick(state: SchedulerState, now: number, settings: SchedulerSettings): Decision[] {
  const held = heldRepositories(state, now, settings);
  const backups = decideBackups(state, now, settings, { heldRepositories: held });
  // A prune must not start beside backups this round asks for.
  const starting = new Set(
    backups.map((d) => (d.intents[0]!.message.envelope.data as { repositoryId: string }).repositoryId),
  );
  // Drills share the backups' limits, after the backups this round starts (their BackupRequested).
  const startingBackups = backups.flatMap((d) =>
    d.intents.flatMap((i) =>
      i.kind === 'event' ? [i.message.envelope.data as { hostId: string; volumeName: string }] : [],
    ),
  );
  return [
    ...decideConfiguredDefault(state, now, settings),
    ...decideLabelPolicies(state, now, settings, containersByVolume(state)),
    ...decideAbandoned(state, now, settings),
    ...backups,
    ...decideDrills(state, now, settings, startingBackups),
    ...decideProtection(state, now, settings),
    ...decideForgets(state, now, settings, held),
    ...decideRepositoryMaintenance(state, now, settings, starting),
  ];
}

/** What a scheduler that just became leader sends again (see {@link resendBackupCommands}). */
export function decideTakeover(state: SchedulerState, now: number, settings: SchedulerSettings): Decision[] {
  return [
    ...resendBackupCommands(state, now, settings),
    ...resendMaintenanceCommands(state, now, settings),
    ...resendDrillCommands(state, now, settings),
  ];
}
