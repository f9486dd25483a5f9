import { VolumeAtRisk, VolumeProtectionRestored } from '@volback/contracts';
import { isoSeconds, shortHash } from './ids.ts';
import { eventIntent, type Decision } from './intents.ts';
import { effectivePolicy } from './policy.ts';
import { periodMs } from './schedule.ts';
import type { PolicySpec } from '@volback/contracts';
import type { SchedulerSettings } from './settings.ts';
import type { SchedulerState } from './state.ts';

/** A volume's recovery point objective: its policy's, else twice its schedule's period. */
export function rpoSeconds(policy: PolicySpec): number {
  return policy.rpoSeconds ?? Math.ceil((2 * periodMs(policy.schedule)) / 1000);
}

/**
 * The protection watch: `VolumeAtRisk` when a protected volume's last snapshot (or, before its
 * first, its discovery) is older than its RPO; `VolumeProtectionRestored` once a recent enough
 * snapshot exists again. Each is published once per episode.
 */
export function decideProtection(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const decisions: Decision[] = [];
  for (const volume of state.volumes.values()) {
    const policy = effectivePolicy(state, volume, settings);
    if (!policy?.policy.enabled) continue;
    const rpo = rpoSeconds(policy.policy);
    const lastSuccessAt = volume.lastSuccess?.at;
    const since = lastSuccessAt ?? volume.discoveredAt;
    const fresh = now - since <= rpo * 1000;
    const key = `${volume.hostId}\u0000${volume.volumeName}`;
    if (!volume.atRisk && !fresh) {
      decisions.push({
        what: 'volume-at-risk',
        intents: [
          eventIntent(
            VolumeAtRisk,
            {
              hostId: volume.hostId,
              volumeName: volume.volumeName,
              ...(lastSuccessAt !== undefined
                ? { lastSuccessAt: new Date(lastSuccessAt).toISOString() }
                : {}),
              rpoSeconds: rpo,
              reason:
                lastSuccessAt !== undefined
                  ? `the last snapshot is from ${isoSeconds(lastSuccessAt)}, older than the RPO of ${rpo} s`
                  : `no snapshot since the volume was discovered at ${isoSeconds(volume.discoveredAt)}, longer than the RPO of ${rpo} s`,
              detectedAt: new Date(now).toISOString(),
            },
            { id: `at-risk-${shortHash(`${key}\u0000${since}`)}`, now, source: settings.source },
          ),
        ],
      });
    } else if (volume.atRisk && fresh && lastSuccessAt !== undefined) {
      decisions.push({
        what: 'volume-protection-restored',
        intents: [
          eventIntent(
            VolumeProtectionRestored,
            {
              hostId: volume.hostId,
              volumeName: volume.volumeName,
              lastSuccessAt: new Date(lastSuccessAt).toISOString(),
              restoredAt: new Date(now).toISOString(),
            },
            { id: `restored-${shortHash(`${key}\u0000${lastSuccessAt}`)}`, now, source: settings.source },
          ),
        ],
      });
    }
  }
  return decisions;
}
