export * from './errors.ts';
export * from './backend/index.ts';
export * from './chunker/index.ts';
export * from './crypto/crypto.ts';
export { plainLength } from './crypto/seal-pool.ts';
export { formatGoTime, parseGoTime, sha256Hex, isId } from './format/ids.ts';
export { ABSENT, IdTable } from './format/id-table.ts';
export type { RepoConfig } from './format/config.ts';
export type { Snapshot, LockFile } from './format/snapshot.ts';
export {
  encodeTree,
  decodeTree,
  goModeFromPosix,
  posixPermissionsFromGo,
  GoMode,
  nameFromBytes,
  linkTargetFromBytes,
  nodeNameBytes,
  nodeNameKey,
  nodeLinkTarget,
  type TreeNode,
} from './format/tree.ts';
export type { BlobType, PackedBlob } from './format/pack.ts';
export {
  Repository,
  type LoadBlobsOptions,
  type RepositoryOptions,
  type SavedBlob,
  type SaveBlobOptions,
} from './repository.ts';
export { release, releaseAfterViews } from './format/release.ts';
export { STALE_LOCK_MS, type RepositoryLock } from './locks.ts';
export type { KeyInfo } from './keys.ts';
export {
  backup,
  snapshotDirectory,
  isExcluded,
  emptyWalkSummary,
  type BackupOptions,
  type BackupProgress,
  type BackupSummary,
  type SnapshotDirectoryOptions,
  type WalkSummary,
} from './operations/backup.ts';
export { snapshotTar, tarPathComponents, type SnapshotTarOptions } from './operations/snapshot-tar.ts';
export {
  repositorySink,
  saveTree,
  loadTreeFrom,
  loadBlobsFrom,
  loadAhead,
  type BlobSink,
  type BlobSource,
} from './operations/blob-ports.ts';
export {
  restore,
  restoreTree,
  resolveTreePath,
  applyNodeMetadata,
  assertSafeName,
  directoryBelow,
  type RestoreOptions,
  type RestoreTreeOptions,
  type RestoreSummary,
} from './operations/restore.ts';
export {
  planRestore,
  directoryProbe,
  archiveProbe,
  type TargetProbe,
  type TargetEntryKind,
  type RestorePlan,
  type RestorePlanEntries,
  type PlanRestoreOptions,
} from './operations/restore-plan.ts';
export { exactFileTimes } from './operations/file-times.ts';
export { listSnapshot, type ListedNode } from './operations/ls.ts';
export { dumpTar, dumpTree } from './operations/dump.ts';
export { check, type CheckOptions, type CheckReport } from './operations/check.ts';
export {
  forget,
  applyPolicy,
  groupSnapshots,
  matchesFilter,
  policyIsEmpty,
  type ForgetPolicy,
  type SnapshotFilter,
  type ForgetDecision,
} from './operations/forget.ts';
export { prune, type PruneOptions, type PruneSummary } from './operations/prune.ts';
