import {
  CheckRepository,
  ForgetSnapshots,
  PruneRepository,
  RepositoryMaintenanceRequested,
} from '@volback/contracts';
import { isLive } from './backups.ts';
import { isoSeconds, operationId } from './ids.ts';
import { commandIntent, eventIntent, type Decision, type Intent } from './intents.ts';
import { effectivePolicy } from './policy.ts';
import { dueSlot } from './schedule.ts';
import type { SchedulerSettings } from './settings.ts';
import type { MaintenanceOperation, RepositoryView, SchedulerState } from './state.ts';

/** The gateway's code for an operation another lock holder stopped (its README, "Locking"). */
export const REPOSITORY_LOCKED = 'REPOSITORY_LOCKED';

/** A prune or check to run now: a new slot, or another attempt at the last one. */
interface Wanted {
  readonly slot: number;
  readonly attempt: number;
}

/** The slot of a scheduled maintenance job that is due, or a retry of one a lock stopped. */
function wanted(
  schedule: SchedulerSettings['prune']['schedule'],
  last: MaintenanceOperation | undefined,
  firstBackupAt: number,
  now: number,
  retry: { delayMs: number; maxAttempts: number },
): Wanted | undefined {
  if (!schedule) return undefined;
  const due = dueSlot(schedule, Math.max(last?.slot ?? -Infinity, firstBackupAt), now, 0);
  if (due) return { slot: due.slot, attempt: 1 };
  const outcome = last?.outcome;
  if (
    last?.slot !== undefined &&
    outcome?.code === REPOSITORY_LOCKED &&
    last.attempt < retry.maxAttempts &&
    now >= outcome.at + retry.delayMs
  ) {
    return { slot: last.slot, attempt: last.attempt + 1 };
  }
  return undefined;
}

function pruneWanted(repo: RepositoryView, now: number, settings: SchedulerSettings): Wanted | undefined {
  if (repo.firstBackupAt === undefined) return undefined;
  return wanted(settings.prune.schedule, repo.lastPrune, repo.firstBackupAt, now, {
    delayMs: settings.prune.retryDelayMs,
    maxAttempts: settings.prune.maxAttempts,
  });
}

function checkWanted(repo: RepositoryView, now: number, settings: SchedulerSettings): Wanted | undefined {
  if (repo.firstBackupAt === undefined) return undefined;
  return wanted(settings.check.schedule, repo.lastCheck, repo.firstBackupAt, now, {
    delayMs: settings.prune.retryDelayMs,
    maxAttempts: settings.prune.maxAttempts,
  });
}

/** A prune or check sent and without an outcome (and not yet given up as lost). */
function running(op: MaintenanceOperation | undefined, now: number, settings: SchedulerSettings): boolean {
  return op !== undefined && !op.outcome && now - op.requestedAt < settings.maintenanceTimeoutMs;
}

/**
 * Repositories whose new backups and forgets wait for a prune or a check: from the job's slot
 * until it ran, at most `holdBackupsMs` after the slot (a job that keeps failing does not stop
 * backups for long); and while one runs. Prune needs the exclusive lock; a check reads the index
 * and then every snapshot, so a backup committing or a forget deleting meanwhile would show as
 * damage (restic's own check takes the exclusive lock for the same reason).
 */
