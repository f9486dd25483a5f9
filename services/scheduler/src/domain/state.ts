import { BackupPhase, type PolicyRecord as ContractPolicyRecord } from '@volback/contracts';
import type {
  BackupAbandoned,
  BackupCompleted,
  BackupFailed,
  BackupPartiallyFailed,
  BackupRequested,
  BackupSetCompleted,
  BackupSetFailed,
  BackupSetPartiallyFailed,
  BackupStarted,
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
  EventDefinition,
  HostRegistered,
  HostSeen,
  PolicyDefined,
  PolicyRejected,
  PolicyRemoved,
  PolicyCoverage,
  RepositoryChecked,
  RestoreDrillFailed,
  RestoreDrillPassed,
  RestoreDrillRequested,
  RepositoryMaintenanceFailed,
  RepositoryMaintenanceRequested,
  RepositoryPruned,
  SnapshotsForgotten,
  VolumeAtRisk,
  VolumeBackupScheduled,
  VolumeChanged,
  VolumeDiscovered,
  VolumeProtectionRestored,
  VolumeRemoved,
  policyScope,
} from '@volback/contracts';
import type { z } from 'zod';

type EventOf<D> =
  D extends EventDefinition<string, infer T, infer S> ? { type: T; data: z.output<S> } : never;

/** The events the scheduler's projection reads; any other type leaves the state as it is. */
export type SchedulerEvent =
  | EventOf<typeof HostRegistered>
  | EventOf<typeof HostSeen>
  | EventOf<typeof VolumeDiscovered>
  | EventOf<typeof VolumeChanged>
  | EventOf<typeof VolumeRemoved>
  | EventOf<typeof VolumeAtRisk>
  | EventOf<typeof VolumeProtectionRestored>
  | EventOf<typeof VolumeBackupScheduled>
  | EventOf<typeof ContainerObserved>
  | EventOf<typeof ContainerStarted>
  | EventOf<typeof ContainerStopped>
  | EventOf<typeof ContainerRemoved>
  | EventOf<typeof PolicyDefined>
  | EventOf<typeof PolicyRemoved>
  | EventOf<typeof PolicyRejected>
  | EventOf<typeof BackupRequested>
  | EventOf<typeof BackupStarted>
  | EventOf<typeof BackupCompleted>
  | EventOf<typeof BackupPartiallyFailed>
  | EventOf<typeof BackupFailed>
  | EventOf<typeof BackupAbandoned>
  | EventOf<typeof BackupSetCompleted>
  | EventOf<typeof BackupSetPartiallyFailed>
  | EventOf<typeof BackupSetFailed>
  | EventOf<typeof RepositoryMaintenanceRequested>
  | EventOf<typeof SnapshotsForgotten>
  | EventOf<typeof RepositoryPruned>
  | EventOf<typeof RepositoryChecked>
  | EventOf<typeof RepositoryMaintenanceFailed>
  | EventOf<typeof RestoreDrillRequested>
  | EventOf<typeof RestoreDrillPassed>
  | EventOf<typeof RestoreDrillFailed>;

/** Any event as read from the log: only `type` and `data` matter to the projection. */
export interface LoggedEvent {
  readonly type: string;
  readonly data: unknown;
}

/** What started a backup (the contract's `backupTrigger`). */
export type BackupTrigger = z.output<typeof BackupRequested.schema>['trigger'];

/** A Docker host as its agent last reported it. */
export interface HostView {
  readonly hostId: string;
  lastSeenAt: number;
  /** Heartbeat interval; absent until the first `HostSeen`. */
  intervalSeconds?: number;
}

/** A backup that has not ended: it holds its volume and counts against the concurrency limits. */
export interface InFlightBackup {
  readonly backupId: string;
  readonly hostId: string;
  readonly volumeName: string;
  readonly trigger: BackupTrigger;
  readonly slot?: number;
  readonly attempt: number;
  /** Attempts in all, as requested (`BackupRequested.maxAttempts`); absent: not retried. */
  readonly maxAttempts?: number;
  /** The first attempt's id (its own for a first attempt). */
  readonly firstAttemptId: string;
  readonly repositoryId: string;
  readonly requestedAt: number;
  /** A member of a set backup: resent as the set's `BackupSet`, not as a `BackupVolume`. */
  readonly set?: { readonly setId: string; readonly setBackupId: string };
  phase: BackupPhase;
}

