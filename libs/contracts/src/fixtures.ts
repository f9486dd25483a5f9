import type { z } from 'zod';
import type { CommandDefinition, EventDefinition, MessageDefinition } from './define.ts';
import type { COMMANDS, EVENTS } from './registry.ts';

// Test fixtures: one realistic, valid `data` per message, for this library's tests and for any
// library that needs a message to publish or parse. Ids carry dots on purpose (the subject encoding).

/** Ids the fixtures share, so tests can build subjects and assertions from them. */
export const FIXTURE_IDS = {
  hostId: 'docker-prod-01.example.com',
  otherHostId: 'docker-staging.example.com',
  volumeName: 'shop_db.data',
  otherVolumeName: 'grafana-storage.v2',
  anonymousVolumeName: '3f1c9d2e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e',
  containerId: '9a3b5c7d1e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b',
  containerName: 'shop-db-1',
  backupId: 'bk-2025-03-14T03:00:00Z-shop_db.data',
  restoreId: 'rs-01JQ3Z8K6N2V5W7X9Y1A3B5C7D',
  policyId: 'volume:docker-prod-01.example.com:shop_db.data',
  operationId: 'op-forget-2025-03-14.shop_db.data',
  snapshotId: '4bd1b3a0f0c2e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4',
  parentSnapshotId: '1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f',
  repositoryId: 'default',
} as const;

const ids = FIXTURE_IDS;

/** The members of the set restore the set fixtures share. */
const setRestoreMembers = [
  {
    restoreId: `${ids.restoreId}.0`,
    snapshotId: ids.snapshotId,
    volumeName: ids.volumeName,
    target: { kind: 'new-volume' as const, volumeName: 'shop_db.data-restored' },
  },
];
const setKey = { backupId: 'set-2025-03-14T03:00:00Z-shop', hostId: ids.hostId, setId: 'compose:shop' };

const stats = {
  filesNew: 12,
  filesChanged: 3,
  filesUnmodified: 4_180,
  dirsNew: 1,
  dirsChanged: 2,
  dirsUnmodified: 311,
  bytesRead: 734_003_200,
  bytesAdded: 18_874_368,
  bytesStored: 6_291_456,
  durationMs: 41_250,
};

/** Any definition in the registry, with its literal type and schema. */
type RegisteredDefinition = (typeof EVENTS)[number] | (typeof COMMANDS)[number];

/** Valid `data` (schema input: defaults may be left out) for every registered message, by `type`. */
export type MessageFixtures = { readonly [D in RegisteredDefinition as D['type']]: z.input<D['schema']> };

/**
 * One valid `data` per message type. The mapped type makes a missing entry a compile error; the
 * contract tests also fail, by name, for any message in MESSAGES without one.
 */