export function heldRepositories(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Set<string> {
  const held = new Set<string>();
  for (const repo of state.repositories.values()) {
    if (running(repo.lastPrune, now, settings) || running(repo.lastCheck, now, settings)) {
      held.add(repo.repositoryId);
      continue;
    }
    for (const want of [pruneWanted(repo, now, settings), checkWanted(repo, now, settings)]) {
      if (want && now < want.slot + settings.prune.holdBackupsMs) held.add(repo.repositoryId);
    }
  }
  return held;
}

function requestIntent(
  op: {
    operationId: string;
    repositoryId: string;
    operation: 'forget' | 'prune' | 'check';
    slot?: number;
    attempt: number;
    hostId?: string;
    volumeName?: string;
  },
  now: number,
  settings: SchedulerSettings,
): Intent {
  return eventIntent(
    RepositoryMaintenanceRequested,
    {
      operationId: op.operationId,
      repositoryId: op.repositoryId,
      operation: op.operation,
      ...(op.hostId ? { hostId: op.hostId } : {}),
      ...(op.volumeName ? { volumeName: op.volumeName } : {}),
      ...(op.slot !== undefined ? { slot: new Date(op.slot).toISOString() } : {}),
      attempt: op.attempt,
      requestedBy: 'scheduler',
      requestedAt: new Date(now).toISOString(),
    },
    { id: `${op.operationId}.requested`, now, source: settings.source, correlationid: op.operationId },
  );
}

const commandStamp = (operationId: string, now: number, settings: SchedulerSettings) => ({
  id: `${operationId}.command`,
  now,
  source: settings.source,
  correlationid: operationId,
});

/**
 * Retention after backups: a `ForgetSnapshots` with the volume's retention once a snapshot newer
 * than the last forget exists, again after `REPOSITORY_LOCKED`. Not while its repository is held
 * for a prune (forget's shared lock would stop the prune).
 */
export function decideForgets(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  held: ReadonlySet<string>,
): Decision[] {
  const decisions: Decision[] = [];
  for (const volume of state.volumes.values()) {
    const success = volume.lastSuccess;
    if (!success || held.has(success.repositoryId)) continue;
    const policy = effectivePolicy(state, volume, settings);
    if (!policy?.policy.enabled) continue;
    const last = volume.lastForget;
    let attempt: number;
    if (!last || last.requestedAt < success.at) attempt = 1;
    else if (
      last.outcome?.code === REPOSITORY_LOCKED &&
      last.attempt < settings.prune.maxAttempts &&
      now >= last.outcome.at + settings.prune.retryDelayMs
    ) {
      attempt = last.attempt + 1;
    } else continue;
    const id = operationId(['forget', volume.hostId, volume.volumeName, isoSeconds(success.at)], attempt);
    const op = {
      operationId: id,
      repositoryId: success.repositoryId,
      operation: 'forget' as const,
      attempt,
      hostId: volume.hostId,
      volumeName: volume.volumeName,
    };
    decisions.push({
      what: 'forget',
      intents: [
        requestIntent(op, now, settings),
        commandIntent(
          ForgetSnapshots,
          {
            operationId: id,
            repositoryId: success.repositoryId,
            hostId: volume.hostId,
            volumeName: volume.volumeName,
            retention: policy.policy.retention,
          },
          commandStamp(id, now, settings),
        ),
      ],
    });
  }
  return decisions;
}

/**
 * Prune and check on their schedules, per repository that has snapshots, one at a time and only
 * when no backup of the repository is in flight (new ones are held meanwhile, see
 * {@link heldRepositories}); tried again after `REPOSITORY_LOCKED`. Prune goes first when both
 * are due.
 */
export function decideRepositoryMaintenance(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  startingBackups: ReadonlySet<string> = new Set(),
): Decision[] {
  const decisions: Decision[] = [];
  const busy = new Set<string>(startingBackups);
  for (const flight of state.inFlight.values())
    if (isLive(flight, now, settings)) busy.add(flight.repositoryId);
  for (const repo of state.repositories.values()) {
    if (repo.firstBackupAt === undefined || busy.has(repo.repositoryId)) continue;
    if (running(repo.lastPrune, now, settings) || running(repo.lastCheck, now, settings)) continue;
    const prune = pruneWanted(repo, now, settings);
    const check = prune ? undefined : checkWanted(repo, now, settings);
    if (prune) {
      const id = operationId(['prune', repo.repositoryId, isoSeconds(prune.slot)], prune.attempt);
      decisions.push({
        what: 'prune',
        intents: [
          requestIntent(
            { operationId: id, repositoryId: repo.repositoryId, operation: 'prune', ...prune },
            now,
            settings,
          ),
          commandIntent(
            PruneRepository,
            {
              operationId: id,
              repositoryId: repo.repositoryId,
              maxUnusedFraction: settings.prune.maxUnusedFraction,
            },
            commandStamp(id, now, settings),
          ),
        ],
      });
    } else if (check) {
      const id = operationId(['check', repo.repositoryId, isoSeconds(check.slot)], check.attempt);
      decisions.push({
        what: 'check',
        intents: [
          requestIntent(
            { operationId: id, repositoryId: repo.repositoryId, operation: 'check', ...check },
            now,
            settings,
          ),
          commandIntent(
            CheckRepository,
            {
              operationId: id,
              repositoryId: repo.repositoryId,
              readDataFraction: settings.check.readDataFraction,
            },
            commandStamp(id, now, settings),
          ),
        ],
      });
    }
  }
  return decisions;
}

/** The commands of maintenance requested but without an outcome, sent again by a new leader. */
export function resendMaintenanceCommands(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const decisions: Decision[] = [];
  for (const op of state.pendingOperations.values()) {
    if (now - op.requestedAt >= settings.maintenanceTimeoutMs) continue;
    const stamp = commandStamp(op.operationId, op.requestedAt, settings);
    let intent: Intent | undefined;
    if (op.operation === 'prune') {
      intent = commandIntent(
        PruneRepository,
        {
          operationId: op.operationId,
          repositoryId: op.repositoryId,
          maxUnusedFraction: settings.prune.maxUnusedFraction,
        },
        stamp,
      );
    } else if (op.operation === 'check') {
      intent = commandIntent(
        CheckRepository,
        {
          operationId: op.operationId,
          repositoryId: op.repositoryId,
          readDataFraction: settings.check.readDataFraction,
        },
        stamp,
      );
    } else if (op.hostId && op.volumeName) {
      const volume = state.volumes.get(`${op.hostId}\u0000${op.volumeName}`);
      const policy = volume ? effectivePolicy(state, volume, settings) : undefined;
      if (policy) {
        intent = commandIntent(
          ForgetSnapshots,
          {
            operationId: op.operationId,
            repositoryId: op.repositoryId,
            hostId: op.hostId,
            volumeName: op.volumeName,
            retention: policy.policy.retention,
          },
          stamp,
        );
      }
    }
    if (intent) decisions.push({ what: `${op.operation}-resent`, intents: [intent] });
  }
  return decisions;
}
