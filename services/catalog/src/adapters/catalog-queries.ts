import type { SQLInputValue } from 'node:sqlite';
import {
  CONFIGURED_DEFAULT_POLICY_ID,
  effectivePolicy,
  setIdOf,
  type BackupPhase,
  type PolicyCoverage,
  type PolicyOrigin,
  type PolicyRecord,
  type PolicySpec,
  type RestorePhase,
} from '@volback/contracts';
import { decodeCursor, encodeCursor, type CursorKey } from '../domain/cursor.ts';
import { protectionStatus } from '../domain/status.ts';
import { BadRequestError, CatalogErrorCode, ConflictError, NotFoundError } from '../errors.ts';
import type {
  BackupView,
  ContainerView,
  DrillView,
  HostView,
  Page,
  PolicyView,
  RepositoryOperationView,
  RestoreView,
  SetBackupView,
  SetRestoreView,
  SetView,
  SnapshotView,
  StatusView,
  VolumeView,
} from '../read-model.ts';
import type { CatalogDatabase } from './catalog-database.ts';

type Row = Record<string, SQLInputValue>;
type Params = Record<string, SQLInputValue>;

/** Adds `column = :key` to a query's conditions when the filter has a value. */
function whereEqual(
  where: string[],
  params: Params,
  column: string,
  key: string,
  value: SQLInputValue | undefined,
): void {
  if (value === undefined) return;
  where.push(`${column} = :${key}`);
  params[key] = value;
}

/** Paging of any list. */
export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

const str = (v: SQLInputValue | undefined): string | null =>
  v === null || v === undefined ? null : String(v);
const num = (v: SQLInputValue | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);
const parse = <T>(v: SQLInputValue | undefined, fallback: T): T =>
  typeof v === 'string' ? (JSON.parse(v) as T) : fallback;

/**
 * One keyset-paginated query: `where` clauses and `params`, sorted by `keys` (columns that are
 * never null), ascending or descending.
 */
function paginate(
  database: CatalogDatabase,
  spec: {
    list: string;
    from: string;
    where: string[];
    params: Params;
    keys: readonly string[];
    descending?: boolean;
    page: PageRequest;
  },
): { rows: Row[]; nextCursor: string | null } {
  const where = [...spec.where];
  const params: Params = { ...spec.params };
  if (spec.page.cursor !== undefined) {
    const key = decodeCursor(spec.list, spec.page.cursor, spec.keys.length);
    if (!key) {
      throw new BadRequestError(CatalogErrorCode.InvalidCursor, 'query.cursor', 'not a cursor of this list');
    }
    const placeholders = key.map((_, i) => `:cursor${i}`);
    key.forEach((value, i) => (params[`cursor${i}`] = value));
    where.push(`(${spec.keys.join(', ')}) ${spec.descending ? '<' : '>'} (${placeholders.join(', ')})`);
  }
  const direction = spec.descending ? 'DESC' : 'ASC';
  const sql = `SELECT * FROM ${spec.from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${spec.keys.map((k) => `${k} ${direction}`).join(', ')} LIMIT :limit`;
  const rows = database.db.prepare(sql).all({ ...params, limit: spec.page.limit + 1 }) as Row[];
  const more = rows.length > spec.page.limit;
  if (more) rows.length = spec.page.limit;
  const last = rows.at(-1);
  const nextCursor =
    more && last
      ? encodeCursor(
          spec.list,
          spec.keys.map((k) => (last[k.replace(/^.*\./, '')] ?? null) as CursorKey[number]),
        )
      : null;
  return { rows, nextCursor };
}

/** Filters of the host list. */
export interface HostFilter {
  status?: 'online' | 'offline' | undefined;
}
/** Filters of the volume list. */
export interface VolumeFilter {
  hostId?: string | undefined;
  /** Exact name. */
  name?: string | undefined;
  /** Part of the name. */
  search?: string | undefined;
  status?: VolumeView['protection']['status'] | undefined;
  /** `key` or `key=value`. */
  label?: string | undefined;
  includeRemoved?: boolean | undefined;
}
export interface ContainerFilter {
  hostId?: string | undefined;
  volumeName?: string | undefined;
  state?: string | undefined;
}
export interface PolicyFilter {
  scope?: 'default' | 'volume' | undefined;
  hostId?: string | undefined;
  volumeName?: string | undefined;
}
export interface BackupFilter {
  hostId?: string | undefined;
  volumeName?: string | undefined;
  phase?: BackupPhase | undefined;
  trigger?: string | undefined;
  /** Created at or after. */
  since?: string | undefined;
}
export interface RestoreFilter {
  hostId?: string | undefined;
  snapshotId?: string | undefined;
  phase?: RestorePhase | undefined;
}
export interface SnapshotFilter {
  hostId?: string | undefined;
  volumeName?: string | undefined;
  includeForgotten?: boolean | undefined;
}
export interface OperationFilter {
  repositoryId?: string | undefined;
  operation?: 'forget' | 'prune' | 'check' | 'import' | undefined;
  operationId?: string | undefined;
}

