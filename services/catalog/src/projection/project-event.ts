import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import type {
  BackupCompleted,
  BackupFailed,
  BackupPartiallyFailed,
  BackupRequested,
  BackupSetCompleted,
  BackupSetFailed,
  BackupSetPartiallyFailed,
  BackupSetStarted,
  BackupStarted,
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
  EVENTS,
  EventDefinition,
  HostRegistered,
  HostSeen,
  PolicyDefined,
  PolicyRejected,
  PolicyRemoved,
  RepositoryChecked,
  RepositoryImportCompleted,
  RepositoryImportFailed,
  RepositoryImportRequested,
  RepositoryMaintenanceFailed,
  RepositoryPruned,
  RestoreCompleted,
  RestoreFailed,
  RestoreRequested,
  RestoreSetCompleted,
  RestoreDrillFailed,
  RestoreDrillPassed,
  RestoreDrillRequested,
  RestoreSetFailed,
  RestoreSetRequested,
  RestoreStarted,
  SnapshotImported,
  SnapshotsForgotten,
  VolumeAtRisk,
  VolumeBackupScheduled,
  VolumeChanged,
  VolumeDiscovered,
  VolumeProtectionRestored,
  VolumeRemoved,
} from '@volback/contracts';
import { BackupPhase, RestorePhase } from '@volback/contracts';
import type { z } from 'zod';
import type { CatalogDatabase } from '../adapters/catalog-database.ts';
import { offlineAfter } from '../domain/status.ts';

type DataOf<D> = D extends EventDefinition<string, string, infer S> ? z.output<S> : never;
type EventName = (typeof EVENTS)[number]['name'];
/** The data of the event named `N`. */
type DataNamed<N extends EventName> = DataOf<Extract<(typeof EVENTS)[number], { name: N }>>;

/** ISO 8601 UTC with milliseconds: text order is time order. */
const iso = (time: string): string => new Date(time).toISOString();
const isoOrNull = (time: string | undefined): string | null => (time ? iso(time) : null);
const json = (value: unknown): string => JSON.stringify(value);
const bool = (value: boolean): number => (value ? 1 : 0);

/**
 * Prepared statements per connection, by SQL text: preparing cost more than running (a third of
 * the projection's time at fleet scale). SQLite prepares a statement again by itself when the
 * schema changed under it (a reset of the read model).
 */
const statements = new WeakMap<DatabaseSync, Map<string, StatementSync>>();

function statement(db: DatabaseSync, sql: string): StatementSync {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let prepared = cache.get(sql);
  if (!prepared) cache.set(sql, (prepared = db.prepare(sql)));
  return prepared;
}

function run(db: DatabaseSync, sql: string, params: Record<string, SQLInputValue>): void {
  statement(db, sql).run(params);
}

/** Makes sure a volume row exists (events about backups may name a volume before discovery). */
function ensureVolume(db: DatabaseSync, hostId: string, volumeName: string): void {
  run(db, 'INSERT OR IGNORE INTO volumes (host_id, volume_name) VALUES (:h, :v)', {
    h: hostId,
    v: volumeName,
  });
}

function backupOutcomeOnVolume(
  db: DatabaseSync,
  d: { hostId: string; volumeName: string; backupId: string },
  phase: BackupPhase,
  at: string,
  snapshotId: string | null,
): void {
  ensureVolume(db, d.hostId, d.volumeName);
  // A later backup's outcome wins; the same event applied again changes nothing.
  run(
    db,
    `UPDATE volumes SET last_backup_id = :b, last_backup_phase = :p, last_backup_at = :at
     WHERE host_id = :h AND volume_name = :v AND (last_backup_at IS NULL OR last_backup_at <= :at)`,
    { h: d.hostId, v: d.volumeName, b: d.backupId, p: phase, at },
  );
  if (snapshotId) {
    run(
      db,
      `UPDATE volumes SET last_success_at = :at, last_snapshot_id = :s
       WHERE host_id = :h AND volume_name = :v AND (last_success_at IS NULL OR last_success_at <= :at)`,
      { h: d.hostId, v: d.volumeName, at, s: snapshotId },
    );
  }
}

function upsertBackup(
  db: DatabaseSync,
  d: { backupId: string; hostId: string; volumeName: string },
  at: string,
): void {
  run(
    db,
    `INSERT OR IGNORE INTO backups (backup_id, host_id, volume_name, phase, created_at)
     VALUES (:b, :h, :v, :p, :at)`,
    { b: d.backupId, h: d.hostId, v: d.volumeName, p: BackupPhase.Queued, at },
  );
}