export const MESSAGE_FIXTURES: MessageFixtures = {
  'io.volback.host.registered.v1': {
    hostId: ids.hostId,
    name: 'docker-prod-01',
    engine: {
      id: '7d3c4c2b-6a0e-4d1f-9c61-2f7f8f0e9b3a',
      version: '28.0.1',
      apiVersion: '1.48',
      os: 'Ubuntu 24.04.2 LTS',
      arch: 'x86_64',
      storageDriver: 'overlay2',
      volumesRoot: '/var/lib/docker/volumes',
    },
    agentVersion: '0.1.0',
    registeredAt: '2025-03-14T02:59:00.000Z',
  },
  'io.volback.host.seen.v1': {
    hostId: ids.hostId,
    seenAt: '2025-03-14T03:00:30.000Z',
    intervalSeconds: 30,
    containers: 14,
    volumes: 9,
    backupsRunning: 1,
  },
  'io.volback.volume.discovered.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    driver: 'local',
    labels: { 'com.docker.compose.project': 'shop', 'io.volback.schedule': '0 3 * * *' },
    anonymous: false,
    mountpoint: `/var/lib/docker/volumes/${ids.volumeName}/_data`,
    createdAt: '2025-01-02T10:15:00+01:00',
    discoveredAt: '2025-03-14T02:59:01.000Z',
  },
  'io.volback.volume.changed.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    change: 'mounted',
    containerId: ids.containerId,
    sizeBytes: 734_003_200,
    changedAt: '2025-03-14T02:59:02.000Z',
  },
  'io.volback.volume.removed.v1': {
    hostId: ids.hostId,
    volumeName: ids.otherVolumeName,
    removedAt: '2025-03-14T08:12:44.000Z',
  },
  'io.volback.volume.at-risk.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    lastSuccessAt: '2025-03-12T03:00:41.000Z',
    rpoSeconds: 172_800,
    reason: 'last successful backup is 50 hours old; the policy allows 48',
    detectedAt: '2025-03-14T05:00:00.000Z',
  },
  'io.volback.volume.protection-restored.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    lastSuccessAt: '2025-03-14T05:10:41.000Z',
    restoredAt: '2025-03-14T05:10:42.000Z',
  },
  'io.volback.volume.backup-scheduled.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    nextDueAt: '2025-03-15T03:04:17.000Z',
    policyId: ids.policyId,
    schedule: '0 3 * * *',
    timezone: 'UTC',
  },
  'io.volback.container.observed.v1': {
    hostId: ids.hostId,
    containerId: ids.containerId,
    name: ids.containerName,
    image: 'postgres:17.4',
    imageDigest: 'postgres@sha256:3962158596daaef3682838cc8eb0e719ad1ce520f88e34596ce8d5de1b6330a1',
    labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'db' },
    state: 'running',
    compose: { project: 'shop', service: 'db' },
    mounts: [
      {
        type: 'volume',
        volumeName: ids.volumeName,
        destination: '/var/lib/postgresql/data',
        readOnly: false,
      },
      {
        type: 'bind',
        source: '/etc/shop/pg.conf',
        destination: '/etc/postgresql/postgresql.conf',
        readOnly: true,
      },
      { type: 'tmpfs', destination: '/run/postgresql' },
    ],
    createdAt: '2025-03-01T09:00:00.000Z',
    observedAt: '2025-03-14T02:59:01.500Z',
  },
  'io.volback.container.started.v1': {
    hostId: ids.hostId,
    containerId: ids.containerId,
    name: ids.containerName,
    startedAt: '2025-03-14T03:00:44.000Z',
  },
  'io.volback.container.stopped.v1': {
    hostId: ids.hostId,
    containerId: ids.containerId,
    name: ids.containerName,
    exitCode: 0,
    byVolback: true,
    stoppedAt: '2025-03-14T03:00:02.000Z',
  },
  'io.volback.container.removed.v1': {
    hostId: ids.hostId,
    containerId: ids.containerId,
    removedAt: '2025-03-14T09:30:00.000Z',
  },
  'io.volback.policy.defined.v1': {
    policyId: ids.policyId,
    scope: { kind: 'volume', hostId: ids.hostId, volumeName: ids.volumeName },
    origin: 'api',
    policy: {
      schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      retention: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
      excludes: ['pg_wal/*.tmp'],
      consistency: { mode: 'stop' },
      rpoSeconds: 172_800,
    },
    definedBy: 'ops@example.com',
    definedAt: '2025-03-13T17:45:00.000Z',
  },
  'io.volback.policy.removed.v1': {
    policyId: ids.policyId,
    removedBy: 'ops@example.com',
    removedAt: '2025-03-20T11:00:00.000Z',
  },
  'io.volback.policy.rejected.v1': {
    policyId: `labels:${ids.hostId}:${ids.otherVolumeName}`,
    hostId: ids.hostId,
    volumeName: ids.otherVolumeName,
    label: 'io.volback.schedule',
    value: 'every night',
    reason: 'io.volback.schedule: a cron expression of 5 or 6 fields',
    rejectedAt: '2025-03-14T02:59:01.000Z',
  },
  'io.volback.backup.requested.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    trigger: 'schedule',
    slot: '2025-03-14T03:00:00.000Z',
    requestedAt: '2025-03-14T03:00:00.120Z',
  },
  'io.volback.backup.started.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    method: 'direct',
    parentSnapshotId: ids.parentSnapshotId,
    quiescedContainers: [ids.containerName],
    startedAt: '2025-03-14T03:00:02.500Z',
  },
  'io.volback.backup.completed.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    snapshotId: ids.snapshotId,
    stats,
    dumps: [
      {
        container: ids.containerName,
        preset: 'postgres',
        mode: 'alongside',
        path: `/.volback/dumps/${ids.containerName}.sql`,
        sizeBytes: 73_400_320,
        durationMs: 9_120,
      },
    ],
    completedAt: '2025-03-14T03:00:43.750Z',
  },
  'io.volback.backup.partially-failed.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    snapshotId: ids.snapshotId,
    repositoryId: ids.repositoryId,
    stats,
    unreadable: [{ path: 'pg_stat_tmp/global.stat', reason: 'open: permission denied' }],
    unreadableCount: 1,
    completedAt: '2025-03-14T03:00:43.750Z',
  },
  'io.volback.backup.failed.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    code: 'VOLBACK_HOOK_FAILED',
    reason: 'pre hook `pg_dumpall` exited with 1: connection refused',
    attempt: 2,
    willRetry: true,
    failedAt: '2025-03-14T03:05:10.000Z',
  },
  'io.volback.backup.abandoned.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    slot: '2025-03-14T03:00:00.000Z',
    attempts: 3,
    lastBackupId: `${ids.backupId}-retry3`,
    code: 'VOLBACK_HOOK_FAILED',
    reason: 'pre hook `pg_dumpall` exited with 1: connection refused',
    abandonedAt: '2025-03-14T03:35:10.000Z',
  },
  'io.volback.restore.requested.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    snapshotId: ids.snapshotId,
    target: { kind: 'new-volume', volumeName: 'shop_db.data.restored-2025-03-14' },
    path: 'base/16384',
    requestedBy: 'ops@example.com',
    requestedAt: '2025-03-14T10:00:00.000Z',
  },
  'io.volback.restore.started.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    snapshotId: ids.snapshotId,
    target: { kind: 'existing-volume', volumeName: ids.volumeName, stopContainers: true },
    startedAt: '2025-03-14T10:00:01.000Z',
  },
  'io.volback.restore.completed.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    snapshotId: ids.snapshotId,
    target: { kind: 'existing-volume', volumeName: ids.volumeName },
    files: 0,
    bytes: 0,
    durationMs: 1_300,
    dryRun: true,
    plan: {
      written: { count: 1, bytes: 8_192, paths: ['/base/16384/2619'] },
      replaced: { count: 2, bytes: 16_384, paths: ['/base/16384/1247', '/base/16384/1249'] },
      leftAlone: { count: 1, bytes: 0, paths: ['/base/16384/pg_internal.init'] },
    },
    skipped: {
      devices: { count: 1, bytes: 0, paths: ['/dev/sda'] },
      specialModes: { count: 1, bytes: 18_872, paths: ['/bin/su-helper'] },
    },
    completedAt: '2025-03-14T10:00:59.300Z',
  },
  'io.volback.restore.failed.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    snapshotId: ids.snapshotId,
    code: 'VOLBACK_VOLUME_IN_USE',
    reason: `volume ${ids.volumeName} is used by running container ${ids.containerName}; nothing was written`,
    failedAt: '2025-03-14T10:00:01.000Z',
  },
  'io.volback.repository.snapshots-forgotten.v1': {
    operationId: ids.operationId,
    repositoryId: ids.repositoryId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    retention: { keepDaily: 7, keepWeekly: 4 },
    forgotten: [ids.parentSnapshotId],
    kept: [ids.snapshotId],
    forgottenAt: '2025-03-14T04:00:05.000Z',
  },
  'io.volback.repository.pruned.v1': {
    operationId: 'op-prune-2025-03-16',
    repositoryId: ids.repositoryId,
    packsDeleted: 37,
    packsRepacked: 5,
    blobsRemoved: 1_204,
    bytesFreed: 402_653_184,
    durationMs: 95_000,
    prunedAt: '2025-03-16T04:31:35.000Z',
  },
  'io.volback.repository.checked.v1': {
    operationId: 'op-check-2025-03-16',
    repositoryId: ids.repositoryId,
    ok: false,
    readDataFraction: 0.1,
    packsChecked: 2_048,
    errors: ['pack 5e8f…: blob 0a1b… has wrong hash'],
    damagedBlobs: ['0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9'],
    damagedSnapshots: [ids.parentSnapshotId],
    durationMs: 310_000,
    checkedAt: '2025-03-16T05:10:00.000Z',
  },
  'io.volback.repository.maintenance-requested.v1': {
    operationId: 'op-prune-2025-03-16',
    repositoryId: ids.repositoryId,
    operation: 'prune',
    slot: '2025-03-16T04:00:00.000Z',
    attempt: 1,
    requestedBy: 'scheduler',
    requestedAt: '2025-03-16T04:00:03.000Z',
  },
  'io.volback.repository.maintenance-failed.v1': {
    operationId: 'op-prune-2025-03-16',
    repositoryId: ids.repositoryId,
    operation: 'prune',
    code: 'VOLBACK_REPOSITORY_LOCKED',
    reason: 'an exclusive lock is held by gateway-2 since 2025-03-16T04:00:00Z',
    failedAt: '2025-03-16T04:30:00.000Z',
  },
  'io.volback.repository.import-requested.v1': {
    operationId: 'import-2025-03-20',
    repositoryId: ids.repositoryId,
    requestedBy: 'volback-cli',
    requestedAt: '2025-03-20T09:00:00.000Z',
  },
  'io.volback.snapshot.imported.v1': {
    snapshotId: ids.snapshotId,
    repositoryId: ids.repositoryId,
    operationId: 'import-2025-03-20',
    hostId: ids.hostId,
    hostName: 'docker-prod-01',
    volumeName: ids.volumeName,
    time: '2025-03-14T03:00:02.125Z',
    paths: [`/volumes/${ids.volumeName}`],
    tags: ['volback', `volume:${ids.volumeName}`, 'host:docker-prod-01', `host-id:${ids.hostId}`],
    importedAt: '2025-03-20T09:00:04.000Z',
  },
  'io.volback.repository.import-completed.v1': {
    operationId: 'import-2025-03-20',
    repositoryId: ids.repositoryId,
    snapshots: 214,
    imported: 201,
    alreadyKnown: 12,
    skipped: 1,
    durationMs: 5_400,
    completedAt: '2025-03-20T09:00:05.400Z',
  },
  'io.volback.repository.import-failed.v1': {
    operationId: 'import-2025-03-20',
    repositoryId: ids.repositoryId,
    code: 'REPOSITORY_UNAVAILABLE',
    reason: 'the storage did not answer: connect ECONNREFUSED 192.0.2.5:9000',
    failedAt: '2025-03-20T09:00:30.000Z',
  },
  'io.volback.message.rejected.v1': {
    consumer: 'scheduler.commands',
    stream: 'VOLBACK_COMMANDS',
    streamSequence: 1_042,
    subject: 'volback.cmd.scheduler.define-policy',
    messageId: '5b8e2f0c-3d4a-4b6c-9e1f-7a2b3c4d5e6f',
    messageType: 'io.volback.cmd.define-policy.v1',
    code: 'VOLBACK_CONTRACT_INVALID_DATA',
    reason: 'io.volback.cmd.define-policy.v1: data.policy.retention: a retention policy must keep something',
    issues: [{ path: 'data.policy.retention', message: 'a retention policy must keep something' }],
    payloadBytes: 612,
    rejectedAt: '2025-03-14T11:00:00.000Z',
  },
  'io.volback.cmd.backup-volume.v1': {
    backupId: ids.backupId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    trigger: 'schedule',
    parentSnapshotId: ids.parentSnapshotId,
  },
  'io.volback.cmd.restore-snapshot.v2': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    snapshotId: ids.snapshotId,
    target: { kind: 'existing-volume', volumeName: ids.volumeName },
    path: 'base/16384',
    targetPath: 'restored-2025-03-14',
    dryRun: true,
    preserveSpecialModes: false,
  },
  'io.volback.backup.set-started.v1': {
    ...setKey,
    volumes: [ids.volumeName, 'shop_uploads'],
    quiescedContainers: ['shop-web-1', ids.containerName],
    startedAt: '2025-03-14T03:00:01.000Z',
  },
  'io.volback.backup.set-completed.v1': {
    ...setKey,
    members: [
      {
        volumeName: ids.volumeName,
        backupId: `set-2025-03-14T03:00:00Z-shop.${ids.volumeName}`,
        snapshotId: ids.snapshotId,
      },
      {
        volumeName: 'shop_uploads',
        backupId: 'set-2025-03-14T03:00:00Z-shop.shop_uploads',
        snapshotId: ids.parentSnapshotId,
      },
    ],
    quiescedContainers: ['shop-web-1', ids.containerName],
    durationMs: 52_000,
    completedAt: '2025-03-14T03:00:53.000Z',
  },
  'io.volback.backup.set-partially-failed.v1': {
    ...setKey,
    members: [
      {
        volumeName: ids.volumeName,
        backupId: `set-2025-03-14T03:00:00Z-shop.${ids.volumeName}`,
        snapshotId: ids.snapshotId,
      },
    ],
    failed: [
      {
        volumeName: 'shop_uploads',
        backupId: 'set-2025-03-14T03:00:00Z-shop.shop_uploads',
        code: 'VOLBACK_GATEWAY_UNAVAILABLE',
        reason: 'no gateway answered within 30 s',
      },
    ],
    durationMs: 52_000,
    completedAt: '2025-03-14T03:00:53.000Z',
  },
  'io.volback.backup.set-failed.v1': {
    backupId: 'set-2025-03-14T03:00:00Z-shop',
    hostId: ids.hostId,
    setId: 'group:billing',
    code: 'VOLBACK_SET_NOT_FOUND',
    reason: 'no container or volume on this host belongs to set group:billing',
    failedAt: '2025-03-14T03:00:01.000Z',
  },
  'io.volback.restore.set-requested.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    setId: 'compose:shop',
    setBackupId: 'set-2025-03-14T03:00:00Z-shop',
    members: setRestoreMembers,
    recreateContainers: true,
    requestedBy: 'ops@example.com',
    requestedAt: '2025-03-14T10:00:00.000Z',
  },
  'io.volback.restore.set-completed.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    setId: 'compose:shop',
    setBackupId: 'set-2025-03-14T03:00:00Z-shop',
    members: setRestoreMembers,
    containers: [
      {
        name: 'shop-db-1-restored',
        originalName: ids.containerName,
        image: 'postgres:17',
        imagePresent: true,
        mounts: ['shop_db.data-restored:/var/lib/postgresql/data'],
        networks: ['shop_default'],
        ports: ['127.0.0.1:5432->5432/tcp'],
        restartPolicy: 'unless-stopped',
        envCount: 3,
        warnings: [],
        outcome: 'started',
      },
    ],
    durationMs: 9_000,
    completedAt: '2025-03-14T10:01:00.000Z',
  },
  'io.volback.restore.set-failed.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    setId: 'compose:shop',
    setBackupId: 'set-2025-03-14T03:00:00Z-shop',
    code: 'VOLBACK_SET_MEMBER_FAILED',
    reason: `volume ${ids.volumeName} was not restored: volume shop_db.data-restored already exists`,
    failedVolume: ids.volumeName,
    failedAt: '2025-03-14T10:00:02.000Z',
  },
  'io.volback.cmd.backup-set.v1': {
    ...setKey,
    trigger: 'manual',
  },
  'io.volback.cmd.restore-set.v1': {
    restoreId: ids.restoreId,
    hostId: ids.otherHostId,
    setId: 'compose:shop',
    setBackupId: 'set-2025-03-14T03:00:00Z-shop',
    members: setRestoreMembers,
    recreateContainers: true,
    containerSuffix: '-restored',
    dryRun: true,
  },
  'io.volback.cmd.request-backup.v1': {
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    requestedBy: 'ci@example.com',
    note: 'deployed shop 4.2.0',
  },
  'io.volback.cmd.define-policy.v1': {
    policyId: 'default',
    scope: { kind: 'default' },
    policy: {
      schedule: { cron: '0 30 2 * * *' },
      retention: { keepLast: 3, keepDaily: 14, keepWithin: '2d' },
      consistency: {
        mode: 'hooks',
        container: ids.containerName,
        pre: ['pg_dumpall -U postgres -f /var/lib/postgresql/data/dump.sql'],
        post: ['rm -f /var/lib/postgresql/data/dump.sql'],
      },
    },
    requestedBy: 'ops@example.com',
  },
  'io.volback.cmd.remove-policy.v1': { policyId: ids.policyId, requestedBy: 'ops@example.com' },
  'io.volback.cmd.forget-snapshots.v1': {
    operationId: ids.operationId,
    hostId: ids.hostId,
    volumeName: ids.volumeName,
    retention: { keepDaily: 7, keepWeekly: 4 },
  },
  'io.volback.cmd.prune-repository.v1': { operationId: 'op-prune-2025-03-16', maxUnusedFraction: 0.1 },
  'io.volback.cmd.check-repository.v1': { operationId: 'op-check-2025-03-16', readDataFraction: 0.1 },
  'io.volback.cmd.import-snapshots.v1': { operationId: 'import-2025-03-20' },
};

/** Whether {@link MESSAGE_FIXTURES} has data for this definition. */
export function hasSampleData(def: MessageDefinition): boolean {
  return Object.hasOwn(MESSAGE_FIXTURES, def.type);
}

/**
 * A fresh copy of the fixture `data` of a message, with `overrides` merged on top (shallow), ready
 * for `createEvent` / `createCommand`. Throws for a definition without a fixture.
 */
export function sampleData<Type extends string, Schema extends z.ZodType>(
  def: EventDefinition<string, Type, Schema> | CommandDefinition<string, Type, Schema>,
  overrides: Partial<z.input<Schema>> = {},
): z.input<Schema> {
  if (!hasSampleData(def))
    throw new RangeError(`no fixture for ${def.type} in libs/contracts/src/fixtures.ts`);
  const base = (MESSAGE_FIXTURES as Record<string, unknown>)[def.type];
  return { ...structuredClone(base as object), ...overrides } as z.input<Schema>;
}
