/** Where a backup is in its life, from its events (`io.volback.backup.*`). */
export const BackupPhase = {
  /** Asked for (`BackupRequested`) and sent to the host's agent, which has not begun yet. */
  Queued: 'Queued',
  /** The agent is reading the volume (`BackupStarted`); progress is live on `volback.progress.<host>.<id>`. */
  Running: 'Running',
  /** A snapshot was written and every file was read (`BackupCompleted`). */
  Completed: 'Completed',
  /** A snapshot was written, but some files could not be read; they are listed (`BackupPartiallyFailed`). */
  PartiallyFailed: 'PartiallyFailed',
  /** No snapshot was written; `error` says why, `willRetry` whether the scheduler tries again (`BackupFailed`). */
  Failed: 'Failed',
} as const;
/** One of {@link BackupPhase}. */
export type BackupPhase = (typeof BackupPhase)[keyof typeof BackupPhase];

/** Where a restore is in its life, from its events (`io.volback.restore.*`). */
export const RestorePhase = {
  /** Asked for (`RestoreRequested`) and sent to the agent, which has not begun yet. */
  Queued: 'Queued',
  /** The agent is writing into the target (`RestoreStarted`). */
  Running: 'Running',
  /** Every file is in the target (`RestoreCompleted`). */
  Completed: 'Completed',
  /** The restore stopped; `error` says why and what, if anything, was written (`RestoreFailed`). */
  Failed: 'Failed',
} as const;
/** One of {@link RestorePhase}. */
export type RestorePhase = (typeof RestorePhase)[keyof typeof RestorePhase];

/** True for phases after which nothing more happens to the work. */
export function isFinalPhase(phase: BackupPhase | RestorePhase): boolean {
  return phase === 'Completed' || phase === 'PartiallyFailed' || phase === 'Failed';
}

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