function snapshotFromBackup(
  db: DatabaseSync,
  d: DataOf<typeof BackupCompleted> | DataOf<typeof BackupPartiallyFailed>,
  partial: boolean,
): void {
  run(
    db,
    `INSERT INTO snapshots (snapshot_id, repository_id, host_id, volume_name, backup_id, time, partial, stats)
     VALUES (:s, :r, :h, :v, :b, :t, :p, :st)
     ON CONFLICT (snapshot_id) DO UPDATE SET partial = excluded.partial, stats = excluded.stats,
       backup_id = excluded.backup_id`,
    {
      s: d.snapshotId,
      r: d.repositoryId,
      h: d.hostId,
      v: d.volumeName,
      b: d.backupId,
      t: iso(d.completedAt),
      p: bool(partial),
      st: json(d.stats),
    },
  );
  // The last snapshot's content size is the volume's size (agents do not measure it otherwise).
  if (d.stats.totalBytes !== undefined) {
    run(db, 'UPDATE volumes SET size_bytes = :s WHERE host_id = :h AND volume_name = :v', {
      h: d.hostId,
      v: d.volumeName,
      s: d.stats.totalBytes,
    });
  }
}

function upsertRestore(
  db: DatabaseSync,
  d: { restoreId: string; hostId: string; snapshotId: string },
  target: unknown,
  at: string,
): void {
  run(
    db,
    `INSERT OR IGNORE INTO restores (restore_id, host_id, snapshot_id, target, phase, created_at)
     VALUES (:r, :h, :s, :t, :p, :at)`,
    { r: d.restoreId, h: d.hostId, s: d.snapshotId, t: json(target ?? null), p: RestorePhase.Queued, at },
  );
}

/** The outcome of a maintenance operation (its `…Requested` event may have opened the row). */
function repositoryOperation(
  db: DatabaseSync,
  row: {
    operationId: string;
    repositoryId: string;
    operation: string;
    ok: boolean;
    finishedAt: string;
    summary: unknown;
    hostId?: string | undefined;
    volumeName?: string | undefined;
    errorCode?: string;
    reason?: string;
  },
): void {
  const at = iso(row.finishedAt);
  run(
    db,
    `INSERT INTO repository_operations
       (operation_id, repository_id, operation, status, created_at, finished_at, host_id, volume_name, summary, error_code, error_reason)
     VALUES (:id, :r, :op, :st, :at, :at, :h, :v, :s, :c, :e)
     ON CONFLICT (operation_id, repository_id, operation) DO UPDATE SET status = excluded.status,
       finished_at = excluded.finished_at, host_id = COALESCE(excluded.host_id, host_id),
       volume_name = COALESCE(excluded.volume_name, volume_name), summary = excluded.summary,
       error_code = excluded.error_code, error_reason = excluded.error_reason`,
    {
      id: row.operationId,
      r: row.repositoryId,
      op: row.operation,
      st: row.ok ? 'Succeeded' : 'Failed',
      at,
      h: row.hostId ?? null,
      v: row.volumeName ?? null,
      s: json(row.summary),
      c: row.errorCode ?? null,
      e: row.reason ?? null,
    },
  );
}

/** Opens a maintenance operation's row (its outcome event may have come first). */
function operationRequested(
  db: DatabaseSync,
  d: { operationId: string; repositoryId: string; requestedAt: string; hostId?: string; volumeName?: string },
  operation: string,
): void {
  const at = iso(d.requestedAt);
  run(
    db,
    `INSERT INTO repository_operations
       (operation_id, repository_id, operation, status, created_at, requested_at, host_id, volume_name)
     VALUES (:id, :r, :op, 'Requested', :at, :at, :h, :v)
     ON CONFLICT (operation_id, repository_id, operation) DO UPDATE SET requested_at = excluded.requested_at,
       created_at = excluded.created_at`,
    {
      id: d.operationId,
      r: d.repositoryId,
      op: operation,
      at,
      h: d.hostId ?? null,
      v: d.volumeName ?? null,
    },
  );
}

/**
 * A snapshot known only from the repository (a re-import): its host and volume rows are made
 * when missing (no registration, no discovery: known from the repository alone), and its row has
 * no backup (`backup_id` empty). A snapshot the catalog already has stays as it is.
 */
function importedSnapshot(db: DatabaseSync, d: DataOf<typeof SnapshotImported>): void {
  run(db, 'INSERT OR IGNORE INTO hosts (host_id, name) VALUES (:h, :n)', { h: d.hostId, n: d.hostName });
  ensureVolume(db, d.hostId, d.volumeName);
  const time = iso(d.time);
  run(
    db,
    `INSERT OR IGNORE INTO snapshots (snapshot_id, repository_id, host_id, volume_name, backup_id, time, partial, stats)
     VALUES (:s, :r, :h, :v, '', :t, 0, :st)`,
    {
      s: d.snapshotId,
      r: d.repositoryId,
      h: d.hostId,
      v: d.volumeName,
      t: time,
      st: json(d.stats ?? null),
    },
  );
  run(
    db,
    `UPDATE volumes SET last_success_at = :at, last_snapshot_id = :s
     WHERE host_id = :h AND volume_name = :v AND (last_success_at IS NULL OR last_success_at < :at)`,
    { h: d.hostId, v: d.volumeName, at: time, s: d.snapshotId },
  );
}

