import { SET_LABELS, setIdOf } from '@volback/contracts';
import type { SchedulerState, VolumeView } from './state.ts';

const TRUE_VALUES = new Set(['true', 'yes', '1', 'on']);

/**
 * The set a volume belongs to on its host: by its own labels, else by those of a container that
 * mounts it (the agent's rule: `setIdOf` of `@volback/contracts`).
 */
export function setOfVolume(state: SchedulerState, volume: VolumeView): string | undefined {
  const own = setIdOf(volume.labels);
  if (own) return own;
  for (const container of state.containers.values()) {
    if (container.hostId !== volume.hostId || !container.volumeNames.includes(volume.volumeName)) continue;
    const found = setIdOf(container.labels);
    if (found) return found;
  }
  return undefined;
}

/** The set's volumes on a host as the scheduler knows them, sorted by name. */
export function setVolumes(state: SchedulerState, hostId: string, setId: string): VolumeView[] {
  return [...state.volumes.values()]
    .filter((v) => v.hostId === hostId && setOfVolume(state, v) === setId)
    .sort((a, b) => a.volumeName.localeCompare(b.volumeName));
}

/**
 * Whether a set's scheduled backups run as one `BackupSet`: `volback.set.backup=true` on any of
 * its containers or volumes on that host.
 */
export function backedUpAsSet(state: SchedulerState, hostId: string, setId: string): boolean {
  const asks = (labels: Readonly<Record<string, string>>) =>
    TRUE_VALUES.has(labels[SET_LABELS.backupAsSet]?.trim().toLowerCase() ?? '');
  for (const container of state.containers.values()) {
    if (container.hostId === hostId && asks(container.labels) && setIdOf(container.labels) === setId)
      return true;
  }
  return setVolumes(state, hostId, setId).some((volume) => asks(volume.labels));
}