/** The end of a backup attempt, as the volume remembers its last one. */
export interface BackupOutcome {
  readonly backupId: string;
  readonly firstAttemptId: string;
  readonly attempt: number;
  /** As requested: see {@link InFlightBackup.maxAttempts}. */
  readonly maxAttempts?: number;
  readonly trigger: BackupTrigger;
  readonly slot?: number;
  readonly phase: BackupPhase;
  readonly at: number;
  readonly code?: string;
  readonly reason?: string;
  /** The scheduler requested it (a `BackupRequested` was seen): only those are retried. */
  readonly requestedByScheduler: boolean;
  /** A `Failed` attempt the scheduler gave up on (`BackupAbandoned`): no retry follows. */
  readonly abandoned?: boolean;
}

/** A forget, prune or check the scheduler asked for, and its outcome once known. */
export interface MaintenanceOperation {
  readonly operationId: string;
  readonly operation: 'forget' | 'prune' | 'check';
  readonly repositoryId: string;
  readonly slot?: number;
  readonly attempt: number;
  readonly requestedAt: number;
  /** The volume of a forget. */
  readonly hostId?: string;
  readonly volumeName?: string;
  outcome?: { readonly ok: boolean; readonly code?: string; readonly at: number };
}

/** A volume on a host, one incarnation (a volume re-created under the same name starts afresh). */
export interface VolumeView {
  readonly key: string;
  readonly hostId: string;
  readonly volumeName: string;
  labels: Record<string, string>;
  readonly anonymous: boolean;
  readonly discoveredAt: number;
  /** Latest request of any backup of this incarnation. */
  lastRequestedAt?: number;
  /** Latest schedule slot a backup was requested for: the schedule's anchor. */
  lastSlot?: number;
  /** Latest snapshot written (completed or partially failed). */
  lastSuccess?: { readonly backupId: string; readonly at: number; readonly repositoryId: string };
  /** The last attempt that ended, successful or not. */
  lastOutcome?: BackupOutcome;
  /** Latest stop of a container that mounts this volume and asks for a backup (not one volback made). */
  lastContainerStopAt?: number;
  /** Slot of the latest drill requested: the drill schedule's anchor. */
  lastDrillSlot?: number;
  /** Latest forget requested for this volume. */
  lastForget?: MaintenanceOperation;
  /** `VolumeAtRisk` was published and no `VolumeProtectionRestored` since. */
  atRisk: boolean;
  /** The next due time last announced (`VolumeBackupScheduled`): announced again only when it changes. */
  announcedDueAt?: number;
  /** `VolumeBackupScheduled` events of this incarnation so far: part of the next one's id. */
  announcements?: number;
}

/** A container, as far as policies and triggers need it. */
export interface ContainerView {
  readonly key: string;
  readonly hostId: string;
  readonly containerId: string;
  name: string;
  labels: Record<string, string>;
  /** Names of the volumes it mounts. */
  volumeNames: string[];
  state: string;
}

/** A policy from `PolicyDefined`, in force until removed or replaced (`order`: its position in the log). */
export interface PolicyRecord extends ContractPolicyRecord {
  readonly scope: z.output<typeof policyScope>;
  /** For the `configuration` default: which volumes the defaults protect, as it was published. */
  readonly coverage?: PolicyCoverage;
}

/** A repository's maintenance as the scheduler follows it. */
export interface RepositoryView {
  readonly repositoryId: string;
  /** First snapshot the scheduler saw written: before it, there is nothing to prune or check. */
  firstBackupAt?: number;
  lastPrune?: MaintenanceOperation;
  lastCheck?: MaintenanceOperation;
}

