/** How well a volume is protected. */
export const ProtectionStatus = {
  /** Its last successful backup is recent enough (no `VolumeAtRisk` outstanding). */
  Protected: 'protected',
  /** Its recovery point objective is missed (`VolumeAtRisk`, until `VolumeProtectionRestored`). */
  AtRisk: 'at-risk',
  /** Never backed up successfully. */
  Unprotected: 'unprotected',
  /** The volume is gone from its host; its snapshots stay. */
  Removed: 'removed',
} as const;
/** One of {@link ProtectionStatus}. */
export type ProtectionStatus = (typeof ProtectionStatus)[keyof typeof ProtectionStatus];

/** The protection of a volume from what the projection holds about it. */
export function protectionStatus(volume: {
  removedAt: string | null;
  atRisk: boolean;
  lastSuccessAt: string | null;
}): ProtectionStatus {
  if (volume.removedAt) return ProtectionStatus.Removed;
  if (volume.atRisk) return ProtectionStatus.AtRisk;
  if (!volume.lastSuccessAt) return ProtectionStatus.Unprotected;
  return ProtectionStatus.Protected;
}

/**
 * When a host counts as offline: two heartbeat intervals after its last `HostSeen` (one missed
 * heartbeat is tolerated: a slow publish, a NATS reconnect).
 */
export function offlineAfter(seenAt: Date, intervalSeconds: number): Date {
  return new Date(seenAt.getTime() + 2 * intervalSeconds * 1000);
}