/**
 * How each event changes the read model. Every handler is idempotent: applying an event a
 * second time (a replay past the checkpoint, a re-published fact) leaves the rows as they are.
 */
/** Opens a set backup's row (an outcome may arrive first after a replay cut short: it opens it too). */
function ensureSetBackup(db: DatabaseSync, d: { backupId: string; hostId: string; setId: string }): void {
  run(
    db,
    `INSERT OR IGNORE INTO set_backups (backup_id, host_id, set_id, phase) VALUES (:b, :h, :s, 'Running')`,
    { b: d.backupId, h: d.hostId, s: d.setId },
  );
}

function setBackupOutcome(
  db: DatabaseSync,
  d: { backupId: string; hostId: string; setId: string },
  values: {
    phase: string;
    members?: unknown;
    failed?: unknown;
    quiesced?: unknown;
    at: string;
    code?: string;
    reason?: string;
  },
): void {
  ensureSetBackup(db, d);
  run(
    db,
    `UPDATE set_backups SET phase = :p, members = COALESCE(:m, members), failed = COALESCE(:f, failed),
       quiesced = COALESCE(:q, quiesced), finished_at = :at, error_code = :c, error_reason = :r
     WHERE backup_id = :b`,
    {
      b: d.backupId,
      p: values.phase,
      m: values.members === undefined ? null : json(values.members),
      f: values.failed === undefined ? null : json(values.failed),
      q: values.quiesced === undefined ? null : json(values.quiesced),
      at: iso(values.at),
      c: values.code ?? null,
      r: values.reason ?? null,
    },
  );
}

/** Makes sure a drill's row exists (its outcome may be read before its request). */
function ensureDrill(
  db: DatabaseSync,
  d: { drillId: string; hostId: string; volumeName: string },
  at: string,
): void {
  run(
    db,
    `INSERT OR IGNORE INTO drills (drill_id, host_id, volume_name, phase, at) VALUES (:d, :h, :v, 'Requested', :at)`,
    { d: d.drillId, h: d.hostId, v: d.volumeName, at },
  );
}

function ensureSetRestore(
  db: DatabaseSync,
  d: { restoreId: string; hostId: string; setId: string; setBackupId: string },
): void {
  run(
    db,
    `INSERT OR IGNORE INTO set_restores (restore_id, host_id, set_id, set_backup_id, phase)
     VALUES (:r, :h, :s, :b, 'Queued')`,
    { r: d.restoreId, h: d.hostId, s: d.setId, b: d.setBackupId },
  );
}

