/**
 * The read model's tables. Bump {@link SCHEMA_VERSION} on any change: a database of another
 * version is emptied and rebuilt from the event log at start (it is only ever a projection).
 * Times are stored as ISO 8601 UTC with milliseconds, so text order is time order.
 */
export const SCHEMA_VERSION = 8;

export const SCHEMA = `
CREATE TABLE checkpoint (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  stream_sequence INTEGER NOT NULL,
  -- Creation time of the VOLBACK_EVENTS the sequence counts in: a stream deleted and created
  -- again restarts at 1, and this tells the catalog its checkpoint means nothing there.
  stream_created TEXT
);
INSERT INTO checkpoint (id, stream_sequence) VALUES (1, 0);

CREATE TABLE hosts (
  host_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  engine TEXT,
  agent_version TEXT,
  registered_at TEXT,
  last_seen_at TEXT,
  offline_after TEXT,
  heartbeat_seconds INTEGER,
  containers INTEGER,
  volumes INTEGER,
  backups_running INTEGER
);

CREATE TABLE volumes (
  host_id TEXT NOT NULL,
  volume_name TEXT NOT NULL,
  driver TEXT,
  driver_options TEXT NOT NULL DEFAULT '{}',
  labels TEXT NOT NULL DEFAULT '{}',
  scope TEXT,
  anonymous INTEGER NOT NULL DEFAULT 0,
  mountpoint TEXT,
  created_at TEXT,
  discovered_at TEXT,
  removed_at TEXT,
  size_bytes INTEGER,
  last_backup_id TEXT,
  last_backup_phase TEXT,
  last_backup_at TEXT,
  last_success_at TEXT,
  last_snapshot_id TEXT,
  at_risk INTEGER NOT NULL DEFAULT 0,
  at_risk_reason TEXT,
  at_risk_since TEXT,
  rpo_seconds INTEGER,
  next_due_at TEXT,
  PRIMARY KEY (host_id, volume_name)
);

CREATE TABLE containers (
  host_id TEXT NOT NULL,
  container_id TEXT NOT NULL,
  name TEXT NOT NULL,
  image TEXT,
  image_digest TEXT,
  image_id TEXT,
  labels TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL,
  compose_project TEXT,
  compose_service TEXT,
  created_at TEXT,
  observed_at TEXT,
  started_at TEXT,
  stopped_at TEXT,
  exit_code INTEGER,
  PRIMARY KEY (host_id, container_id)
);

CREATE TABLE container_mounts (
  host_id TEXT NOT NULL,
  container_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  type TEXT NOT NULL,
  volume_name TEXT,
  source TEXT,
  destination TEXT NOT NULL,
  read_only INTEGER NOT NULL,
  PRIMARY KEY (host_id, container_id, position)
);
CREATE INDEX container_mounts_by_volume ON container_mounts (host_id, volume_name);

CREATE TABLE policies (
  policy_id TEXT PRIMARY KEY,
  scope_kind TEXT NOT NULL,
  host_id TEXT,
  volume_name TEXT,
  origin TEXT NOT NULL,
  spec TEXT NOT NULL,
  -- The configured default's coverage (JSON), for origin 'configuration'.
  coverage TEXT,
  -- Definition order in the log: of two policies for one scope, the later one wins.
  defined_order INTEGER NOT NULL,
  defined_by TEXT,
  defined_at TEXT NOT NULL
);

CREATE TABLE policy_rejections (
  policy_id TEXT NOT NULL,
  rejected_at TEXT NOT NULL,
  host_id TEXT,
  volume_name TEXT,
  label TEXT,
  reason TEXT NOT NULL,
  PRIMARY KEY (policy_id, rejected_at)
);

CREATE TABLE backups (
  backup_id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  volume_name TEXT NOT NULL,
  phase TEXT NOT NULL,
  trigger TEXT,
  attempt INTEGER NOT NULL DEFAULT 1,
  repository_id TEXT NOT NULL DEFAULT 'default',
  requested_by TEXT,
  created_at TEXT NOT NULL,
  requested_at TEXT,
  started_at TEXT,
  finished_at TEXT,
  method TEXT,
  parent_snapshot_id TEXT,
  quiesced_containers TEXT,
  snapshot_id TEXT,
  stats TEXT,
  unreadable TEXT,
  unreadable_count INTEGER,
  error_code TEXT,
  error_reason TEXT,
  will_retry INTEGER,
  retry_of TEXT,
  abandoned_at TEXT,
  attempts INTEGER,
  last_attempt_id TEXT
);
CREATE INDEX backups_by_time ON backups (created_at, backup_id);
-- Each list filter with the list's order (keyset pages read only their rows, at a million).
CREATE INDEX backups_by_volume ON backups (host_id, volume_name, created_at, backup_id);
CREATE INDEX backups_by_host ON backups (host_id, created_at, backup_id);
CREATE INDEX backups_by_phase ON backups (phase, created_at, backup_id);
CREATE INDEX backups_by_outcome ON backups (phase, finished_at);

CREATE TABLE restores (
  restore_id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  snapshot_id TEXT NOT NULL,
  repository_id TEXT NOT NULL DEFAULT 'default',
  target TEXT NOT NULL,
  path TEXT,
  target_path TEXT,
  dry_run INTEGER NOT NULL DEFAULT 0,
  plan TEXT,
  phase TEXT NOT NULL,
  requested_by TEXT,
  created_at TEXT NOT NULL,
  requested_at TEXT,
  started_at TEXT,
  finished_at TEXT,
  files INTEGER,
  bytes INTEGER,
  duration_ms INTEGER,
  error_code TEXT,
  error_reason TEXT
);
CREATE INDEX restores_by_time ON restores (created_at, restore_id);

CREATE TABLE snapshots (
  snapshot_id TEXT PRIMARY KEY,
  repository_id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  volume_name TEXT NOT NULL,
  backup_id TEXT NOT NULL,
  time TEXT NOT NULL,
  partial INTEGER NOT NULL,
  stats TEXT NOT NULL,
  forgotten_at TEXT
);
CREATE INDEX snapshots_by_volume ON snapshots (host_id, volume_name, time, snapshot_id);
CREATE INDEX snapshots_by_host ON snapshots (host_id, time, snapshot_id);
CREATE INDEX snapshots_by_time ON snapshots (time, snapshot_id);

CREATE TABLE repository_operations (
  operation_id TEXT NOT NULL,
  repository_id TEXT NOT NULL,
  operation TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  requested_at TEXT,
  finished_at TEXT,
  host_id TEXT,
  volume_name TEXT,
  summary TEXT NOT NULL DEFAULT '{}',
  error_code TEXT,
  error_reason TEXT,
  PRIMARY KEY (operation_id, repository_id, operation)
);
CREATE INDEX repository_operations_by_time ON repository_operations (created_at);

CREATE TABLE set_backups (
  backup_id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  set_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  volumes TEXT NOT NULL DEFAULT '[]',
  quiesced TEXT NOT NULL DEFAULT '[]',
  members TEXT NOT NULL DEFAULT '[]',
  failed TEXT NOT NULL DEFAULT '[]',
  started_at TEXT,
  finished_at TEXT,
  error_code TEXT,
  error_reason TEXT
);
CREATE INDEX set_backups_by_set ON set_backups (set_id, host_id, started_at);

CREATE TABLE set_restores (
  restore_id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  set_id TEXT NOT NULL,
  set_backup_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  dry_run INTEGER NOT NULL DEFAULT 0,
  members TEXT NOT NULL DEFAULT '[]',
  containers TEXT NOT NULL DEFAULT '[]',
  requested_at TEXT,
  finished_at TEXT,
  error_code TEXT,
  error_reason TEXT,
  failed_volume TEXT
);

-- Restore drills: one row per drill, the newest per volume is the volume's last drill.
CREATE TABLE drills (
  drill_id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL,
  volume_name TEXT NOT NULL,
  phase TEXT NOT NULL,
  trigger TEXT,
  requested_by TEXT,
  requested_at TEXT,
  snapshot_id TEXT,
  scratch_volume TEXT,
  stage TEXT,
  files INTEGER,
  bytes INTEGER,
  containers TEXT NOT NULL DEFAULT '[]',
  health TEXT,
  restore_ms INTEGER,
  verify_ms INTEGER,
  health_ms INTEGER,
  rto_ms INTEGER,
  duration_ms INTEGER,
  mismatches TEXT NOT NULL DEFAULT '[]',
  mismatch_count INTEGER NOT NULL DEFAULT 0,
  left_behind TEXT NOT NULL DEFAULT '[]',
  finished_at TEXT,
  error_code TEXT,
  error_reason TEXT,
  -- Requested, or finished, whichever is known: the order of a volume's drills.
  at TEXT NOT NULL
);
CREATE INDEX drills_by_volume ON drills (host_id, volume_name, at);

-- Running totals for GET /v1/status, kept by triggers whatever handler changes the rows: a count
-- or a sum over a million snapshots and backups on every status request would take seconds.
CREATE TABLE totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  snapshots INTEGER NOT NULL DEFAULT 0,
  stored_bytes INTEGER NOT NULL DEFAULT 0
);
INSERT INTO totals (id) VALUES (1);
CREATE TRIGGER snapshots_total_insert AFTER INSERT ON snapshots WHEN new.forgotten_at IS NULL
BEGIN UPDATE totals SET snapshots = snapshots + 1 WHERE id = 1; END;
CREATE TRIGGER snapshots_total_update AFTER UPDATE OF forgotten_at ON snapshots
BEGIN
  UPDATE totals SET snapshots = snapshots + (new.forgotten_at IS NULL) - (old.forgotten_at IS NULL)
  WHERE id = 1;
END;
CREATE TRIGGER snapshots_total_delete AFTER DELETE ON snapshots WHEN old.forgotten_at IS NULL
BEGIN UPDATE totals SET snapshots = snapshots - 1 WHERE id = 1; END;
CREATE TRIGGER backups_stored_insert AFTER INSERT ON backups
  WHEN new.phase IN ('Completed', 'PartiallyFailed')
BEGIN
  UPDATE totals SET stored_bytes = stored_bytes + coalesce(json_extract(new.stats, '$.bytesStored'), 0)
  WHERE id = 1;
END;
CREATE TRIGGER backups_stored_update AFTER UPDATE OF phase, stats ON backups
BEGIN
  UPDATE totals SET stored_bytes = stored_bytes
    + CASE WHEN new.phase IN ('Completed', 'PartiallyFailed')
        THEN coalesce(json_extract(new.stats, '$.bytesStored'), 0) ELSE 0 END
    - CASE WHEN old.phase IN ('Completed', 'PartiallyFailed')
        THEN coalesce(json_extract(old.stats, '$.bytesStored'), 0) ELSE 0 END
  WHERE id = 1;
END;
CREATE TRIGGER backups_stored_delete AFTER DELETE ON backups
  WHEN old.phase IN ('Completed', 'PartiallyFailed')
BEGIN
  UPDATE totals SET stored_bytes = stored_bytes - coalesce(json_extract(old.stats, '$.bytesStored'), 0)
  WHERE id = 1;
END;
`;
