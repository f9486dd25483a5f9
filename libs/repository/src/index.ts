export * from './errors.ts';
export * from './backend/index.ts';
export * from './chunker/index.ts';
export * from './crypto/crypto.ts';
export { formatGoTime, parseGoTime, sha256Hex, isId } from './format/ids.ts';
export type { RepoConfig } from './format/config.ts';
export type { Snapshot, LockFile } from './format/snapshot.ts';
export {
  encodeTree,
  decodeTree,
  goModeFromPosix,
  posixPermissionsFromGo,
  GoMode,
  type TreeNode,
} from './format/tree.ts';
export type { BlobType, PackedBlob } from './format/pack.ts';
export {
  Repository,
  STALE_LOCK_MS,
  type RepositoryOptions,
  type RepositoryLock,
  type SavedBlob,
} from './repository.ts';
export { backup, type BackupOptions, type BackupProgress, type BackupSummary } from './operations/backup.ts';
export { restore, assertSafeName, type RestoreOptions, type RestoreSummary } from './operations/restore.ts';
export { listSnapshot, type ListedNode } from './operations/ls.ts';
export { dumpTar } from './operations/dump.ts';
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
