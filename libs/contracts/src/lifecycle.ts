// The lifecycle of backups and restores, in one vocabulary: the catalog shows these phases, the
// scheduler follows backups through the same ones.

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
  /**
   * No snapshot was written; `error` says why, `willRetry` whether the scheduler tries again
   * (`BackupFailed`). A failure the scheduler gives up on (`BackupAbandoned`) stays `Failed`.
   */
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