/** A restore drill requested and not ended (its `RestoreDrillRequested`). */
export interface DrillInFlight {
  readonly hostId: string;
  readonly volumeName: string;
  readonly requestedAt: number;
  /** `schedule` for the scheduler's own drills (their command is sent again when lost), else the API's. */
  readonly trigger?: string;
  readonly repositoryId?: string;
}

/** Everything the scheduler's decisions read: a projection of the event log. */
export interface SchedulerState {
  readonly hosts: Map<string, HostView>;
  readonly volumes: Map<string, VolumeView>;
  readonly containers: Map<string, ContainerView>;
  readonly policies: Map<string, PolicyRecord>;
  /** Per policy id, the last rejection (`label\0value`), so a bad label is reported once. */
  readonly rejections: Map<string, string>;
  readonly inFlight: Map<string, InFlightBackup>;
  /** Restore drills requested and not ended, by drill id: they count against the backup limits. */
  readonly drillsInFlight: Map<string, DrillInFlight>;
  readonly repositories: Map<string, RepositoryView>;
  /** Maintenance operations without an outcome yet, by operation id. */
  readonly pendingOperations: Map<string, MaintenanceOperation>;
  /** Events applied so far. */
  eventCount: number;
}

/** An empty state: what the scheduler knows before it reads the log. */
export function initialState(): SchedulerState {
  return {
    hosts: new Map(),
    volumes: new Map(),
    containers: new Map(),
    policies: new Map(),
    rejections: new Map(),
    inFlight: new Map(),
    drillsInFlight: new Map(),
    repositories: new Map(),
    pendingOperations: new Map(),
    eventCount: 0,
  };
}

/** The map key of a volume or container on a host. */
export function hostScopedKey(hostId: string, name: string): string {
  return `${hostId}\u0000${name}`;
}

const ms = (iso: string) => Date.parse(iso);

function repository(state: SchedulerState, repositoryId: string): RepositoryView {
  let repo = state.repositories.get(repositoryId);
  if (!repo) {
    repo = { repositoryId };
    state.repositories.set(repositoryId, repo);
  }
  return repo;
}

type OutcomeFacts = Pick<BackupOutcome, 'phase' | 'at' | 'code' | 'reason'> & { attempt?: number };

function ended(
  state: SchedulerState,
  backupId: string,
  hostId: string,
  volumeName: string,
  outcome: OutcomeFacts,
): void {
  const flight = state.inFlight.get(backupId);
  state.inFlight.delete(backupId);
  const volume = state.volumes.get(hostScopedKey(hostId, volumeName));
  if (!volume) return;
  volume.lastOutcome = {
    backupId,
    firstAttemptId: flight?.firstAttemptId ?? backupId,
    attempt: flight?.attempt ?? outcome.attempt ?? 1,
    ...(flight?.maxAttempts !== undefined ? { maxAttempts: flight.maxAttempts } : {}),
    trigger: flight?.trigger ?? 'manual',
    ...(flight?.slot !== undefined ? { slot: flight.slot } : {}),
    phase: outcome.phase,
    at: outcome.at,
    ...(outcome.code ? { code: outcome.code } : {}),
    ...(outcome.reason ? { reason: outcome.reason } : {}),
    requestedByScheduler: flight !== undefined,
  };
}

/**
 * Applies one event to the state and returns it. The state is updated in place (a projection of a
 * long log must not copy its maps per event); nothing but the state and the event is read: no
 * clock, no I/O, so replaying the log always gives the same state.
 */
