// The rule that decides whether a failed backup attempt gets another one, in one place: the
// scheduler applies it when it decides retries, and the agent states its answer in
// `BackupFailed.willRetry`, so the event says what will happen.

/** Failure codes a retry cannot cure: the backup is abandoned at once. */
export const PERMANENT_BACKUP_FAILURE_CODES: ReadonlySet<string> = new Set([
  'VOLBACK_AGENT_VOLUME_NOT_FOUND',
  'VOLBACK_AGENT_CONSISTENCY_LABEL_INVALID',
  'VOLBACK_AGENT_HOOK_NOT_ALLOWED',
  'VOLBACK_AGENT_DUMP_LABEL_INVALID',
]);

/**
 * True when the scheduler tries a failed attempt again: the backup was requested with a number of
 * attempts (`maxAttempts` of `BackupRequested`/`BackupVolume`; the scheduler sets it on the backups
 * it requests, a request without it is not retried), attempts are left, and the failure is one a
 * retry can cure. (A newer schedule slot of the volume may still run before the retry does.)
 */
export function backupFailureIsRetried(failure: {
  readonly attempt: number;
  readonly maxAttempts: number | undefined;
  readonly code: string | undefined;
}): boolean {
  return (
    failure.maxAttempts !== undefined &&
    failure.attempt < failure.maxAttempts &&
    !PERMANENT_BACKUP_FAILURE_CODES.has(failure.code ?? '')
  );
}
