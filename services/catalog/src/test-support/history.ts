import {
  BackupCompleted,
  BackupFailed,
  BackupRequested,
  BackupStarted,
  ContainerObserved,
  createEvent,
  createMessage,
  EVENTS,
  FIXTURE_IDS,
  HostRegistered,
  HostSeen,
  MESSAGE_FIXTURES,
  PolicyDefined,
  VolumeBackupScheduled,
  VolumeDiscovered,
  type OutgoingMessage,
} from '@volback/contracts';

/** The clock of the API tests: a minute after the fixtures' heartbeat, so the fixture host is online. */
export const TEST_NOW = new Date('2025-03-14T03:01:00.000Z');

export const HISTORY_IDS = {
  ...FIXTURE_IDS,
  secondHost: 'catalog-test-host-2',
  volumes: ['alpha', 'beta.data', 'gamma'],
} as const;

const snapshotIdOf = (n: number) => n.toString(16).padStart(4, '0').repeat(16);
const stats = {
  filesNew: 1,
  filesChanged: 0,
  filesUnmodified: 0,
  dirsNew: 1,
  dirsChanged: 0,
  dirsUnmodified: 0,
  bytesRead: 10,
  bytesAdded: 10,
  bytesStored: 8,
  durationMs: 5,
};

/**
 * A history that touches every event type (the contracts' fixture of each, in registry order)
 * plus a second host with three volumes, a container, and several backups (for pagination).
 */
export function testHistory(): OutgoingMessage[] {
  const source = 'volback://catalog-test';
  const history: OutgoingMessage[] = [];
  for (const def of EVENTS) {
    const data = (MESSAGE_FIXTURES as Record<string, unknown>)[def.type];
    history.push(createMessage(def, data, { source }));
  }
  const host = HISTORY_IDS.secondHost;
  history.push(
    createEvent(
      HostRegistered,
      {
        hostId: host,
        name: 'second',
        engine: { id: 'engine-2', version: '28.0.1', apiVersion: '1.48', os: 'Debian', arch: 'x86_64' },
        agentVersion: '0.1.0',
        registeredAt: '2025-03-14T01:00:00.000Z',
      },
      { source },
    ),
    // Its last heartbeat is long ago: offline at TEST_NOW.
    createEvent(
      HostSeen,
      {
        hostId: host,
        seenAt: '2025-03-14T01:00:05.000Z',
        intervalSeconds: 30,
        containers: 1,
        volumes: 3,
        backupsRunning: 0,
      },
      { source },
    ),
  );
  for (const volumeName of HISTORY_IDS.volumes) {
    history.push(
      createEvent(
        VolumeDiscovered,
        {
          hostId: host,
          volumeName,
          driver: 'local',
          anonymous: false,
          labels: { tier: volumeName === 'alpha' ? 'gold' : 'bronze' },
          discoveredAt: '2025-03-14T01:00:01.000Z',
        },
        { source },
      ),
    );
  }
  history.push(
    createEvent(
      ContainerObserved,
      {
        hostId: host,
        containerId: 'c0ffee'.padEnd(64, '0'),
        name: 'app-1',
        image: 'app:1',
        state: 'running',
        mounts: [{ type: 'volume', volumeName: 'alpha', destination: '/data', readOnly: false }],
        observedAt: '2025-03-14T01:00:02.000Z',
      },
      { source },
    ),
  );
  history.push(
    createEvent(
      PolicyDefined,
      {
        policyId: 'catalog-test-policy',
        scope: { kind: 'volume', hostId: host, volumeName: 'alpha' },
        origin: 'api',
        policy: { schedule: { cron: '0 3 * * *' }, retention: { keepLast: 3 }, excludes: ['*.tmp'] },
        definedAt: '2025-03-14T01:00:03.000Z',
      },
      { source },
    ),
  );
  for (let i = 0; i < 7; i++) {
    const backupId = `catalog-test-backup-${i}`;
    const key = { backupId, hostId: host, volumeName: 'alpha' };
    const minute = String(10 + i).padStart(2, '0');
    history.push(
      createEvent(
        BackupRequested,
        { ...key, trigger: 'manual', requestedAt: `2025-03-14T02:${minute}:00.000Z` },
        { source },
      ),
      createEvent(
        BackupStarted,
        { ...key, method: 'direct', startedAt: `2025-03-14T02:${minute}:01.000Z` },
        { source },
      ),
      i === 3
        ? createEvent(
            BackupFailed,
            {
              ...key,
              code: 'VOLBACK_TEST_FAILURE',
              reason: 'disk on fire',
              failedAt: `2025-03-14T02:${minute}:09.000Z`,
            },
            { source },
          )
        : createEvent(
            BackupCompleted,
            {
              ...key,
              snapshotId: snapshotIdOf(i + 1),
              stats,
              completedAt: `2025-03-14T02:${minute}:09.000Z`,
            },
            { source },
          ),
    );
  }
  // The scheduler announces alpha's next slot; beta.data and gamma have none.
  history.push(
    createEvent(
      VolumeBackupScheduled,
      {
        hostId: host,
        volumeName: 'alpha',
        nextDueAt: '2025-03-15T03:07:12.000Z',
        policyId: 'catalog-test-policy',
        schedule: '0 3 * * *',
        timezone: 'UTC',
      },
      { source },
    ),
  );
  return history;
}

/** Every read of the API, for comparing two catalogs (live and rebuilt). */
export const READ_URLS = [
  '/v1/status',
  '/v1/hosts',
  '/v1/hosts?status=online',
  '/v1/hosts?status=offline',
  `/v1/hosts/${encodeURIComponent(HISTORY_IDS.hostId)}`,
  '/v1/volumes?includeRemoved=true',
  '/v1/volumes',
  '/v1/volumes?status=protected',
  '/v1/volumes?label=tier%3Dgold',
  `/v1/hosts/${HISTORY_IDS.secondHost}/volumes/alpha`,
  `/v1/hosts/${HISTORY_IDS.secondHost}/volumes/alpha/snapshots`,
  '/v1/containers',
  '/v1/containers?volume=alpha',
  '/v1/policies',
  '/v1/backups',
  `/v1/backups?host=${HISTORY_IDS.secondHost}&limit=2`,
  '/v1/backups?phase=Failed',
  '/v1/restores',
  '/v1/snapshots?includeForgotten=true',
  '/v1/snapshots',
  '/v1/repository/operations',
] as const;