export function evolve(state: SchedulerState, logged: LoggedEvent): SchedulerState {
  const event = logged as SchedulerEvent;
  state.eventCount++;
  switch (event.type) {
    case 'io.volback.host.registered.v1': {
      const { hostId, registeredAt } = event.data;
      const host = state.hosts.get(hostId);
      if (host) host.lastSeenAt = Math.max(host.lastSeenAt, ms(registeredAt));
      else state.hosts.set(hostId, { hostId, lastSeenAt: ms(registeredAt) });
      break;
    }
    case 'io.volback.host.seen.v1': {
      const { hostId, seenAt, intervalSeconds } = event.data;
      const host = state.hosts.get(hostId) ?? { hostId, lastSeenAt: 0 };
      host.lastSeenAt = Math.max(host.lastSeenAt, ms(seenAt));
      host.intervalSeconds = intervalSeconds;
      state.hosts.set(hostId, host);
      break;
    }
    case 'io.volback.volume.discovered.v1': {
      const d = event.data;
      const key = hostScopedKey(d.hostId, d.volumeName);
      const known = state.volumes.get(key);
      if (known) {
        // Announced again without a removal in between (its configuration changed): the same
        // incarnation, so its history, schedule anchor and first backup stay as they are.
        known.labels = { ...d.labels };
        break;
      }
      state.volumes.set(key, {
        key,
        hostId: d.hostId,
        volumeName: d.volumeName,
        labels: { ...d.labels },
        anonymous: d.anonymous,
        discoveredAt: ms(d.discoveredAt),
        atRisk: false,
      });
      break;
    }
    case 'io.volback.volume.changed.v1': {
      const d = event.data;
      const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
      if (volume && d.change === 'labels' && d.labels) volume.labels = { ...d.labels };
      break;
    }
    case 'io.volback.volume.removed.v1':
      state.volumes.delete(hostScopedKey(event.data.hostId, event.data.volumeName));
      break;
    case 'io.volback.volume.at-risk.v1': {
      const volume = state.volumes.get(hostScopedKey(event.data.hostId, event.data.volumeName));
      if (volume) volume.atRisk = true;
      break;
    }
    case 'io.volback.volume.protection-restored.v1': {
      const volume = state.volumes.get(hostScopedKey(event.data.hostId, event.data.volumeName));
      if (volume) volume.atRisk = false;
      break;
    }
    case 'io.volback.volume.backup-scheduled.v1': {
      const volume = state.volumes.get(hostScopedKey(event.data.hostId, event.data.volumeName));
      if (volume) {
        volume.announcedDueAt = ms(event.data.nextDueAt);
        volume.announcements = (volume.announcements ?? 0) + 1;
      }
      break;
    }
    case 'io.volback.container.observed.v1': {
      const d = event.data;
      const key = hostScopedKey(d.hostId, d.containerId);
      state.containers.set(key, {
        key,
        hostId: d.hostId,
        containerId: d.containerId,
        name: d.name,
        labels: { ...d.labels },
        volumeNames: d.mounts.flatMap((m) => (m.type === 'volume' ? [m.volumeName] : [])),
        state: d.state,
      });
      break;
    }
    case 'io.volback.container.started.v1': {
      const container = state.containers.get(hostScopedKey(event.data.hostId, event.data.containerId));
      if (container) container.state = 'running';
      break;
    }
    case 'io.volback.container.stopped.v1': {
      const d = event.data;
      const container = state.containers.get(hostScopedKey(d.hostId, d.containerId));
      if (!container) break;
      container.state = 'exited';
      // A stop volback made itself (consistency `stop` for a backup or a restore) is no reason to back up.
      if (d.byVolback) break;
      const at = ms(d.stoppedAt);
      for (const volumeName of container.volumeNames) {
        const volume = state.volumes.get(hostScopedKey(d.hostId, volumeName));
        if (volume) volume.lastContainerStopAt = Math.max(volume.lastContainerStopAt ?? 0, at);
      }
      break;
    }
    case 'io.volback.container.removed.v1': {
      const d = event.data;
      const key = hostScopedKey(d.hostId, d.containerId);
      const container = state.containers.get(key);
      state.containers.delete(key);
      // A running container is reported stopped before removed; one that never ran changed nothing.
      if (!container || !['running', 'paused', 'restarting'].includes(container.state)) break;
      const at = ms(d.removedAt);
      for (const volumeName of container.volumeNames) {
        const volume = state.volumes.get(hostScopedKey(d.hostId, volumeName));
        if (volume) volume.lastContainerStopAt = Math.max(volume.lastContainerStopAt ?? 0, at);
      }
      break;
    }
    case 'io.volback.policy.defined.v1': {
      const d = event.data;
      state.policies.set(d.policyId, {
        policyId: d.policyId,
        scope: d.scope,
        origin: d.origin,
        policy: d.policy,
        order: state.eventCount,
        ...(d.coverage ? { coverage: d.coverage } : {}),
      });
      state.rejections.delete(d.policyId);
      break;
    }
    case 'io.volback.policy.removed.v1':
      state.policies.delete(event.data.policyId);
      state.rejections.delete(event.data.policyId);
      break;
    case 'io.volback.policy.rejected.v1':
      // Only label rejections are remembered (to report a bad label once); a refused API command
      // about a label policy must not make its label rejection look new again.
      if (event.data.label !== undefined) {
        state.rejections.set(event.data.policyId, rejectionKey(event.data.label, event.data.value));
      }
      break;
    case 'io.volback.backup.requested.v1': {
      const d = event.data;
      const requestedAt = ms(d.requestedAt);
      const slot = d.slot ? ms(d.slot) : undefined;
      state.inFlight.set(d.backupId, {
        backupId: d.backupId,
        hostId: d.hostId,
        volumeName: d.volumeName,
        trigger: d.trigger,
        ...(slot !== undefined ? { slot } : {}),
        attempt: d.attempt,
        ...(d.maxAttempts !== undefined ? { maxAttempts: d.maxAttempts } : {}),
        firstAttemptId: d.retryOf ?? d.backupId,
        repositoryId: d.repositoryId,
        requestedAt,
        ...(d.setId && d.setBackupId ? { set: { setId: d.setId, setBackupId: d.setBackupId } } : {}),
        phase: BackupPhase.Queued,
      });
      const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
      if (volume) {
        volume.lastRequestedAt = Math.max(volume.lastRequestedAt ?? 0, requestedAt);
        if (slot !== undefined) volume.lastSlot = Math.max(volume.lastSlot ?? 0, slot);
      }
      break;
    }
    case 'io.volback.backup.set-completed.v1':
    case 'io.volback.backup.set-partially-failed.v1':
    case 'io.volback.backup.set-failed.v1': {
      // Members the agent did not back up (it found the set otherwise) hold their volumes no longer.
      for (const [id, flight] of state.inFlight) {
        if (flight.set?.setBackupId === event.data.backupId) state.inFlight.delete(id);
      }
      break;
    }
    case 'io.volback.backup.started.v1': {
      const flight = state.inFlight.get(event.data.backupId);
      if (flight) flight.phase = BackupPhase.Running;
      break;
    }
    case 'io.volback.backup.completed.v1':
    case 'io.volback.backup.partially-failed.v1': {
      const d = event.data;
      const at = ms(d.completedAt);
      const phase =
        event.type === 'io.volback.backup.completed.v1' ? BackupPhase.Completed : BackupPhase.PartiallyFailed;
      ended(state, d.backupId, d.hostId, d.volumeName, { phase, at });
      const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
      if (volume && (volume.lastSuccess?.at ?? -Infinity) <= at) {
        volume.lastSuccess = { backupId: d.backupId, at, repositoryId: d.repositoryId };
      }
      const repo = repository(state, d.repositoryId);
      repo.firstBackupAt = Math.min(repo.firstBackupAt ?? Infinity, at);
      break;
    }
    case 'io.volback.backup.failed.v1': {
      const d = event.data;
      ended(state, d.backupId, d.hostId, d.volumeName, {
        phase: BackupPhase.Failed,
        at: ms(d.failedAt),
        code: d.code,
        reason: d.reason,
        attempt: d.attempt,
      });
      break;
    }
    case 'io.volback.backup.abandoned.v1': {
      const d = event.data;
      const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
      const last = volume?.lastOutcome;
      if (volume && last && last.firstAttemptId === d.backupId) {
        volume.lastOutcome = { ...last, abandoned: true };
      }
      break;
    }
    case 'io.volback.repository.maintenance-requested.v1': {
      const d = event.data;
      const op: MaintenanceOperation = {
        operationId: d.operationId,
        operation: d.operation,
        repositoryId: d.repositoryId,
        ...(d.slot ? { slot: ms(d.slot) } : {}),
        attempt: d.attempt,
        requestedAt: ms(d.requestedAt),
        ...(d.hostId ? { hostId: d.hostId } : {}),
        ...(d.volumeName ? { volumeName: d.volumeName } : {}),
      };
      state.pendingOperations.set(d.operationId, op);
      if (d.operation === 'forget' && d.hostId && d.volumeName) {
        const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
        if (volume) volume.lastForget = op;
      } else if (d.operation === 'prune') repository(state, d.repositoryId).lastPrune = op;
      else if (d.operation === 'check') repository(state, d.repositoryId).lastCheck = op;
      break;
    }
    case 'io.volback.drill.requested.v1': {
      const d = event.data;
      const requestedAt = ms(d.requestedAt);
      state.drillsInFlight.set(d.drillId, {
        hostId: d.hostId,
        volumeName: d.volumeName,
        requestedAt,
        trigger: d.trigger,
        ...(d.repositoryId ? { repositoryId: d.repositoryId } : {}),
      });
      const volume = state.volumes.get(hostScopedKey(d.hostId, d.volumeName));
      // A scheduled drill's slot is in its id's time; any drill moves the anchor to its request.
      if (volume) volume.lastDrillSlot = Math.max(volume.lastDrillSlot ?? -Infinity, requestedAt);
      break;
    }
    case 'io.volback.drill.passed.v1':
    case 'io.volback.drill.failed.v1':
      state.drillsInFlight.delete(event.data.drillId);
      break;
    case 'io.volback.repository.snapshots-forgotten.v1':
      settle(state, event.data.operationId, { ok: true, at: ms(event.data.forgottenAt) });
      break;
    case 'io.volback.repository.pruned.v1':
      settle(state, event.data.operationId, { ok: true, at: ms(event.data.prunedAt) });
      break;
    case 'io.volback.repository.checked.v1':
      settle(state, event.data.operationId, { ok: event.data.ok, at: ms(event.data.checkedAt) });
      break;
    case 'io.volback.repository.maintenance-failed.v1':
      settle(state, event.data.operationId, {
        ok: false,
        code: event.data.code,
        at: ms(event.data.failedAt),
      });
      break;
    default:
      state.eventCount--;
  }
  return state;
}