const HANDLERS: { [N in EventName]: (db: DatabaseSync, data: never) => void } = {
  BackupSetStarted(db, d: DataOf<typeof BackupSetStarted>) {
    ensureSetBackup(db, d);
    run(db, 'UPDATE set_backups SET volumes = :v, quiesced = :q, started_at = :at WHERE backup_id = :b', {
      b: d.backupId,
      v: json(d.volumes),
      q: json(d.quiescedContainers),
      at: iso(d.startedAt),
    });
  },
  BackupSetCompleted(db, d: DataOf<typeof BackupSetCompleted>) {
    setBackupOutcome(db, d, {
      phase: 'Completed',
      members: d.members,
      quiesced: d.quiescedContainers,
      at: d.completedAt,
    });
  },
  BackupSetPartiallyFailed(db, d: DataOf<typeof BackupSetPartiallyFailed>) {
    setBackupOutcome(db, d, {
      phase: 'PartiallyFailed',
      members: d.members,
      failed: d.failed,
      quiesced: d.quiescedContainers,
      at: d.completedAt,
    });
  },
  BackupSetFailed(db, d: DataOf<typeof BackupSetFailed>) {
    setBackupOutcome(db, d, { phase: 'Failed', at: d.failedAt, code: d.code, reason: d.reason });
  },
  RestoreSetRequested(db, d: DataOf<typeof RestoreSetRequested>) {
    ensureSetRestore(db, d);
    run(
      db,
      'UPDATE set_restores SET dry_run = :dry, members = :m, requested_at = :at WHERE restore_id = :r',
      { r: d.restoreId, dry: bool(d.dryRun), m: json(d.members), at: iso(d.requestedAt) },
    );
  },
  RestoreSetCompleted(db, d: DataOf<typeof RestoreSetCompleted>) {
    ensureSetRestore(db, d);
    run(
      db,
      `UPDATE set_restores SET phase = 'Completed', dry_run = :dry, members = :m, containers = :c, finished_at = :at
       WHERE restore_id = :r`,
      {
        r: d.restoreId,
        dry: bool(d.dryRun),
        m: json(d.members),
        c: json(d.containers),
        at: iso(d.completedAt),
      },
    );
  },
  RestoreSetFailed(db, d: DataOf<typeof RestoreSetFailed>) {
    ensureSetRestore(db, d);
    run(
      db,
      `UPDATE set_restores SET phase = 'Failed', containers = :c, finished_at = :at, error_code = :code,
         error_reason = :reason, failed_volume = :v
       WHERE restore_id = :r`,
      {
        r: d.restoreId,
        c: json(d.containers),
        at: iso(d.failedAt),
        code: d.code,
        reason: d.reason,
        v: d.failedVolume ?? null,
      },
    );
  },
  RestoreDrillRequested(db, d: DataOf<typeof RestoreDrillRequested>) {
    const at = iso(d.requestedAt);
    ensureDrill(db, d, at);
    run(db, 'UPDATE drills SET trigger = :t, requested_by = :by, requested_at = :at WHERE drill_id = :d', {
      d: d.drillId,
      t: d.trigger,
      by: d.requestedBy ?? null,
      at,
    });
  },
  RestoreDrillPassed(db, d: DataOf<typeof RestoreDrillPassed>) {
    const at = iso(d.completedAt);
    ensureDrill(db, d, at);
    run(
      db,
      `UPDATE drills SET phase = 'Passed', snapshot_id = :s, scratch_volume = :sv, files = :f, bytes = :b,
         containers = :c, health = :hc, restore_ms = :rm, verify_ms = :vm, health_ms = :hm, rto_ms = :rto,
         duration_ms = :rto, finished_at = :at, at = :at WHERE drill_id = :d`,
      {
        d: d.drillId,
        s: d.snapshotId,
        sv: d.scratchVolume,
        f: d.files,
        b: d.bytes,
        c: json(d.containers),
        hc: d.health ?? null,
        rm: d.restoreMs,
        vm: d.verifyMs,
        hm: d.healthMs,
        rto: d.rtoMs,
        at,
      },
    );
  },
  RestoreDrillFailed(db, d: DataOf<typeof RestoreDrillFailed>) {
    const at = iso(d.failedAt);
    ensureDrill(db, d, at);
    run(
      db,
      `UPDATE drills SET phase = 'Failed', snapshot_id = :s, stage = :st, error_code = :c, error_reason = :r,
         mismatches = :m, mismatch_count = :mc, left_behind = :lb, duration_ms = :dm, finished_at = :at, at = :at
       WHERE drill_id = :d`,
      {
        d: d.drillId,
        s: d.snapshotId ?? null,
        st: d.stage,
        c: d.code,
        r: d.reason,
        m: json(d.mismatches),
        mc: d.mismatchCount,
        lb: json(d.leftBehind),
        dm: d.durationMs,
        at,
      },
    );
  },
  HostRegistered(db, d: DataOf<typeof HostRegistered>) {
    run(
      db,
      `INSERT INTO hosts (host_id, name, engine, agent_version, registered_at)
       VALUES (:h, :n, :e, :a, :at)
       ON CONFLICT (host_id) DO UPDATE SET name = excluded.name, engine = excluded.engine,
         agent_version = excluded.agent_version, registered_at = excluded.registered_at`,
      { h: d.hostId, n: d.name, e: json(d.engine), a: d.agentVersion, at: iso(d.registeredAt) },
    );
  },
  HostSeen(db, d: DataOf<typeof HostSeen>) {
    const seen = new Date(d.seenAt);
    run(
      db,
      `INSERT INTO hosts (host_id, name, last_seen_at, offline_after, heartbeat_seconds, containers, volumes, backups_running)
       VALUES (:h, :h, :at, :off, :i, :c, :v, :b)
       ON CONFLICT (host_id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
         offline_after = excluded.offline_after, heartbeat_seconds = excluded.heartbeat_seconds,
         containers = excluded.containers, volumes = excluded.volumes, backups_running = excluded.backups_running
       WHERE hosts.last_seen_at IS NULL OR hosts.last_seen_at <= excluded.last_seen_at`,
      {
        h: d.hostId,
        at: seen.toISOString(),
        off: offlineAfter(seen, d.intervalSeconds).toISOString(),
        i: d.intervalSeconds,
        c: d.containers,
        v: d.volumes,
        b: d.backupsRunning,
      },
    );
  },
  VolumeDiscovered(db, d: DataOf<typeof VolumeDiscovered>) {
    run(
      db,
      `INSERT INTO volumes (host_id, volume_name, driver, driver_options, labels, scope, anonymous, mountpoint, created_at, discovered_at, removed_at)
       VALUES (:h, :v, :d, :o, :l, :s, :a, :m, :c, :at, NULL)
       ON CONFLICT (host_id, volume_name) DO UPDATE SET driver = excluded.driver,
         driver_options = excluded.driver_options, labels = excluded.labels, scope = excluded.scope,
         anonymous = excluded.anonymous, mountpoint = excluded.mountpoint, created_at = excluded.created_at,
         discovered_at = excluded.discovered_at, removed_at = NULL`,
      {
        h: d.hostId,
        v: d.volumeName,
        d: d.driver,
        o: json(d.driverOptions),
        l: json(d.labels),
        s: d.scope,
        a: bool(d.anonymous),
        m: d.mountpoint ?? null,
        c: isoOrNull(d.createdAt),
        at: iso(d.discoveredAt),
      },
    );
  },
  VolumeChanged(db, d: DataOf<typeof VolumeChanged>) {
    ensureVolume(db, d.hostId, d.volumeName);
    if (d.labels) {
      run(db, 'UPDATE volumes SET labels = :l WHERE host_id = :h AND volume_name = :v', {
        h: d.hostId,
        v: d.volumeName,
        l: json(d.labels),
      });
    }
    if (d.sizeBytes !== undefined) {
      run(db, 'UPDATE volumes SET size_bytes = :s WHERE host_id = :h AND volume_name = :v', {
        h: d.hostId,
        v: d.volumeName,
        s: d.sizeBytes,
      });
    }
  },
  VolumeRemoved(db, d: DataOf<typeof VolumeRemoved>) {
    ensureVolume(db, d.hostId, d.volumeName);
    // A removed volume has no next backup; a re-created one is announced again by the scheduler.
    run(
      db,
      'UPDATE volumes SET removed_at = :at, next_due_at = NULL WHERE host_id = :h AND volume_name = :v',
      { h: d.hostId, v: d.volumeName, at: iso(d.removedAt) },
    );
  },
  VolumeAtRisk(db, d: DataOf<typeof VolumeAtRisk>) {
    ensureVolume(db, d.hostId, d.volumeName);
    run(
      db,
      `UPDATE volumes SET at_risk = 1, at_risk_reason = :r, at_risk_since = COALESCE(at_risk_since, :at), rpo_seconds = :rpo
       WHERE host_id = :h AND volume_name = :v`,
      { h: d.hostId, v: d.volumeName, r: d.reason, at: iso(d.detectedAt), rpo: d.rpoSeconds },
    );
  },
  VolumeProtectionRestored(db, d: DataOf<typeof VolumeProtectionRestored>) {
    ensureVolume(db, d.hostId, d.volumeName);
    run(
      db,
      `UPDATE volumes SET at_risk = 0, at_risk_reason = NULL, at_risk_since = NULL,
         last_success_at = CASE WHEN last_success_at IS NULL OR last_success_at < :s THEN :s ELSE last_success_at END
       WHERE host_id = :h AND volume_name = :v`,
      { h: d.hostId, v: d.volumeName, s: iso(d.lastSuccessAt) },
    );
  },
  VolumeBackupScheduled(db, d: DataOf<typeof VolumeBackupScheduled>) {
    ensureVolume(db, d.hostId, d.volumeName);
    run(db, 'UPDATE volumes SET next_due_at = :at WHERE host_id = :h AND volume_name = :v', {
      h: d.hostId,
      v: d.volumeName,
      at: iso(d.nextDueAt),
    });
  },
  ContainerObserved(db, d: DataOf<typeof ContainerObserved>) {
    run(
      db,
      `INSERT INTO containers (host_id, container_id, name, image, image_digest, image_id, labels, state,
         compose_project, compose_service, created_at, observed_at)
       VALUES (:h, :c, :n, :i, :dg, :ii, :l, :s, :cp, :cs, :ca, :at)
       ON CONFLICT (host_id, container_id) DO UPDATE SET name = excluded.name, image = excluded.image,
         image_digest = excluded.image_digest, image_id = excluded.image_id, labels = excluded.labels,
         state = excluded.state, compose_project = excluded.compose_project,
         compose_service = excluded.compose_service, created_at = excluded.created_at,
         observed_at = excluded.observed_at`,
      {
        h: d.hostId,
        c: d.containerId,
        n: d.name,
        i: d.image,
        dg: d.imageDigest ?? null,
        ii: d.imageId ?? null,
        l: json(d.labels),
        s: d.state,
        cp: d.compose?.project ?? null,
        cs: d.compose?.service ?? null,
        ca: isoOrNull(d.createdAt),
        at: iso(d.observedAt),
      },
    );
    run(db, 'DELETE FROM container_mounts WHERE host_id = :h AND container_id = :c', {
      h: d.hostId,
      c: d.containerId,
    });
    d.mounts.forEach((m, position) => {
      run(
        db,
        `INSERT INTO container_mounts (host_id, container_id, position, type, volume_name, source, destination, read_only)
         VALUES (:h, :c, :p, :t, :v, :s, :d, :r)`,
        {
          h: d.hostId,
          c: d.containerId,
          p: position,
          t: m.type,
          v: m.type === 'volume' ? m.volumeName : null,
          s: m.type === 'bind' ? m.source : null,
          d: m.destination,
          r: bool(m.type === 'tmpfs' ? false : m.readOnly),
        },
      );
    });
  },
  ContainerStarted(db, d: DataOf<typeof ContainerStarted>) {
    run(
      db,
      `INSERT INTO containers (host_id, container_id, name, state, started_at) VALUES (:h, :c, :n, 'running', :at)
       ON CONFLICT (host_id, container_id) DO UPDATE SET name = excluded.name, state = 'running',
         started_at = excluded.started_at`,
      { h: d.hostId, c: d.containerId, n: d.name, at: iso(d.startedAt) },
    );
  },
  ContainerStopped(db, d: DataOf<typeof ContainerStopped>) {
    run(
      db,
      `INSERT INTO containers (host_id, container_id, name, state, stopped_at, exit_code) VALUES (:h, :c, :n, 'exited', :at, :x)
       ON CONFLICT (host_id, container_id) DO UPDATE SET name = excluded.name, state = 'exited',
         stopped_at = excluded.stopped_at, exit_code = excluded.exit_code`,
      { h: d.hostId, c: d.containerId, n: d.name, at: iso(d.stoppedAt), x: d.exitCode ?? null },
    );
  },
  ContainerRemoved(db, d: DataOf<typeof ContainerRemoved>) {
    const key = { h: d.hostId, c: d.containerId };
    run(db, 'DELETE FROM containers WHERE host_id = :h AND container_id = :c', key);
    run(db, 'DELETE FROM container_mounts WHERE host_id = :h AND container_id = :c', key);
  },
  PolicyDefined(db, d: DataOf<typeof PolicyDefined>) {
    run(
      db,
      `INSERT OR REPLACE INTO policies
         (policy_id, scope_kind, host_id, volume_name, origin, spec, coverage, defined_order, defined_by, defined_at)
       VALUES (:p, :k, :h, :v, :o, :s, :c, (SELECT COALESCE(MAX(defined_order), 0) + 1 FROM policies), :b, :at)`,
      {
        p: d.policyId,
        k: d.scope.kind,
        h: d.scope.kind === 'volume' ? d.scope.hostId : null,
        v: d.scope.kind === 'volume' ? d.scope.volumeName : null,
        o: d.origin,
        s: json(d.policy),
        c: d.coverage ? json(d.coverage) : null,
        b: d.definedBy ?? null,
        at: iso(d.definedAt),
      },
    );
  },
  PolicyRemoved(db, d: DataOf<typeof PolicyRemoved>) {
    run(db, 'DELETE FROM policies WHERE policy_id = :p', { p: d.policyId });
  },
  PolicyRejected(db, d: DataOf<typeof PolicyRejected>) {
    run(
      db,
      `INSERT OR REPLACE INTO policy_rejections (policy_id, rejected_at, host_id, volume_name, label, reason)
       VALUES (:p, :at, :h, :v, :l, :r)`,
      {
        p: d.policyId,
        at: iso(d.rejectedAt),
        h: d.hostId ?? null,
        v: d.volumeName ?? null,
        l: d.label ?? null,
        r: d.reason,
      },
    );
  },
  BackupRequested(db, d: DataOf<typeof BackupRequested>) {
    const at = iso(d.requestedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET trigger = :t, attempt = :a, repository_id = :r, requested_by = :by, requested_at = :at,
         created_at = :at, retry_of = :ro WHERE backup_id = :b`,
      {
        b: d.backupId,
        t: d.trigger,
        a: d.attempt,
        r: d.repositoryId,
        by: d.requestedBy ?? null,
        at,
        ro: (d as { retryOf?: string }).retryOf ?? null,
      },
    );
    ensureVolume(db, d.hostId, d.volumeName);
  },
  BackupStarted(db, d: DataOf<typeof BackupStarted>) {
    const at = iso(d.startedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET phase = :p, started_at = :at, method = :m, parent_snapshot_id = :ps,
         quiesced_containers = :q, finished_at = NULL, error_code = NULL, error_reason = NULL, will_retry = NULL
       WHERE backup_id = :b`,
      {
        b: d.backupId,
        p: BackupPhase.Running,
        at,
        m: d.method,
        ps: d.parentSnapshotId ?? null,
        q: json(d.quiescedContainers),
      },
    );
    backupOutcomeOnVolume(db, d, BackupPhase.Running, at, null);
  },
  BackupCompleted(db, d: DataOf<typeof BackupCompleted>) {
    const at = iso(d.completedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET phase = :p, finished_at = :at, snapshot_id = :s, repository_id = :r, stats = :st
       WHERE backup_id = :b`,
      { b: d.backupId, p: BackupPhase.Completed, at, s: d.snapshotId, r: d.repositoryId, st: json(d.stats) },
    );
    snapshotFromBackup(db, d, false);
    backupOutcomeOnVolume(db, d, BackupPhase.Completed, at, d.snapshotId);
  },
  BackupPartiallyFailed(db, d: DataOf<typeof BackupPartiallyFailed>) {
    const at = iso(d.completedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET phase = :p, finished_at = :at, snapshot_id = :s, repository_id = :r, stats = :st,
         unreadable = :u, unreadable_count = :uc WHERE backup_id = :b`,
      {
        b: d.backupId,
        p: BackupPhase.PartiallyFailed,
        at,
        s: d.snapshotId,
        r: d.repositoryId,
        st: json(d.stats),
        u: json(d.unreadable),
        uc: d.unreadableCount,
      },
    );
    snapshotFromBackup(db, d, true);
    backupOutcomeOnVolume(db, d, BackupPhase.PartiallyFailed, at, d.snapshotId);
  },
  BackupFailed(db, d: DataOf<typeof BackupFailed>) {
    const at = iso(d.failedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET phase = :p, finished_at = :at, attempt = :a, error_code = :c, error_reason = :r,
         will_retry = :w WHERE backup_id = :b`,
      {
        b: d.backupId,
        p: BackupPhase.Failed,
        at,
        a: d.attempt,
        c: d.code,
        r: d.reason,
        w: bool(d.willRetry),
      },
    );
    backupOutcomeOnVolume(db, d, BackupPhase.Failed, at, null);
  },
  BackupAbandoned(db, d: DataNamed<'BackupAbandoned'>) {
    const at = iso(d.abandonedAt);
    upsertBackup(db, d, at);
    run(
      db,
      `UPDATE backups SET abandoned_at = :at, attempts = :n, last_attempt_id = :l,
         error_code = COALESCE(error_code, :c), error_reason = COALESCE(error_reason, :r), will_retry = 0
       WHERE backup_id = :b`,
      { b: d.backupId, at, n: d.attempts, l: d.lastBackupId, c: d.code, r: d.reason },
    );
  },
  RestoreRequested(db, d: DataOf<typeof RestoreRequested>) {
    const at = iso(d.requestedAt);
    upsertRestore(db, d, d.target, at);
    run(
      db,
      `UPDATE restores SET repository_id = :r, target = :t, path = :p, target_path = :tp, dry_run = :dry,
         requested_by = :by, requested_at = :at, created_at = :at WHERE restore_id = :id`,
      {
        id: d.restoreId,
        r: d.repositoryId,
        t: json(d.target),
        p: d.path ?? null,
        tp: d.targetPath ?? null,
        dry: bool(d.dryRun),
        by: d.requestedBy ?? null,
        at,
      },
    );
  },
  RestoreStarted(db, d: DataOf<typeof RestoreStarted>) {
    const at = iso(d.startedAt);
    upsertRestore(db, d, d.target, at);
    run(
      db,
      `UPDATE restores SET phase = :p, started_at = :at, target = :t, finished_at = NULL, error_code = NULL,
         error_reason = NULL WHERE restore_id = :id`,
      { id: d.restoreId, p: RestorePhase.Running, at, t: json(d.target) },
    );
  },
  RestoreCompleted(db, d: DataOf<typeof RestoreCompleted>) {
    const at = iso(d.completedAt);
    upsertRestore(db, d, d.target, at);
    run(
      db,
      `UPDATE restores SET phase = :p, finished_at = :at, files = :f, bytes = :b, duration_ms = :ms,
         dry_run = MAX(dry_run, :dry), plan = :plan WHERE restore_id = :id`,
      {
        id: d.restoreId,
        p: RestorePhase.Completed,
        at,
        f: d.files,
        b: d.bytes,
        ms: d.durationMs,
        dry: bool(d.dryRun),
        plan: d.plan ? json(d.plan) : null,
      },
    );
  },
  RestoreFailed(db, d: DataOf<typeof RestoreFailed>) {
    const at = iso(d.failedAt);
    upsertRestore(db, d, null, at);
    run(
      db,
      `UPDATE restores SET phase = :p, finished_at = :at, error_code = :c, error_reason = :r WHERE restore_id = :id`,
      { id: d.restoreId, p: RestorePhase.Failed, at, c: d.code, r: d.reason },
    );
  },
  RepositoryMaintenanceRequested(db, d: DataNamed<'RepositoryMaintenanceRequested'>) {
    operationRequested(db, d, d.operation);
  },
  SnapshotsForgotten(db, d: DataOf<typeof SnapshotsForgotten>) {
    const at = iso(d.forgottenAt);
    for (const snapshotId of d.forgotten) {
      run(db, 'UPDATE snapshots SET forgotten_at = COALESCE(forgotten_at, :at) WHERE snapshot_id = :s', {
        s: snapshotId,
        at,
      });
    }
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: 'forget',
      ok: true,
      finishedAt: d.forgottenAt,
      hostId: d.hostId,
      volumeName: d.volumeName,
      summary: {
        forgotten: d.forgotten.length,
        kept: d.kept.length,
      },
    });
  },
  RepositoryPruned(db, d: DataOf<typeof RepositoryPruned>) {
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: 'prune',
      ok: true,
      finishedAt: d.prunedAt,
      summary: {
        packsDeleted: d.packsDeleted,
        packsRepacked: d.packsRepacked,
        blobsRemoved: d.blobsRemoved,
        bytesFreed: d.bytesFreed,
        durationMs: d.durationMs,
      },
    });
  },
  RepositoryChecked(db, d: DataOf<typeof RepositoryChecked>) {
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: 'check',
      ok: d.ok,
      finishedAt: d.checkedAt,
      summary: {
        readDataFraction: d.readDataFraction,
        packsChecked: d.packsChecked,
        errors: d.errors.slice(0, 20),
        damagedBlobs: d.damagedBlobs.length,
        damagedSnapshots: d.damagedSnapshots,
        durationMs: d.durationMs,
      },
    });
  },
  RepositoryMaintenanceFailed(db, d: DataOf<typeof RepositoryMaintenanceFailed>) {
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: d.operation,
      ok: false,
      finishedAt: d.failedAt,
      summary: {},
      errorCode: d.code,
      reason: d.reason,
    });
  },
  RepositoryImportRequested(db, d: DataOf<typeof RepositoryImportRequested>) {
    operationRequested(db, d, 'import');
  },
  SnapshotImported(db, d: DataOf<typeof SnapshotImported>) {
    importedSnapshot(db, d);
  },
  RepositoryImportCompleted(db, d: DataOf<typeof RepositoryImportCompleted>) {
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: 'import',
      ok: true,
      finishedAt: d.completedAt,
      summary: {
        snapshots: d.snapshots,
        imported: d.imported,
        alreadyKnown: d.alreadyKnown,
        skipped: d.skipped,
        durationMs: d.durationMs,
      },
    });
  },
  RepositoryImportFailed(db, d: DataOf<typeof RepositoryImportFailed>) {
    repositoryOperation(db, {
      operationId: d.operationId,
      repositoryId: d.repositoryId,
      operation: 'import',
      ok: false,
      finishedAt: d.failedAt,
      summary: {},
      errorCode: d.code,
      reason: d.reason,
    });
  },
  // Reports of messages some consumer refused: the consumer logged them; no read model needs them.
  MessageRejected() {},
  // Notification outcomes are read from the log (`GET /v1/events?type=io.volback.notification`); no table needs them.
  NotificationDelivered() {},
  NotificationFailed() {},
};

/** The event names the projection applies (all of `EVENTS`). */
export const PROJECTED_EVENTS: readonly string[] = Object.keys(HANDLERS);

/** One event read from the log, at its stream sequence; no `name`: read but not applied (skipped). */
export interface ReadEvent {
  streamSequence: number;
  name?: string | undefined;
  data?: unknown;
  /** The CloudEvents type (metrics). */
  type?: string | undefined;
}

function applyEvent(db: DatabaseSync, name: string, data: unknown): void {
  (HANDLERS as unknown as Record<string, ((db: DatabaseSync, data: unknown) => void) | undefined>)[name]?.(
    db,
    data,
  );
}

/**
 * Applies the events of one read in one transaction with the checkpoint, which moves to the last
 * event read (skipped ones included, so the checkpoint reaches the end of the log). An event at or
 * below the checkpoint was applied before (read again after a crash): nothing happens. Returns the
 * events applied. One transaction for many events is what makes replaying a fleet's log fast.
 */
export function projectEvents(database: CatalogDatabase, events: readonly ReadEvent[]): ReadEvent[] {
  return database.transaction(() => {
    const checkpoint = database.checkpoint();
    const applied: ReadEvent[] = [];
    let last = checkpoint;
    for (const event of events) {
      if (event.streamSequence <= last) continue;
      last = event.streamSequence;
      if (event.name === undefined) continue;
      applyEvent(database.db, event.name, event.data);
      applied.push(event);
    }
    if (last > checkpoint)
      run(database.db, 'UPDATE checkpoint SET stream_sequence = :s WHERE id = 1', { s: last });
    return applied;
  });
}

/** Applies one event at `streamSequence` ({@link projectEvents} of one); whether it was applied. */
export function projectEvent(
  database: CatalogDatabase,
  event: { name: string; data: unknown; streamSequence: number },
): boolean {
  return projectEvents(database, [event]).length === 1;
}

/**
 * Applies a heartbeat read from `VOLBACK_HEARTBEATS` (liveness, not the event log): the host's
 * last-seen time, interval and counts, only when newer than what the row holds; no checkpoint, as
 * the heartbeats stream keeps each host's last and is read from there at every start.
 */
export function projectHeartbeat(database: CatalogDatabase, heartbeat: DataOf<typeof HostSeen>): void {
  database.transaction(() => applyEvent(database.db, 'HostSeen', heartbeat));
}

/** Applies an event without checkpoint (tests: the same event twice must change nothing). */
export function applyEventRows(database: CatalogDatabase, name: string, data: unknown): void {
  database.transaction(() => applyEvent(database.db, name, data));
}