/** Reads of the read model, as the API answers them. `now` decides online/offline. */
export class CatalogQueries {
  readonly #database: CatalogDatabase;
  readonly #now: () => Date;

  constructor(database: CatalogDatabase, now: () => Date = () => new Date()) {
    this.#database = database;
    this.#now = now;
  }

  get #db() {
    return this.#database.db;
  }

  // Hosts

  #host(row: Row): HostView {
    const offlineAfter = str(row['offline_after']);
    return {
      hostId: String(row['host_id']),
      name: String(row['name']),
      status:
        offlineAfter === null ? 'unknown' : offlineAfter >= this.#now().toISOString() ? 'online' : 'offline',
      lastSeenAt: str(row['last_seen_at']),
      offlineAfter,
      registeredAt: str(row['registered_at']),
      agentVersion: str(row['agent_version']),
      engine: parse(row['engine'] ?? null, null),
      heartbeatSeconds: num(row['heartbeat_seconds']),
      containers: num(row['containers']),
      volumes: num(row['volumes']),
      backupsRunning: num(row['backups_running']),
    };
  }

  listHosts(filter: HostFilter, page: PageRequest): Page<HostView> {
    const where: string[] = [];
    const params: Params = {};
    if (filter.status) {
      params['now'] = this.#now().toISOString();
      where.push(
        filter.status === 'online'
          ? 'offline_after >= :now'
          : '(offline_after IS NULL OR offline_after < :now)',
      );
    }
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'hosts',
      from: 'hosts',
      where,
      params,
      keys: ['host_id'],
      page,
    });
    return { items: rows.map((r) => this.#host(r)), nextCursor };
  }

  /**
   * The id of the host that `ref` names: a host id, else a host name (as `volback hosts` shows
   * it). Unknown: 404; a name several hosts carry: 409 naming their ids.
   */
  resolveHost(ref: string): string {
    const byId = this.#db.prepare('SELECT host_id FROM hosts WHERE host_id = :h').get({ h: ref }) as
      Row | undefined;
    if (byId) return String(byId['host_id']);
    const byName = this.#db
      .prepare('SELECT host_id FROM hosts WHERE name = :n ORDER BY host_id')
      .all({ n: ref }) as Row[];
    if (byName.length === 1) return String(byName[0]!['host_id']);
    if (byName.length > 1) {
      throw new ConflictError(
        CatalogErrorCode.AmbiguousHost,
        `several hosts are named ${JSON.stringify(ref)} (${byName.map((r) => String(r['host_id'])).join(', ')}): give the host id`,
      );
    }
    throw new NotFoundError(
      CatalogErrorCode.HostNotFound,
      `no host with the id or name ${JSON.stringify(ref)}`,
    );
  }

  /** {@link resolveHost} for an optional filter. */
  resolveHostFilter(ref: string | undefined): string | undefined {
    return ref === undefined ? undefined : this.resolveHost(ref);
  }

  getHost(hostId: string): HostView {
    const row = this.#db.prepare('SELECT * FROM hosts WHERE host_id = :h').get({ h: hostId }) as
      Row | undefined;
    if (!row) throw new NotFoundError(CatalogErrorCode.HostNotFound, `no host ${JSON.stringify(hostId)}`);
    return this.#host(row);
  }

  // Volumes

  /**
   * The id of the policy that protects a volume, by the contracts' rule (the one the scheduler
   * decides by), with the scheduler's configured default and coverage as it published them.
   */
  #policyFor(hostId: string, volumeName: string, anonymous: boolean): string | null {
    const rows = this.#db
      .prepare(
        `SELECT policy_id, scope_kind, host_id, volume_name, origin, spec, coverage, defined_order FROM policies
         WHERE (scope_kind = 'volume' AND host_id = :h AND volume_name = :v) OR scope_kind = 'default'`,
      )
      .all({ h: hostId, v: volumeName }) as Row[];
    const records: PolicyRecord[] = rows.map((r) => ({
      policyId: String(r['policy_id']),
      scope:
        r['scope_kind'] === 'volume'
          ? { kind: 'volume', hostId: String(r['host_id']), volumeName: String(r['volume_name']) }
          : { kind: 'default' },
      origin: String(r['origin']) as PolicyOrigin,
      policy: parse(r['spec'] ?? null, {}) as PolicySpec,
      order: Number(r['defined_order']),
    }));
    const configured = rows.find(
      (r) => r['policy_id'] === CONFIGURED_DEFAULT_POLICY_ID && r['origin'] === 'configuration',
    );
    const coverage = configured ? parse<PolicyCoverage | null>(configured['coverage'] ?? null, null) : null;
    return (
      effectivePolicy(records, { hostId, volumeName, anonymous }, coverage ?? undefined)?.policyId ?? null
    );
  }

  #usedBy(hostId: string, volumeName: string): VolumeView['usedBy'] {
    const rows = this.#db
      .prepare(
        `SELECT m.container_id, c.name, c.state, m.destination, m.read_only FROM container_mounts m
         JOIN containers c ON c.host_id = m.host_id AND c.container_id = m.container_id
         WHERE m.host_id = :h AND m.volume_name = :v ORDER BY c.name, m.container_id, m.position`,
      )
      .all({ h: hostId, v: volumeName }) as Row[];
    return rows.map((r) => ({
      containerId: String(r['container_id']),
      containerName: String(r['name']),
      containerState: String(r['state']),
      destination: String(r['destination']),
      readOnly: r['read_only'] === 1,
    }));
  }

  #volume(row: Row): VolumeView {
    const hostId = String(row['host_id']);
    const volumeName = String(row['volume_name']);
    const removedAt = str(row['removed_at']);
    const atRisk = row['at_risk'] === 1;
    const lastSuccessAt = str(row['last_success_at']);
    const lastBackupId = str(row['last_backup_id']);
    return {
      hostId,
      volumeName,
      driver: str(row['driver']),
      driverOptions: parse(row['driver_options'] ?? null, {}),
      labels: parse(row['labels'] ?? null, {}),
      scope: str(row['scope']),
      anonymous: row['anonymous'] === 1,
      mountpoint: str(row['mountpoint']),
      createdAt: str(row['created_at']),
      discoveredAt: str(row['discovered_at']),
      removedAt,
      sizeBytes: num(row['size_bytes']),
      protection: {
        status: protectionStatus({ removedAt, atRisk, lastSuccessAt }),
        lastSuccessAt,
        lastSnapshotId: str(row['last_snapshot_id']),
        lastBackup: lastBackupId
          ? {
              backupId: lastBackupId,
              phase: String(row['last_backup_phase']),
              at: String(row['last_backup_at']),
            }
          : null,
        atRisk: atRisk
          ? {
              reason: str(row['at_risk_reason']),
              since: str(row['at_risk_since']),
              rpoSeconds: num(row['rpo_seconds']),
            }
          : null,
        policyId: this.#policyFor(hostId, volumeName, row['anonymous'] === 1),
        nextDueAt: str(row['next_due_at']),
      },
      usedBy: this.#usedBy(hostId, volumeName),
      lastDrill: this.#lastDrill(hostId, volumeName),
    };
  }

  // Drills

  #drill(row: Row): DrillView {
    const code = str(row['error_code']);
    return {
      drillId: String(row['drill_id']),
      hostId: String(row['host_id']),
      volumeName: String(row['volume_name']),
      phase: String(row['phase']) as DrillView['phase'],
      trigger: str(row['trigger']),
      requestedBy: str(row['requested_by']),
      requestedAt: str(row['requested_at']),
      finishedAt: str(row['finished_at']),
      snapshotId: str(row['snapshot_id']),
      rtoMs: num(row['rto_ms']),
      restoreMs: num(row['restore_ms']),
      verifyMs: num(row['verify_ms']),
      healthMs: num(row['health_ms']),
      durationMs: num(row['duration_ms']),
      files: num(row['files']),
      bytes: num(row['bytes']),
      containers: parse(row['containers'] ?? null, []),
      health: str(row['health']),
      stage: str(row['stage']),
      mismatches: parse(row['mismatches'] ?? null, []),
      mismatchCount: Number(row['mismatch_count'] ?? 0),
      leftBehind: parse(row['left_behind'] ?? null, []),
      error: code !== null ? { code, reason: String(row['error_reason'] ?? '') } : null,
    };
  }

  #lastDrill(hostId: string, volumeName: string): DrillView | null {
    const row = this.#db
      .prepare(
        'SELECT * FROM drills WHERE host_id = :h AND volume_name = :v ORDER BY at DESC, drill_id DESC LIMIT 1',
      )
      .get({ h: hostId, v: volumeName }) as Row | undefined;
    return row ? this.#drill(row) : null;
  }

  /** A volume's drills, newest first. */
  listDrills(hostId: string, volumeName: string, page: PageRequest): Page<DrillView> {
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'drills',
      from: 'drills',
      where: ['host_id = :h', 'volume_name = :v'],
      params: { h: hostId, v: volumeName },
      keys: ['at', 'drill_id'],
      descending: true,
      page,
    });
    return { items: rows.map((r) => this.#drill(r)), nextCursor };
  }

  getDrill(drillId: string): DrillView {
    const row = this.#db.prepare('SELECT * FROM drills WHERE drill_id = :d').get({ d: drillId }) as
      Row | undefined;
    if (!row) throw new NotFoundError(CatalogErrorCode.DrillNotFound, `no drill ${JSON.stringify(drillId)}`);
    return this.#drill(row);
  }

  listVolumes(filter: VolumeFilter, page: PageRequest): Page<VolumeView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'volume_name', 'n', filter.name);
    if (filter.search !== undefined) {
      where.push('instr(volume_name, :s) > 0');
      params['s'] = filter.search;
    }
    if (filter.label !== undefined) {
      const eq = filter.label.indexOf('=');
      const key = eq < 0 ? filter.label : filter.label.slice(0, eq);
      params['lk'] = `$.${JSON.stringify(key)}`;
      if (eq < 0) where.push('json_type(labels, :lk) IS NOT NULL');
      else {
        where.push('json_extract(labels, :lk) = :lv');
        params['lv'] = filter.label.slice(eq + 1);
      }
    }
    switch (filter.status) {
      case 'removed':
        where.push('removed_at IS NOT NULL');
        break;
      case 'at-risk':
        where.push('removed_at IS NULL AND at_risk = 1');
        break;
      case 'unprotected':
        where.push('removed_at IS NULL AND at_risk = 0 AND last_success_at IS NULL');
        break;
      case 'protected':
        where.push('removed_at IS NULL AND at_risk = 0 AND last_success_at IS NOT NULL');
        break;
      default:
        if (!filter.includeRemoved) where.push('removed_at IS NULL');
    }
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'volumes',
      from: 'volumes',
      where,
      params,
      keys: ['host_id', 'volume_name'],
      page,
    });
    return { items: rows.map((r) => this.#volume(r)), nextCursor };
  }

  getVolume(hostId: string, volumeName: string): VolumeView {
    const row = this.#db
      .prepare('SELECT * FROM volumes WHERE host_id = :h AND volume_name = :v')
      .get({ h: hostId, v: volumeName }) as Row | undefined;
    if (!row) {
      throw new NotFoundError(
        CatalogErrorCode.VolumeNotFound,
        `no volume ${JSON.stringify(volumeName)} on host ${JSON.stringify(hostId)}`,
      );
    }
    return this.#volume(row);
  }

  /** The volume, which must still exist on its host (to back it up). */
  requireLiveVolume(hostId: string, volumeName: string): VolumeView {
    const volume = this.getVolume(hostId, volumeName);
    if (volume.removedAt) {
      throw new ConflictError(
        CatalogErrorCode.VolumeRemoved,
        `volume ${JSON.stringify(volumeName)} was removed from host ${JSON.stringify(hostId)} at ${volume.removedAt}`,
      );
    }
    return volume;
  }

  /** Volumes of that name on any host (the CLI names volumes without their host). */
  volumesNamed(volumeName: string): VolumeView[] {
    const rows = this.#db
      .prepare('SELECT * FROM volumes WHERE volume_name = :v ORDER BY removed_at IS NOT NULL, host_id')
      .all({ v: volumeName }) as Row[];
    return rows.map((r) => this.#volume(r));
  }

  // Containers

  #container(row: Row): ContainerView {
    const mounts = this.#db
      .prepare('SELECT * FROM container_mounts WHERE host_id = :h AND container_id = :c ORDER BY position')
      .all({ h: row['host_id'] ?? null, c: row['container_id'] ?? null }) as Row[];
    const project = str(row['compose_project']);
    return {
      hostId: String(row['host_id']),
      containerId: String(row['container_id']),
      name: String(row['name']),
      image: str(row['image']),
      imageDigest: str(row['image_digest']),
      labels: parse(row['labels'] ?? null, {}),
      state: String(row['state']),
      compose: project !== null ? { project, service: String(row['compose_service'] ?? '') } : null,
      createdAt: str(row['created_at']),
      startedAt: str(row['started_at']),
      stoppedAt: str(row['stopped_at']),
      exitCode: num(row['exit_code']),
      mounts: mounts.map((m) => ({
        type: String(m['type']) as 'volume' | 'bind' | 'tmpfs',
        volumeName: str(m['volume_name']),
        source: str(m['source']),
        destination: String(m['destination']),
        readOnly: m['read_only'] === 1,
      })),
    };
  }

  listContainers(filter: ContainerFilter, page: PageRequest): Page<ContainerView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'state', 's', filter.state);
    if (filter.volumeName !== undefined) {
      where.push(
        `EXISTS (SELECT 1 FROM container_mounts m WHERE m.host_id = containers.host_id
           AND m.container_id = containers.container_id AND m.volume_name = :v)`,
      );
      params['v'] = filter.volumeName;
    }
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'containers',
      from: 'containers',
      where,
      params,
      keys: ['host_id', 'container_id'],
      page,
    });
    return { items: rows.map((r) => this.#container(r)), nextCursor };
  }

  getContainer(hostId: string, containerId: string): ContainerView {
    const row = this.#db
      .prepare('SELECT * FROM containers WHERE host_id = :h AND container_id = :c')
      .get({ h: hostId, c: containerId }) as Row | undefined;
    if (!row) {
      throw new NotFoundError(
        CatalogErrorCode.ContainerNotFound,
        `no container ${JSON.stringify(containerId)} on host ${JSON.stringify(hostId)}`,
      );
    }
    return this.#container(row);
  }

  // Policies

  #policy(row: Row): PolicyView {
    return {
      policyId: String(row['policy_id']),
      scope:
        row['scope_kind'] === 'volume'
          ? { kind: 'volume', hostId: String(row['host_id']), volumeName: String(row['volume_name']) }
          : { kind: 'default' },
      origin: String(row['origin']),
      policy: parse(row['spec'] ?? null, {}),
      definedBy: str(row['defined_by']),
      definedAt: String(row['defined_at']),
    };
  }

  listPolicies(filter: PolicyFilter, page: PageRequest): Page<PolicyView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'scope_kind', 'k', filter.scope);
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'volume_name', 'v', filter.volumeName);
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'policies',
      from: 'policies',
      where,
      params,
      keys: ['policy_id'],
      page,
    });
    return { items: rows.map((r) => this.#policy(r)), nextCursor };
  }

  getPolicy(policyId: string): PolicyView {
    const row = this.#db.prepare('SELECT * FROM policies WHERE policy_id = :p').get({ p: policyId }) as
      Row | undefined;
    if (!row)
      throw new NotFoundError(CatalogErrorCode.PolicyNotFound, `no policy ${JSON.stringify(policyId)}`);
    return this.#policy(row);
  }

  // Backups

  #backup(row: Row): BackupView {
    const code = str(row['error_code']);
    return {
      backupId: String(row['backup_id']),
      hostId: String(row['host_id']),
      volumeName: String(row['volume_name']),
      phase: String(row['phase']) as BackupView['phase'],
      trigger: str(row['trigger']),
      attempt: Number(row['attempt']),
      repositoryId: String(row['repository_id']),
      requestedBy: str(row['requested_by']),
      createdAt: String(row['created_at']),
      requestedAt: str(row['requested_at']),
      startedAt: str(row['started_at']),
      finishedAt: str(row['finished_at']),
      method: str(row['method']),
      parentSnapshotId: str(row['parent_snapshot_id']),
      quiescedContainers: parse(row['quiesced_containers'] ?? null, []),
      snapshotId: str(row['snapshot_id']),
      stats: parse(row['stats'] ?? null, null),
      unreadable: parse(row['unreadable'] ?? null, []),
      unreadableCount: num(row['unreadable_count']) ?? 0,
      error:
        code !== null
          ? { code, reason: String(row['error_reason'] ?? ''), willRetry: row['will_retry'] === 1 }
          : null,
      retryOf: str(row['retry_of']),
      abandoned:
        row['abandoned_at'] != null
          ? {
              at: String(row['abandoned_at']),
              attempts: Number(row['attempts']),
              lastBackupId: String(row['last_attempt_id']),
            }
          : null,
    };
  }

  listBackups(filter: BackupFilter, page: PageRequest): Page<BackupView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'volume_name', 'v', filter.volumeName);
    whereEqual(where, params, 'phase', 'p', filter.phase);
    whereEqual(where, params, 'trigger', 't', filter.trigger);
    if (filter.since !== undefined) {
      where.push('created_at >= :since');
      params['since'] = new Date(filter.since).toISOString();
    }
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'backups',
      from: 'backups',
      where,
      params,
      keys: ['created_at', 'backup_id'],
      descending: true,
      page,
    });
    return { items: rows.map((r) => this.#backup(r)), nextCursor };
  }

  getBackup(backupId: string): BackupView {
    const row = this.#db.prepare('SELECT * FROM backups WHERE backup_id = :b').get({ b: backupId }) as
      Row | undefined;
    if (!row)
      throw new NotFoundError(CatalogErrorCode.BackupNotFound, `no backup ${JSON.stringify(backupId)}`);
    return this.#backup(row);
  }

  // Restores

  #restore(row: Row): RestoreView {
    const code = str(row['error_code']);
    return {
      restoreId: String(row['restore_id']),
      hostId: String(row['host_id']),
      snapshotId: String(row['snapshot_id']),
      repositoryId: String(row['repository_id']),
      target: parse(row['target'] ?? null, null),
      path: str(row['path']),
      targetPath: str(row['target_path']),
      dryRun: Boolean(row['dry_run']),
      plan: parse(row['plan'] ?? null, null),
      phase: String(row['phase']) as RestoreView['phase'],
      requestedBy: str(row['requested_by']),
      createdAt: String(row['created_at']),
      requestedAt: str(row['requested_at']),
      startedAt: str(row['started_at']),
      finishedAt: str(row['finished_at']),
      files: num(row['files']),
      bytes: num(row['bytes']),
      durationMs: num(row['duration_ms']),
      error: code !== null ? { code, reason: String(row['error_reason'] ?? '') } : null,
    };
  }

  listRestores(filter: RestoreFilter, page: PageRequest): Page<RestoreView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'snapshot_id', 's', filter.snapshotId);
    whereEqual(where, params, 'phase', 'p', filter.phase);
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'restores',
      from: 'restores',
      where,
      params,
      keys: ['created_at', 'restore_id'],
      descending: true,
      page,
    });
    return { items: rows.map((r) => this.#restore(r)), nextCursor };
  }

  getRestore(restoreId: string): RestoreView {
    const row = this.#db.prepare('SELECT * FROM restores WHERE restore_id = :r').get({ r: restoreId }) as
      Row | undefined;
    if (!row)
      throw new NotFoundError(CatalogErrorCode.RestoreNotFound, `no restore ${JSON.stringify(restoreId)}`);
    return this.#restore(row);
  }

  // Snapshots

  #snapshot(row: Row): SnapshotView {
    const id = String(row['snapshot_id']);
    return {
      snapshotId: id,
      shortId: id.slice(0, 8),
      repositoryId: String(row['repository_id']),
      hostId: String(row['host_id']),
      volumeName: String(row['volume_name']),
      backupId: row['backup_id'] ? String(row['backup_id']) : null,
      origin: row['backup_id'] ? 'backup' : 'import',
      time: String(row['time']),
      partial: row['partial'] === 1,
      stats: parse(row['stats'] ?? null, null as SnapshotView['stats']),
      forgottenAt: str(row['forgotten_at']),
    };
  }

  listSnapshots(filter: SnapshotFilter, page: PageRequest): Page<SnapshotView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'host_id', 'h', filter.hostId);
    whereEqual(where, params, 'volume_name', 'v', filter.volumeName);
    if (!filter.includeForgotten) where.push('forgotten_at IS NULL');
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'snapshots',
      from: 'snapshots',
      where,
      params,
      keys: ['time', 'snapshot_id'],
      descending: true,
      page,
    });
    return { items: rows.map((r) => this.#snapshot(r)), nextCursor };
  }

  /** A snapshot by id or unique prefix (at least 4 hex digits). */
  getSnapshot(ref: string): SnapshotView {
    const rows = this.#db
      .prepare(
        'SELECT * FROM snapshots WHERE snapshot_id >= :p AND snapshot_id < :q ORDER BY snapshot_id LIMIT 2',
      )
      .all({ p: ref, q: `${ref}g` }) as Row[];
    if (rows.length === 0) {
      throw new NotFoundError(CatalogErrorCode.SnapshotNotFound, `no snapshot ${JSON.stringify(ref)}`);
    }
    if (rows.length > 1) {
      throw new ConflictError(
        CatalogErrorCode.AmbiguousSnapshot,
        `${JSON.stringify(ref)} is the prefix of several snapshots; give more of the id`,
      );
    }
    return this.#snapshot(rows[0]!);
  }

  // Repository maintenance

  getOperation(operationId: string): RepositoryOperationView {
    const found = this.listOperations({ operationId }, { limit: 1 }).items[0];
    if (!found) {
      throw new NotFoundError(
        CatalogErrorCode.OperationNotFound,
        `no repository operation ${JSON.stringify(operationId)}`,
      );
    }
    return found;
  }

  listOperations(filter: OperationFilter, page: PageRequest): Page<RepositoryOperationView> {
    const where: string[] = [];
    const params: Params = {};
    whereEqual(where, params, 'repository_id', 'r', filter.repositoryId);
    whereEqual(where, params, 'operation', 'o', filter.operation);
    whereEqual(where, params, 'operation_id', 'id', filter.operationId);
    const { rows, nextCursor } = paginate(this.#database, {
      list: 'operations',
      from: 'repository_operations',
      where,
      params,
      keys: ['created_at', 'operation_id', 'operation'],
      descending: true,
      page,
    });
    return {
      items: rows.map((r) => {
        const code = str(r['error_code']);
        return {
          operationId: String(r['operation_id']),
          repositoryId: String(r['repository_id']),
          operation: String(r['operation']) as RepositoryOperationView['operation'],
          status: String(r['status']) as RepositoryOperationView['status'],
          createdAt: String(r['created_at']),
          requestedAt: str(r['requested_at']),
          finishedAt: str(r['finished_at']),
          hostId: str(r['host_id']),
          volumeName: str(r['volume_name']),
          summary: parse(r['summary'] ?? null, {}),
          error: code !== null ? { code, reason: String(r['error_reason'] ?? '') } : null,
        };
      }),
      nextCursor,
    };
  }

  // Status

  status(): StatusView {
    const now = this.#now().toISOString();
    const day = new Date(this.#now().getTime() - 24 * 3600_000).toISOString();
    const one = (sql: string, params: Params = {}) =>
      Number((this.#db.prepare(sql).get(params) as { n: number | null }).n ?? 0);
    const hostsTotal = one('SELECT count(*) AS n FROM hosts');
    const online = one('SELECT count(*) AS n FROM hosts WHERE offline_after >= :now', { now });
    // The newest finished backup of each successful phase: two index seeks (backups_by_outcome).
    const lastCompleted = this.#db
      .prepare(
        `SELECT max(t) AS t FROM (
           SELECT max(finished_at) AS t FROM backups WHERE phase = 'Completed'
           UNION ALL SELECT max(finished_at) FROM backups WHERE phase = 'PartiallyFailed')`,
      )
      .get() as { t: string | null };
    const totals = this.#db.prepare('SELECT snapshots, stored_bytes FROM totals WHERE id = 1').get() as {
      snapshots: number;
      stored_bytes: number;
    };
    return {
      hosts: { total: hostsTotal, online, offline: hostsTotal - online },
      volumes: {
        total: one('SELECT count(*) AS n FROM volumes WHERE removed_at IS NULL'),
        protected: one(
          'SELECT count(*) AS n FROM volumes WHERE removed_at IS NULL AND at_risk = 0 AND last_success_at IS NOT NULL',
        ),
        atRisk: one('SELECT count(*) AS n FROM volumes WHERE removed_at IS NULL AND at_risk = 1'),
        unprotected: one(
          'SELECT count(*) AS n FROM volumes WHERE removed_at IS NULL AND at_risk = 0 AND last_success_at IS NULL',
        ),
        removed: one('SELECT count(*) AS n FROM volumes WHERE removed_at IS NOT NULL'),
      },
      backups: {
        running: one("SELECT count(*) AS n FROM backups WHERE phase = 'Running'"),
        queued: one("SELECT count(*) AS n FROM backups WHERE phase = 'Queued'"),
        failedLast24h: one(
          "SELECT count(*) AS n FROM backups WHERE phase = 'Failed' AND finished_at >= :day",
          {
            day,
          },
        ),
        lastCompletedAt: lastCompleted.t,
      },
      restores: {
        running: one("SELECT count(*) AS n FROM restores WHERE phase = 'Running'"),
        queued: one("SELECT count(*) AS n FROM restores WHERE phase = 'Queued'"),
      },
      repository: (() => {
        const freed = one(
          "SELECT sum(json_extract(summary, '$.bytesFreed')) AS n FROM repository_operations WHERE operation = 'prune' AND status = 'Succeeded'",
        );
        return {
          sizeBytes: Math.max(0, totals.stored_bytes - freed),
          addedLast24hBytes: one(
            `SELECT sum(json_extract(stats, '$.bytesStored')) AS n FROM backups
             WHERE phase IN ('Completed', 'PartiallyFailed') AND finished_at >= :day`,
            { day },
          ),
        };
      })(),
      snapshots: totals.snapshots,
      policies: one('SELECT count(*) AS n FROM policies'),
      checkpoint: this.#database.checkpoint(),
    };
  }

  // Sets

  #setBackup(row: Row): SetBackupView {
    const code = str(row['error_code']);
    return {
      backupId: String(row['backup_id']),
      hostId: String(row['host_id']),
      setId: String(row['set_id']),
      phase: String(row['phase']) as SetBackupView['phase'],
      volumes: parse(row['volumes'], []),
      quiescedContainers: parse(row['quiesced'], []),
      members: parse(row['members'], []),
      failed: parse(row['failed'], []),
      startedAt: str(row['started_at']),
      finishedAt: str(row['finished_at']),
      error: code ? { code, reason: String(row['error_reason'] ?? '') } : null,
    };
  }

  /**
   * The sets of every host (or one): what the labels of its live containers and volumes gather
   * now, and sets that only have backups (their containers are gone). Sorted by host and set.
   */
  listSets(hostId?: string): SetView[] {
    const sets = new Map<
      string,
      { setId: string; hostId: string; containers: Set<string>; volumes: Set<string> }
    >();
    const entry = (host: string, setId: string) => {
      const key = `${host}\u0000${setId}`;
      let found = sets.get(key);
      if (!found) sets.set(key, (found = { setId, hostId: host, containers: new Set(), volumes: new Set() }));
      return found;
    };
    const onHost = hostId === undefined ? '' : 'WHERE host_id = :h';
    const params: Params = hostId === undefined ? {} : { h: hostId };
    for (const row of this.#db
      .prepare(`SELECT host_id, container_id, name, labels FROM containers ${onHost}`)
      .all(params) as Row[]) {
      const setId = setIdOf(parse(row['labels'], {}));
      if (!setId) continue;
      const set = entry(String(row['host_id']), setId);
      set.containers.add(String(row['name']));
      for (const mount of this.#db
        .prepare(
          "SELECT volume_name FROM container_mounts WHERE host_id = :h AND container_id = :c AND type = 'volume' AND volume_name IS NOT NULL",
        )
        .all({ h: row['host_id'] ?? null, c: row['container_id'] ?? null }) as Row[]) {
        set.volumes.add(String(mount['volume_name']));
      }
    }
    for (const row of this.#db
      .prepare(
        `SELECT host_id, volume_name, labels FROM volumes ${onHost ? `${onHost} AND` : 'WHERE'} removed_at IS NULL`,
      )
      .all(params) as Row[]) {
      const setId = setIdOf(parse(row['labels'], {}));
      if (setId) entry(String(row['host_id']), setId).volumes.add(String(row['volume_name']));
    }
    for (const row of this.#db
      .prepare(`SELECT DISTINCT host_id, set_id FROM set_backups ${onHost}`)
      .all(params) as Row[]) {
      entry(String(row['host_id']), String(row['set_id']));
    }
    return [...sets.values()]
      .sort((a, b) => a.hostId.localeCompare(b.hostId) || a.setId.localeCompare(b.setId))
      .map((s) => ({
        setId: s.setId,
        hostId: s.hostId,
        containers: [...s.containers].sort(),
        volumes: [...s.volumes].sort(),
        lastBackup: this.#latestSetBackup(s.hostId, s.setId, false),
        lastRestorable: this.#latestSetBackup(s.hostId, s.setId, true),
      }));
  }

  #latestSetBackup(hostId: string, setId: string, restorable: boolean): SetBackupView | null {
    const row = this.#db
      .prepare(
        `SELECT * FROM set_backups WHERE host_id = :h AND set_id = :s
         ${restorable ? "AND phase IN ('Completed', 'PartiallyFailed')" : ''}
         ORDER BY COALESCE(started_at, finished_at) DESC LIMIT 1`,
      )
      .get({ h: hostId, s: setId }) as Row | undefined;
    return row ? this.#setBackup(row) : null;
  }

  /** One set on one host, or {@link NotFoundError}. */
  getSet(hostId: string, setId: string): SetView {
    const set = this.listSets(hostId).find((s) => s.setId === setId);
    if (!set)
      throw new NotFoundError(
        CatalogErrorCode.SetNotFound,
        `host ${JSON.stringify(hostId)} has no set ${JSON.stringify(setId)}`,
      );
    return set;
  }

  /** A set's backups, newest first (at most 100). */
  listSetBackups(hostId: string, setId: string): SetBackupView[] {
    return (
      this.#db
        .prepare(
          `SELECT * FROM set_backups WHERE host_id = :h AND set_id = :s
           ORDER BY COALESCE(started_at, finished_at) DESC LIMIT 100`,
        )
        .all({ h: hostId, s: setId }) as Row[]
    ).map((row) => this.#setBackup(row));
  }

  getSetBackup(backupId: string): SetBackupView {
    const row = this.#db.prepare('SELECT * FROM set_backups WHERE backup_id = :b').get({ b: backupId }) as
      Row | undefined;
    if (!row)
      throw new NotFoundError(
        CatalogErrorCode.SetBackupNotFound,
        `no set backup ${JSON.stringify(backupId)}`,
      );
    return this.#setBackup(row);
  }

  getSetRestore(restoreId: string): SetRestoreView {
    const row = this.#db.prepare('SELECT * FROM set_restores WHERE restore_id = :r').get({ r: restoreId }) as
      Row | undefined;
    if (!row)
      throw new NotFoundError(
        CatalogErrorCode.RestoreNotFound,
        `no set restore ${JSON.stringify(restoreId)}`,
      );
    const code = str(row['error_code']);
    return {
      restoreId: String(row['restore_id']),
      hostId: String(row['host_id']),
      setId: String(row['set_id']),
      setBackupId: String(row['set_backup_id']),
      phase: String(row['phase']) as SetRestoreView['phase'],
      dryRun: Boolean(row['dry_run']),
      members: parse(row['members'], []),
      containers: parse(row['containers'], []),
      requestedAt: str(row['requested_at']),
      finishedAt: str(row['finished_at']),
      error: code
        ? { code, reason: String(row['error_reason'] ?? ''), failedVolume: str(row['failed_volume']) }
        : null,
    };
  }
}