/**
 * Applies a heartbeat read from `VOLBACK_HEARTBEATS` (not the event log): the host's last-seen
 * time moves forward and its interval is the latest. Not counted in `eventCount` (which orders
 * policies by their place in the log), so reading heartbeats, in any interleaving with the log,
 * leaves the rest of the state as a replay of the log makes it.
 */
export function observeHeartbeat(
  state: SchedulerState,
  heartbeat: Pick<z.output<typeof HostSeen.schema>, 'hostId' | 'seenAt' | 'intervalSeconds'>,
): void {
  const host = state.hosts.get(heartbeat.hostId) ?? { hostId: heartbeat.hostId, lastSeenAt: 0 };
  const at = ms(heartbeat.seenAt);
  if (at >= host.lastSeenAt) host.intervalSeconds = heartbeat.intervalSeconds;
  host.lastSeenAt = Math.max(host.lastSeenAt, at);
  state.hosts.set(heartbeat.hostId, host);
}

/** Folds events into a fresh state. */
export function evolveAll(events: Iterable<LoggedEvent>, state = initialState()): SchedulerState {
  for (const event of events) evolve(state, event);
  return state;
}

function settle(
  state: SchedulerState,
  operationId: string,
  outcome: NonNullable<MaintenanceOperation['outcome']>,
): void {
  const op = state.pendingOperations.get(operationId);
  if (!op) return;
  state.pendingOperations.delete(operationId);
  // The op object is shared with the volume's or repository's `last…` field.
  op.outcome = outcome;
}

/** How a rejection is remembered, so the same bad value is reported once. */
export function rejectionKey(label: string | undefined, value: string | undefined): string {
  return `${label ?? ''}\u0000${value ?? ''}`;
}
