import { jetstreamManager } from '@nats-io/jetstream';
import {
  BackupSetCompleted,
  BackupSetStarted,
  commandSubject,
  RestoreSetCompleted,
  createEvent,
  STREAMS,
} from '@volback/contracts';
import { MessagePublisher, RestoreGrants } from '@volback/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { accessToken } from './http/tokens.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { HISTORY_IDS } from './test-support/history.ts';

const READ = 'read-token-sets-0123456789';
const WRITE = 'write-token-sets-0123456789';
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const second = HISTORY_IDS.secondHost;
/** The history's first snapshot of `alpha` on the second host. */
const ALPHA_SNAPSHOT = '0001'.repeat(16);

describe('backup sets in the catalog API (a catalog fed by a real NATS server)', () => {
  let stack: CatalogTestStack;
  let catalog: Catalog;

  const get = (url: string) => catalog.app.inject({ method: 'GET', url, headers: auth(READ) });
  const post = (url: string, body: object, token = WRITE) =>
    catalog.app.inject({ method: 'POST', url, headers: auth(token), payload: body });
  const commandsOn = async (subject: string) => {
    const jsm = await jetstreamManager(stack.nc);
    const info = await jsm.streams.info(STREAMS.commands.name, { subjects_filter: subject });
    return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  };
  const restoreSetSubject = commandSubject({ kind: 'host', hostId: second }, 'restore-set');

  beforeAll(async () => {
    stack = await CatalogTestStack.start('sets');
    // A completed set backup of `group:app` on the second host: `alpha` at one point in time.
    const publisher = new MessagePublisher(stack.nc);
    const key = { backupId: 'set-app-1', hostId: second, setId: 'group:app' };
    await publisher.publish(
      createEvent(
        BackupSetStarted,
        { ...key, volumes: ['alpha'], startedAt: '2025-03-14T02:00:00.000Z' },
        {
          source: `volback://agent/${second}`,
        },
      ),
    );
    await publisher.publish(
      createEvent(
        BackupSetCompleted,
        {
          ...key,
          members: [{ volumeName: 'alpha', backupId: 'set-app-1.alpha', snapshotId: ALPHA_SNAPSHOT }],
          durationMs: 1_000,
          completedAt: '2025-03-14T02:00:01.000Z',
        },
        { source: `volback://agent/${second}` },
      ),
    );
    catalog = await stack.catalog('sets-test', {
      access: { tokens: [accessToken('read', 'read', READ), accessToken('write', 'write', WRITE)] },
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('lists the set with its last backup and the member snapshots', async () => {
    const res = await get(`/v1/sets?hostId=second`);
    expect(res.statusCode).toBe(200);
    const set = (
      res.json() as { items: { setId: string; lastRestorable: { members: unknown[] } | null }[] }
    ).items.find((s) => s.setId === 'group:app');
    expect(set?.lastRestorable?.members).toEqual([
      { volumeName: 'alpha', backupId: 'set-app-1.alpha', snapshotId: ALPHA_SNAPSHOT },
    ]);
    expect((await get('/v1/set-backups/set-app-1')).json()).toMatchObject({
      phase: 'Completed',
      setId: 'group:app',
    });
  });

  it('refuses bad input clearly and sends nothing', async () => {
    expect((await get('/v1/sets/not-a-set')).statusCode).toBe(400);
    const unknown = await post('/v1/sets/compose:ghost/backups', {});
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'VOLBACK_CATALOG_SET_NOT_FOUND' });
    const badSuffix = await post('/v1/sets/group:app/restores', { volumeSuffix: 'a/b' });
    expect(badSuffix.statusCode).toBe(400);
    const noBackup = await post('/v1/sets/group:app/restores', { setBackupId: 'set-missing' });
    expect(noBackup.statusCode).toBe(404);
    expect(noBackup.json()).toMatchObject({ code: 'VOLBACK_CATALOG_SET_BACKUP_NOT_FOUND' });
    const taken = await post('/v1/sets/group:app/restores', { volumeSuffix: '' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'VOLBACK_CATALOG_VOLUME_EXISTS' });
    expect((await post('/v1/sets/group:app/restores', {}, READ)).statusCode).toBe(403);
    expect(await commandsOn(restoreSetSubject)).toBe(0);
  });

  it('a restore grants each member snapshot to the target host, records the request and sends RestoreSet', async () => {
    const res = await post('/v1/sets/group:app/restores', { recreateContainers: true, dryRun: true });
    expect(res.statusCode).toBe(202);
    const { restoreId, setBackupId } = res.json() as { restoreId: string; setBackupId: string };
    expect(setBackupId).toBe('set-app-1');
    expect(await new RestoreGrants(stack.nc).get(`${restoreId}.0`)).toMatchObject({
      hostId: second,
      snapshotId: ALPHA_SNAPSHOT,
    });
    const jsm = await jetstreamManager(stack.nc);
    const sent = await jsm.streams.getMessage(STREAMS.commands.name, { last_by_subj: restoreSetSubject });
    expect((sent!.json() as { data: unknown }).data).toMatchObject({
      restoreId,
      setId: 'group:app',
      recreateContainers: true,
      dryRun: true,
      members: [
        {
          restoreId: `${restoreId}.0`,
          snapshotId: ALPHA_SNAPSHOT,
          volumeName: 'alpha',
          target: { kind: 'new-volume', volumeName: 'alpha-restored' },
        },
      ],
    });
    await catalog.caughtUp();
    expect((await get(`/v1/set-restores/${restoreId}`)).json()).toMatchObject({
      phase: 'Queued',
      dryRun: true,
    });
  });

  it('a dry run’s answer names each container it would create: image (present or not), mounts, warnings', async () => {
    const res = await post('/v1/sets/group:app/restores', { recreateContainers: true, dryRun: true });
    const { restoreId } = res.json() as { restoreId: string };
    const container = {
      name: 'app-web-1',
      originalName: 'app-web-1',
      image: 'example/web:2',
      imagePresent: false,
      mounts: ['alpha-restored:/srv'],
      networks: ['app_default'],
      ports: ['8080/tcp'],
      restartPolicy: 'unless-stopped',
      envCount: 3,
      warnings: ['network app_default does not exist on the engine'],
      outcome: 'would-create' as const,
    };
    await new MessagePublisher(stack.nc).publish(
      createEvent(
        RestoreSetCompleted,
        {
          restoreId,
          hostId: second,
          setId: 'group:app',
          setBackupId: 'set-app-1',
          dryRun: true,
          members: [
            {
              restoreId: `${restoreId}.0`,
              snapshotId: ALPHA_SNAPSHOT,
              volumeName: 'alpha',
              target: { kind: 'new-volume', volumeName: 'alpha-restored' },
            },
          ],
          containers: [container],
          durationMs: 20,
          completedAt: '2025-03-14T03:00:00.000Z',
        },
        { source: `volback://agent/${second}` },
      ),
    );
    await catalog.caughtUp();
    const answer = await get(`/v1/set-restores/${restoreId}`);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ phase: 'Completed', dryRun: true, containers: [container] });
  });
});
