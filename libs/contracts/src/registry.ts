import { BackupSet, BackupVolume, RestoreDrill, RestoreSet, RestoreSnapshot } from './commands/agent.ts';
import { CheckRepository, ForgetSnapshots, ImportSnapshots, PruneRepository } from './commands/gateway.ts';
import { DefinePolicy, RemovePolicy, RequestBackup, SendTestNotification } from './commands/scheduler.ts';
import type { CommandDefinition, EventDefinition, MessageDefinition } from './define.ts';
import {
  BackupAbandoned,
  BackupCompleted,
  BackupFailed,
  BackupPartiallyFailed,
  BackupRequested,
  BackupStarted,
} from './events/backup.ts';
import {
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
} from './events/container.ts';
import { RestoreDrillFailed, RestoreDrillPassed, RestoreDrillRequested } from './events/drill.ts';
import { HostRegistered, HostSeen } from './events/host.ts';
import { MessageRejected } from './events/message.ts';
import { NotificationDelivered, NotificationFailed } from './events/notification.ts';
import { PolicyDefined, PolicyRejected, PolicyRemoved } from './events/policy.ts';
import {
  RepositoryChecked,
  RepositoryMaintenanceRequested,
  RepositoryMaintenanceFailed,
  RepositoryPruned,
  SnapshotsForgotten,
} from './events/repository.ts';
import {
  RepositoryImportCompleted,
  RepositoryImportFailed,
  RepositoryImportRequested,
  SnapshotImported,
} from './events/snapshot.ts';
import { RestoreCompleted, RestoreFailed, RestoreRequested, RestoreStarted } from './events/restore.ts';
import {
  BackupSetCompleted,
  BackupSetFailed,
  BackupSetPartiallyFailed,
  BackupSetStarted,
  RestoreSetCompleted,
  RestoreSetFailed,
  RestoreSetRequested,
} from './events/set.ts';
import {
  VolumeAtRisk,
  VolumeBackupScheduled,
  VolumeChanged,
  VolumeDiscovered,
  VolumeProtectionRestored,
  VolumeRemoved,
} from './events/volume.ts';

/** Every event volback emits. The public contract: extend, never change a published version. */
export const EVENTS = [
  HostRegistered,
  HostSeen,
  VolumeDiscovered,
  VolumeChanged,
  VolumeRemoved,
  VolumeAtRisk,
  VolumeProtectionRestored,
  VolumeBackupScheduled,
  ContainerObserved,
  ContainerStarted,
  ContainerStopped,
  ContainerRemoved,
  PolicyDefined,
  PolicyRemoved,
  PolicyRejected,
  BackupRequested,
  BackupStarted,
  BackupCompleted,
  BackupPartiallyFailed,
  BackupFailed,
  BackupAbandoned,
  BackupSetStarted,
  BackupSetCompleted,
  BackupSetPartiallyFailed,
  BackupSetFailed,
  RestoreRequested,
  RestoreStarted,
  RestoreCompleted,
  RestoreFailed,
  RestoreSetRequested,
  RestoreSetCompleted,
  RestoreSetFailed,
  RestoreDrillRequested,
  RestoreDrillPassed,
  RestoreDrillFailed,
  RepositoryMaintenanceRequested,
  SnapshotsForgotten,
  RepositoryPruned,
  RepositoryChecked,
  RepositoryMaintenanceFailed,
  RepositoryImportRequested,
  SnapshotImported,
  RepositoryImportCompleted,
  RepositoryImportFailed,
  MessageRejected,
  NotificationDelivered,
  NotificationFailed,
] as const satisfies readonly EventDefinition[];

/** Every command volback sends. */
export const COMMANDS = [
  BackupVolume,
  RestoreSnapshot,
  BackupSet,
  RestoreSet,
  RestoreDrill,
  RequestBackup,
  DefinePolicy,
  RemovePolicy,
  SendTestNotification,
  ForgetSnapshots,
  PruneRepository,
  CheckRepository,
  ImportSnapshots,
] as const satisfies readonly CommandDefinition[];

/** Events and commands together. */
export const MESSAGES: readonly MessageDefinition[] = [...EVENTS, ...COMMANDS];

const byType = new Map<string, MessageDefinition>(MESSAGES.map((def) => [def.type, def]));
if (byType.size !== MESSAGES.length) throw new Error('two message definitions share a type');

/** The definition of a `type` attribute, or undefined for an unknown type or version. */
export function findDefinition(type: string): MessageDefinition | undefined {
  return byType.get(type);
}
