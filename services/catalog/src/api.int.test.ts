import { DiscardPolicy, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import {
  BackupCompleted,
  commandSubject,
  GRANT_TTL_MS,
  createEvent,
  FIXTURE_IDS,
  HostRegistered,
  HostSeen,
  parseMessage,
  PolicyDefined,
  progressSubject,
  RepositoryPruned,
  STREAMS,
} from '@volback/contracts';
import { ensureStreams, MessagePublisher, RestoreGrants, type NatsConnection } from '@volback/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { accessToken } from './http/tokens.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { HISTORY_IDS, TEST_NOW } from './test-support/history.ts';

const READ = 'read-token-0123456789';
const WRITE = 'write-token-0123456789';
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const second = HISTORY_IDS.secondHost;

describe('catalog HTTP API (inject, a catalog fed by a real NATS server)', () => {
  let stack: CatalogTestStack;
  let nc: NatsConnection;
  let catalog: Catalog;

  const get = (url: string, token = READ) => catalog.app.inject({ method: 'GET', url, headers: auth(token) });
  const send = (method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, token = WRITE) =>
    catalog.app.inject({
      method,
      url,
      headers: auth(token),
      ...(body !== undefined ? { payload: body as object } : {}),
    });
  const expectProblem = (
    res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
    status: number,
    code: string,
    field?: string,
  ) => {
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json() as { code: string; status: number; errors?: Array<{ field: string }> };
    expect(body).toMatchObject({ code, status });
    if (field) expect(body.errors?.map((e) => e.field)).toContain(field);
    return body;
  };
  async function commandsOn(subject: string): Promise<number> {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAMS.commands.name, { subjects_filter: subject });
    return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  }

  /** The data of the newest command on a subject. */
  async function lastCommandOn(subject: string): Promise<Record<string, unknown>> {
    const jsm = await jetstreamManager(nc);
    const message = await jsm.streams.getMessage(STREAMS.commands.name, { last_by_subj: subject });
    return (message!.json() as { data: Record<string, unknown> }).data;
  }

  beforeAll(async () => {
    stack = await CatalogTestStack.start('api');
    nc = stack.nc;
    catalog = await stack.catalog('api-test', {
      access: { tokens: [accessToken('read', 'read', READ), accessToken('write', 'write', WRITE)] },
      dataTimeoutMs: 1_000,
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  describe('auth', () => {
    it('GET /v1/access: this machine reads without a token; a write token sent from it still counts', async () => {
      const access = (headers: Record<string, string> = {}) =>
        catalog.app.inject({ method: 'GET', url: '/v1/access', headers }).then((r) => r.json());
      expect(await access()).toEqual({ scope: 'read', via: 'loopback', tokenValid: null });
      expect(await access(auth(WRITE))).toEqual({ scope: 'write', via: 'token', tokenValid: true });
      expect(await access(auth(READ))).toEqual({ scope: 'read', via: 'loopback', tokenValid: true });
      expect(await access(auth('not-a-valid-token-0000'))).toEqual({
        scope: 'read',
        via: 'loopback',
        tokenValid: false,
      });
    });

    it('from another address: asks for a bearer token, refuses a wrong one, and a read token on a command', async () => {
      // inject's default client is 127.0.0.1 (this machine); 127.0.0.9 stands for another host.
      const remote = { remoteAddress: '127.0.0.9' };
      const none = await catalog.app.inject({ url: '/v1/hosts', ...remote });
      expectProblem(none, 401, 'VOLBACK_CATALOG_UNAUTHORIZED');
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expectProblem(
        await catalog.app.inject({ url: '/v1/hosts', headers: auth('not-a-token-at-all'), ...remote }),
        401,
        'VOLBACK_CATALOG_UNAUTHORIZED',
      );
      expect(
        (await catalog.app.inject({ url: '/v1/hosts', headers: auth(READ), ...remote })).statusCode,
      ).toBe(200);
      expect((await catalog.app.inject({ url: '/openapi.json', ...remote })).statusCode).toBe(401);
      expectProblem(
        await send('POST', `/v1/hosts/${second}/volumes/alpha/backups`, {}, READ),
        403,
        'VOLBACK_CATALOG_FORBIDDEN',
      );
      expectProblem(
        await catalog.app.inject({
          method: 'POST',
          url: `/v1/hosts/${second}/volumes/alpha/backups`,
          payload: {},
        }),
        401,
        'VOLBACK_CATALOG_UNAUTHORIZED',
      );
    });

    it('from this machine: reads without a token, commands only with the write token', async () => {
      expect((await catalog.app.inject({ url: '/v1/hosts' })).statusCode).toBe(200);
      expect((await get('/v1/hosts', WRITE)).statusCode).toBe(200);
      expectProblem(
        await catalog.app.inject({ method: 'POST', url: '/v1/admin/rebuild' }),
        401,
        'VOLBACK_CATALOG_UNAUTHORIZED',
      );
    });

    it('serves the OpenAPI document and the docs UI to this machine without a token', async () => {
      const spec = await catalog.app.inject({ url: '/openapi.json' });
      expect(spec.statusCode).toBe(200);
      const paths = Object.keys(spec.json<{ paths: Record<string, unknown> }>().paths);
      for (const path of [
        '/v1/status',
        '/v1/hosts',
        '/v1/volumes',
        '/v1/hosts/{hostId}/volumes/{volumeName}/backups',
        '/v1/snapshots/{snapshotId}/tree',
        '/v1/snapshots/{snapshotId}/tar',
        '/v1/snapshots/{snapshotId}/file',
        '/v1/snapshots/{snapshotId}/diff',
        '/v1/schedules/preview',
        '/v1/hosts/{hostId}/volumes/{volumeName}/find',
        '/v1/restores',
        '/v1/policies/{policyId}',
        '/v1/events/stream',
      ]) {
        expect(paths).toContain(path);
      }
      expect((await catalog.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
    });
  });

  describe('reads', () => {
    it("totals the repository's size and the bytes of the last 24 h from the backups and prunes recorded", async () => {
      // A prune that freed 16 bytes (the history's own prune ended failed).
      await new MessagePublisher(nc).publish(
        createEvent(
          RepositoryPruned,
          {
            operationId: 'catalog-api-test-prune',
            repositoryId: 'default',
            packsDeleted: 1,
            packsRepacked: 0,
            blobsRemoved: 2,
            bytesFreed: 16,
            durationMs: 5,
            prunedAt: TEST_NOW.toISOString(),
          },
          { source: 'volback://catalog-api-test' },
        ),
      );
      await catalog.caughtUp();
      const status = (await get('/v1/status')).json<{
        repository: { sizeBytes: number; addedLast24hBytes: number };
      }>();
      const backups = (await get('/v1/backups?limit=500')).json<{
        items: Array<{ phase: string; finishedAt: string | null; stats: { bytesStored: number } | null }>;
      }>().items;
      const operations = (await get('/v1/repository/operations?limit=500')).json<{
        items: Array<{ operation: string; status: string; summary: { bytesFreed?: number } | null }>;
      }>().items;
      const stored = backups.filter((b) => b.phase === 'Completed' || b.phase === 'PartiallyFailed');
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const freed = sum(
        operations
          .filter((o) => o.operation === 'prune' && o.status === 'Succeeded')
          .map((o) => o.summary?.bytesFreed ?? 0),
      );
      expect(freed).toBe(16);
      const dayAgo = TEST_NOW.getTime() - 24 * 3600_000;
      expect(status.repository).toEqual({
        sizeBytes: Math.max(0, sum(stored.map((b) => b.stats?.bytesStored ?? 0)) - freed),
        addedLast24hBytes: sum(
          stored
            .filter((b) => b.finishedAt !== null && Date.parse(b.finishedAt) >= dayAgo)
            .map((b) => b.stats?.bytesStored ?? 0),
        ),
      });
      expect(status.repository.addedLast24hBytes).toBeGreaterThan(0);
    });

    it("previews a schedule's next runs at the catalog's clock; a bad one names the field", async () => {
      const ok = (await get('/v1/schedules/preview?cron=0%203%20*%20*%20*&timezone=UTC&count=2')).json();
      expect(ok).toEqual({
        cron: '0 3 * * *',
        timezone: 'UTC',
        runs: ['2025-03-15T03:00:00.000Z', '2025-03-16T03:00:00.000Z'],
      });
      const bad = expectProblem(
        await get('/v1/schedules/preview?cron=61%20*%20*%20*%20*&timezone=Mars%2FOlympus'),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
      );
      expect(bad.errors?.map((e) => e.field)).toEqual(['query.cron', 'query.timezone']);
    });

    it('pages through a list with cursors to the same items as one page', async () => {
      const all = (await get('/v1/backups?limit=500')).json<{
        items: Array<{ backupId: string }>;
        nextCursor: null;
      }>();
      expect(all.nextCursor).toBeNull();
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: Array<{ backupId: string }>; nextCursor: string | null } = (
          await get(`/v1/backups?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        ).json();
        expect(page.items.length).toBeLessThanOrEqual(3);
        paged.push(...page.items.map((b) => b.backupId));
        cursor = page.nextCursor;
      } while (cursor);
      expect(paged).toEqual(all.items.map((b) => b.backupId));
      expect(paged).toHaveLength(8);
    });

    it('filters lists', async () => {
      const failed = (await get('/v1/backups?phase=Failed')).json<{
        items: Array<{ phase: string; error: { code: string } }>;
      }>();
      expect(failed.items.length).toBeGreaterThan(0);
      expect(failed.items.every((b) => b.phase === 'Failed')).toBe(true);
      const gold = (await get('/v1/volumes?label=tier%3Dgold')).json<{
        items: Array<{ volumeName: string; usedBy: unknown[] }>;
      }>();
      expect(gold.items.map((v) => v.volumeName)).toEqual(['alpha']);
      expect(gold.items[0]!.usedBy).toHaveLength(1);
      const offline = (await get('/v1/hosts?status=offline')).json<{ items: Array<{ hostId: string }> }>();
      expect(offline.items.map((h) => h.hostId)).toEqual([second]);
      const volume = (await get(`/v1/hosts/${second}/volumes/alpha`)).json<{
        protection: { status: string; lastSnapshotId: string; nextDueAt: string | null };
      }>();
      expect(volume.protection.status).toBe('protected');
      expect(volume.protection.nextDueAt).toBe('2025-03-15T03:07:12.000Z');
      const beta = (await get(`/v1/hosts/${second}/volumes/beta.data`)).json<{
        protection: { nextDueAt: string | null };
      }>();
      expect(beta.protection.nextDueAt).toBeNull();
      const snapshots = (await get(`/v1/hosts/${second}/volumes/alpha/snapshots`)).json<{
        items: Array<{ snapshotId: string }>;
      }>();
      expect(snapshots.items[0]!.snapshotId).toBe(volume.protection.lastSnapshotId);
      const containers = (await get('/v1/containers?volume=alpha')).json<{
        items: Array<{ name: string }>;
      }>();
      expect(containers.items.map((c) => c.name)).toEqual(['app-1']);
    });

    it('names the bad field of a query or path (400)', async () => {
      expectProblem(await get('/v1/hosts?limit=0'), 400, 'VOLBACK_CATALOG_BAD_REQUEST', 'querystring.limit');
      expectProblem(
        await get('/v1/backups?phase=Sleeping'),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'querystring.phase',
      );
      expectProblem(
        await get('/v1/hosts?cursor=bm90LWEtY3Vyc29y'),
        400,
        'VOLBACK_CATALOG_INVALID_CURSOR',
        'query.cursor',
      );
      const otherList = (await get('/v1/backups?limit=1')).json<{ nextCursor: string }>().nextCursor;
      expectProblem(
        await get(`/v1/hosts?cursor=${otherList}`),
        400,
        'VOLBACK_CATALOG_INVALID_CURSOR',
        'query.cursor',
      );
      expectProblem(
        await get(`/v1/hosts/${second}/volumes/-bad-`),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'params.volumeName',
      );
      expectProblem(await get('/v1/snapshots/xyz'), 400, 'VOLBACK_CATALOG_BAD_REQUEST', 'params.snapshotId');
      expectProblem(
        await get('/v1/volumes?includeRemoved=maybe'),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'querystring.includeRemoved',
      );
    });

    it('answers 404 with a code per kind of thing', async () => {
      expectProblem(await get('/v1/nothing-here'), 404, 'VOLBACK_CATALOG_ROUTE_NOT_FOUND');
      expectProblem(await get('/v1/hosts/unknown-host'), 404, 'VOLBACK_CATALOG_HOST_NOT_FOUND');
      expectProblem(await get(`/v1/hosts/${second}/volumes/nope`), 404, 'VOLBACK_CATALOG_VOLUME_NOT_FOUND');
      expectProblem(
        await get(`/v1/hosts/${second}/volumes/nope/snapshots`),
        404,
        'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
      );
      expectProblem(
        await get(`/v1/hosts/${second}/containers/${'f'.repeat(64)}`),
        404,
        'VOLBACK_CATALOG_CONTAINER_NOT_FOUND',
      );
      expectProblem(await get('/v1/policies/nope'), 404, 'VOLBACK_CATALOG_POLICY_NOT_FOUND');
      expectProblem(await get('/v1/backups/nope'), 404, 'VOLBACK_CATALOG_BACKUP_NOT_FOUND');
      expectProblem(await get('/v1/restores/nope'), 404, 'VOLBACK_CATALOG_RESTORE_NOT_FOUND');
      expectProblem(await get(`/v1/snapshots/${'e'.repeat(64)}`), 404, 'VOLBACK_CATALOG_SNAPSHOT_NOT_FOUND');
      expectProblem(
        await get(`/v1/snapshots/${'e'.repeat(8)}/tree`),
        404,
        'VOLBACK_CATALOG_SNAPSHOT_NOT_FOUND',
      );
    });
  });

  describe('snapshot contents', () => {
    const snapshot = '0001'.repeat(16);
    it('checks the path and the pattern before asking a gateway', async () => {
      expectProblem(
        await get(`/v1/snapshots/${snapshot}/tree?path=/a/../../etc`),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'query.path',
      );
      expectProblem(
        await get(`/v1/snapshots/${snapshot}/tar?path=..`),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'query.path',
      );
      expectProblem(
        await get(`/v1/hosts/${second}/volumes/alpha/find?glob=%5Babc`),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'query.glob',
      );
      expectProblem(
        await get(`/v1/hosts/${second}/volumes/alpha/find`),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'querystring.glob',
      );
    });

    it('says 503 without internals when no storage gateway answers', async () => {
      const res = await get(`/v1/snapshots/${snapshot.slice(0, 8)}/tree?path=/`);
      const body = expectProblem(res, 503, 'VOLBACK_CATALOG_REPOSITORY_UNAVAILABLE');
      expect(JSON.stringify(body)).not.toMatch(/volback\.data|nats|stack/i);
      expectProblem(
        await get(`/v1/snapshots/${snapshot}/tar`),
        503,
        'VOLBACK_CATALOG_REPOSITORY_UNAVAILABLE',
      );
      expectProblem(
        await get(`/v1/hosts/${second}/volumes/alpha/find?glob=*.txt`),
        503,
        'VOLBACK_CATALOG_REPOSITORY_UNAVAILABLE',
      );
    });
  });

  describe('commands', () => {
    it('backs up now: RequestBackup to the scheduler, with the backup id it answers', async () => {
      const subject = 'volback.cmd.scheduler.request-backup';
      const before = await commandsOn(subject);
      const res = await send('POST', `/v1/hosts/${second}/volumes/alpha/backups`, {
        requestedBy: 'ci-pipeline',
      });
      expect(res.statusCode, res.body).toBe(202);
      const { backupId, location } = res.json<{ backupId: string; location: string }>();
      expect(res.headers['location']).toBe(location);
      expect(location).toBe(`/v1/backups/${backupId}`);
      expect(await commandsOn(subject)).toBe(before + 1);
      const jsm = await jetstreamManager(nc);
      const sent = parseMessage(
        (await jsm.streams.getMessage(STREAMS.commands.name, { last_by_subj: subject }))!.data,
      );
      expect(sent.ok && sent.message.envelope.data).toEqual({
        hostId: second,
        volumeName: 'alpha',
        backupId,
        requestedBy: 'ci-pipeline',
      });
      // Nothing goes to the agent but through the scheduler.
      expect(await commandsOn(`volback.cmd.${second}.backup-volume`)).toBe(0);
      // Without a body at all.
      const bare = await send('POST', `/v1/hosts/${second}/volumes/beta.data/backups`);
      expect(bare.statusCode, bare.body).toBe(202);
    });

    it('refuses to back up an unknown or removed volume', async () => {
      expectProblem(
        await send('POST', `/v1/hosts/${second}/volumes/nope/backups`, {}),
        404,
        'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
      );
      expectProblem(
        await send(
          'POST',
          `/v1/hosts/${encodeURIComponent(FIXTURE_IDS.hostId)}/volumes/${FIXTURE_IDS.otherVolumeName}/backups`,
          {},
        ),
        409,
        'VOLBACK_CATALOG_VOLUME_REMOVED',
      );
      expectProblem(
        await send('POST', `/v1/hosts/${second}/volumes/alpha/backups`, { requestedBy: '' }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body.requestedBy',
      );
    });

    it('restores into a new volume, and refuses what cannot work', async () => {
      const snapshotId = '0002'.repeat(16);
      const ok = await send('POST', '/v1/restores', {
        snapshotId: snapshotId.slice(0, 8),
        target: { kind: 'new-volume', volumeName: 'alpha-restored' },
        path: '/app/',
      });
      expect(ok.statusCode, ok.body).toBe(202);
      await catalog.caughtUp();
      const restore = (await get(ok.json<{ location: string }>().location)).json();
      expect(restore).toMatchObject({
        snapshotId,
        hostId: second,
        phase: 'Queued',
        path: '/app',
        target: { kind: 'new-volume', volumeName: 'alpha-restored' },
      });
      expect(await commandsOn(commandSubject({ kind: 'host', hostId: second }, 'restore-snapshot'))).toBe(1);
      // The grant that lets the host's agent read the snapshot through the gateways, for a day.
      const { restoreId } = ok.json<{ restoreId: string }>();
      expect(await new RestoreGrants(nc).get(restoreId)).toEqual({
        hostId: second,
        snapshotId,
        expiresAt: new Date(TEST_NOW.getTime() + GRANT_TTL_MS).toISOString(),
      });

      const sent = await lastCommandOn(commandSubject({ kind: 'host', hostId: second }, 'restore-snapshot'));
      expect(sent).toMatchObject({ restoreId, path: '/app', dryRun: false, preserveSpecialModes: false });

      // Asking to keep setuid/setgid bits reaches the agent (which keeps them for its own host only).
      const keep = await send('POST', '/v1/restores', {
        snapshotId,
        target: { kind: 'new-volume', volumeName: 'alpha-restored-modes' },
        preserveSpecialModes: true,
      });
      expect(keep.statusCode, keep.body).toBe(202);
      expect(
        await lastCommandOn(commandSubject({ kind: 'host', hostId: second }, 'restore-snapshot')),
      ).toMatchObject({
        restoreId: keep.json<{ restoreId: string }>().restoreId,
        preserveSpecialModes: true,
      });

      expectProblem(
        await send('POST', '/v1/restores', {
          snapshotId,
          target: { kind: 'new-volume', volumeName: 'beta.data' },
        }),
        409,
        'VOLBACK_CATALOG_VOLUME_EXISTS',
      );
      expectProblem(
        await send('POST', '/v1/restores', {
          snapshotId,
          target: { kind: 'existing-volume', volumeName: 'nope' },
        }),
        404,
        'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
      );
      expectProblem(
        await send('POST', '/v1/restores', {
          snapshotId: 'e'.repeat(64),
          target: { kind: 'new-volume', volumeName: 'x1' },
        }),
        404,
        'VOLBACK_CATALOG_SNAPSHOT_NOT_FOUND',
      );
      expectProblem(
        await send('POST', '/v1/restores', { snapshotId, target: { kind: 'tar' } }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body.target.kind',
      );
      expectProblem(
        await send('POST', '/v1/restores', {
          snapshotId,
          target: { kind: 'new-volume', volumeName: 'x1' },
          path: '../x',
        }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body.path',
      );
      expectProblem(
        await send('POST', '/v1/restores', {
          snapshotId,
          target: { kind: 'new-volume', volumeName: 'x1' },
          hostId: 'nobody',
        }),
        404,
        'VOLBACK_CATALOG_HOST_NOT_FOUND',
      );
    });

    it('defines and removes policies through the scheduler', async () => {
      const policy = { schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 } };
      const defined = await send('PUT', '/v1/policies/gold', {
        scope: { kind: 'volume', hostId: second, volumeName: 'alpha' },
        policy,
      });
      expect(defined.statusCode, defined.body).toBe(202);
      expect(await commandsOn('volback.cmd.scheduler.define-policy')).toBe(1);
      expectProblem(
        await send('PUT', '/v1/policies/gold', {
          scope: { kind: 'default' },
          policy: { ...policy, retention: { keepLast: 0 } },
        }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body.policy.retention',
      );
      expectProblem(
        await send('PUT', '/v1/policies/gold', { scope: { kind: 'nowhere' }, policy }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body.scope.kind',
      );
      expectProblem(
        await send('DELETE', '/v1/policies/not-defined'),
        404,
        'VOLBACK_CATALOG_POLICY_NOT_FOUND',
      );
      const removed = await send('DELETE', '/v1/policies/catalog-test-policy');
      expect(removed.statusCode, removed.body).toBe(202);
      expect(await commandsOn('volback.cmd.scheduler.remove-policy')).toBe(1);
    });

    it('refuses policy ids that are not subject- and path-safe (.., *, >), with a 400 naming the id', async () => {
      const before = await commandsOn('volback.cmd.scheduler.define-policy');
      const body = {
        scope: { kind: 'default' },
        policy: { schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 } },
      };
      for (const id of ['..a', '.', '%2A', '%3E', 'a%20b', '.hidden']) {
        const res = await send('PUT', `/v1/policies/${id}`, body);
        expect(res.statusCode, `${id}: ${res.body}`).toBe(400);
        expectProblem(res, 400, 'VOLBACK_CATALOG_BAD_REQUEST', 'params.policyId');
      }
      expect(await commandsOn('volback.cmd.scheduler.define-policy')).toBe(before);
      const ok = await send('PUT', '/v1/policies/nightly:db_1.main@eu-2', body);
      expect(ok.statusCode, ok.body).toBe(202);
    });

    it('refuses a policy the scheduler would refuse, naming every problem at once, and sends nothing', async () => {
      const before = await commandsOn('volback.cmd.scheduler.define-policy');
      const body = expectProblem(
        await send('PUT', '/v1/policies/labels:mine', {
          scope: { kind: 'default' },
          policy: { schedule: { cron: '61 3 * * *', timezone: 'Mars/Base' }, retention: { keepDaily: 7 } },
        }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
      );
      expect(body.errors?.map((e) => e.field)).toEqual([
        'params.policyId',
        'body.policy.schedule.cron',
        'body.policy.schedule.timezone',
      ]);
      expect(await commandsOn('volback.cmd.scheduler.define-policy')).toBe(before);

      // a label policy cannot be removed through the API: 409 at once, no command
      const removals = await commandsOn('volback.cmd.scheduler.remove-policy');
      await new MessagePublisher(nc).publish(
        createEvent(
          PolicyDefined,
          {
            policyId: 'labels:h:v',
            scope: { kind: 'volume', hostId: second, volumeName: 'alpha' },
            origin: 'labels',
            policy: { schedule: { cron: '0 4 * * *' }, retention: { keepLast: 1 } },
            definedAt: TEST_NOW.toISOString(),
          },
          { source: 'volback://test' },
        ),
      );
      await catalog.caughtUp();
      const refused = expectProblem(
        await send('DELETE', '/v1/policies/labels:h:v'),
        409,
        'VOLBACK_CATALOG_POLICY_NOT_REMOVABLE',
        'params.policyId',
      );
      expect(JSON.stringify(refused)).toMatch(/comes from labels/);
      expect(await commandsOn('volback.cmd.scheduler.remove-policy')).toBe(removals);
    });

    it('refuses bodies that are not JSON', async () => {
      const url = `/v1/hosts/${second}/volumes/alpha/backups`;
      expectProblem(
        await catalog.app.inject({
          method: 'POST',
          url,
          headers: { ...auth(WRITE), 'content-type': 'application/xml' },
          payload: '<now/>',
        }),
        415,
        'VOLBACK_CATALOG_UNSUPPORTED_MEDIA_TYPE',
      );
      expectProblem(
        await catalog.app.inject({
          method: 'POST',
          url,
          headers: { ...auth(WRITE), 'content-type': 'application/json' },
          payload: '{"requestedBy":',
        }),
        400,
        'VOLBACK_CATALOG_BAD_REQUEST',
        'body',
      );
    });
  });

  it('streams live events as SSE, filtered by host and type', async () => {
    await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    const address = catalog.app.server.address() as { port: number };
    const controller = new AbortController();
    const res = await fetch(
      `http://127.0.0.1:${address.port}/v1/events/stream?host=${second}&type=io.volback.host.`,
      {
        headers: auth(READ),
        signal: controller.signal,
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    await reader.read(); // the opening comment: the subscription is in place
    const publisher = new MessagePublisher(nc);
    const seen = (hostId: string, at: string) =>
      createEvent(
        HostSeen,
        { hostId, seenAt: at, intervalSeconds: 30, containers: 0, volumes: 0, backupsRunning: 0 },
        { source: 'volback://test' },
      );
    await publisher.publish(seen(FIXTURE_IDS.otherHostId, '2025-03-14T03:02:00.000Z'));
    await publisher.publish(seen(second, '2025-03-14T03:02:01.000Z'));
    while (!text.includes('\n\n') || !text.includes('data:')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    expect(text).toContain('event: io.volback.host.seen.v1');
    expect(text).toContain(`"hostId":"${second}"`);
    expect(text).not.toContain(FIXTURE_IDS.otherHostId);
  });

  it('a client back with Last-Event-ID gets the events it missed, then the live ones, none twice', async () => {
    if (!catalog.app.server.listening) await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    const address = catalog.app.server.address() as { port: number };
    const url = `http://127.0.0.1:${address.port}/v1/events/stream?host=${second}&type=io.volback.host.seen`;
    const publisher = new MessagePublisher(nc);
    const seen = (hostId: string, at: string) =>
      createEvent(
        HostSeen,
        { hostId, seenAt: at, intervalSeconds: 30, containers: 0, volumes: 0, backupsRunning: 0 },
        { source: 'volback://test' },
      );
    /** Reads SSE events until `count` more have come: their ids and `seenAt`. */
    const readEvents = async (reader: ReadableStreamDefaultReader<Uint8Array>, count: number) => {
      const decoder = new TextDecoder();
      let text = '';
      const events = () =>
        [...text.matchAll(/id: (\d+)\nevent: [^\n]+\ndata: ([^\n]+)\n\n/g)].map((m) => ({
          id: Number(m[1]),
          seenAt: (JSON.parse(m[2]!) as { data: { seenAt: string } }).data.seenAt,
        }));
      while (events().length < count) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      return events();
    };

    const first = new AbortController();
    const res = await fetch(url, { headers: auth(READ), signal: first.signal });
    const reader = res.body!.getReader();
    await reader.read(); // the opening comment
    await publisher.publish(seen(second, '2025-03-14T03:10:00.000Z'));
    const [before] = await readEvents(reader, 1);
    expect(before!.seenAt).toBe('2025-03-14T03:10:00.000Z');
    first.abort();

    // While the client is away: two of its events and one of another host.
    await publisher.publish(seen(second, '2025-03-14T03:10:01.000Z'));
    await publisher.publish(seen(FIXTURE_IDS.otherHostId, '2025-03-14T03:10:02.000Z'));
    await publisher.publish(seen(second, '2025-03-14T03:10:03.000Z'));

    const again = new AbortController();
    const back = await fetch(url, {
      headers: { ...auth(READ), 'last-event-id': String(before!.id) },
      signal: again.signal,
    });
    const backReader = back.body!.getReader();
    const missed = await readEvents(backReader, 2);
    await publisher.publish(seen(second, '2025-03-14T03:10:04.000Z'));
    const all = [...missed, ...(await readEvents(backReader, 1))];
    again.abort();
    expect(all.map((e) => e.seenAt)).toEqual([
      '2025-03-14T03:10:01.000Z',
      '2025-03-14T03:10:03.000Z',
      '2025-03-14T03:10:04.000Z',
    ]);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
    expect(all[0]!.id).toBeGreaterThan(before!.id);
  });

  it('streams the progress of all work with progress=true, only of the host asked for', async () => {
    if (!catalog.app.server.listening) await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    const address = catalog.app.server.address() as { port: number };
    const controller = new AbortController();
    const res = await fetch(
      `http://127.0.0.1:${address.port}/v1/events/stream?host=${second}&type=io.volback.none.&progress=true`,
      { headers: auth(READ), signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read(); // the opening comment: the subscription is in place
    const progress = (hostId: string, workId: string) =>
      nc.publish(
        progressSubject(hostId, workId),
        JSON.stringify({
          workId,
          kind: 'backup',
          phase: 'reading',
          files: 1,
          dirs: 1,
          bytes: 10,
          bytesAdded: 5,
          at: '2025-03-14T03:02:00.000Z',
        }),
      );
    progress(FIXTURE_IDS.otherHostId, 'progress-elsewhere');
    progress(second, 'progress-here');
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('progress-here')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    expect(text).toContain('event: progress');
    expect(text).not.toContain('progress-elsewhere');
  });

  it('answers 409 for a snapshot prefix that names two snapshots', async () => {
    // A second snapshot sharing the first one's 4-digit prefix.
    const first = '0001'.repeat(16); // the history's first snapshot
    const twin = `${first.slice(0, 4)}${'f'.repeat(60)}`;
    await new MessagePublisher(nc).publish(
      createEvent(
        BackupCompleted,
        {
          backupId: 'twin-prefix-backup',
          hostId: second,
          volumeName: 'alpha',
          snapshotId: twin,
          stats: {
            filesNew: 0,
            filesChanged: 0,
            filesUnmodified: 0,
            dirsNew: 0,
            dirsChanged: 0,
            dirsUnmodified: 0,
            bytesRead: 0,
            bytesAdded: 0,
            bytesStored: 0,
            durationMs: 1,
          },
          completedAt: TEST_NOW.toISOString(),
        },
        { source: 'volback://catalog-api-test' },
      ),
    );
    await catalog.caughtUp();
    expectProblem(await get(`/v1/snapshots/${first.slice(0, 4)}`), 409, 'VOLBACK_CATALOG_AMBIGUOUS_SNAPSHOT');
    expect((await get(`/v1/snapshots/${first.slice(0, 8)}`)).statusCode).toBe(200);
  });

  it('takes a host name wherever it takes a host id; an unknown or ambiguous name is an error', async () => {
    const byId = (await get(`/v1/volumes?host=${second}`)).json<{ items: unknown[] }>();
    const byName = (await get('/v1/volumes?host=second')).json<{ items: unknown[] }>();
    expect(byName.items.length).toBeGreaterThan(0);
    expect(byName).toEqual(byId);
    expect((await get('/v1/hosts/second/volumes/alpha/snapshots')).statusCode).toBe(200);
    expect((await get('/v1/hosts/second')).json()).toMatchObject({ hostId: second, name: 'second' });
    expectProblem(await get('/v1/volumes?host=no-such-host'), 404, 'VOLBACK_CATALOG_HOST_NOT_FOUND');
    expectProblem(await get('/v1/backups?host=no-such-host'), 404, 'VOLBACK_CATALOG_HOST_NOT_FOUND');

    // A third host that calls itself "second" too: the name no longer says which.
    await new MessagePublisher(nc).publish(
      createEvent(
        HostRegistered,
        {
          hostId: 'catalog-test-host-3',
          name: 'second',
          engine: { id: 'engine-3', version: '28.0.1', apiVersion: '1.48', os: 'Debian', arch: 'x86_64' },
          agentVersion: '0.1.0',
          registeredAt: TEST_NOW.toISOString(),
        },
        { source: 'volback://catalog-api-test' },
      ),
    );
    await catalog.caughtUp();
    const ambiguous = expectProblem(
      await get('/v1/volumes?host=second'),
      409,
      'VOLBACK_CATALOG_AMBIGUOUS_HOST',
    );
    expect(JSON.stringify(ambiguous)).toContain('catalog-test-host-3');
    expect((await get(`/v1/volumes?host=${second}`)).json()).toEqual(byId);
  });

  it('reads event history: the newest that match, and a cursor to the older ones', async () => {
    const since = '2000-01-01T00:00:00Z';
    const all = (await get(`/v1/events?since=${since}&host=${second}&limit=1000`)).json<{
      items: Array<{ seq: number; event: { data: { hostId: string } } }>;
      matched: number;
      truncated: boolean;
      nextCursor: string | null;
    }>();
    expect(all.items.length).toBeGreaterThan(3);
    expect(all.items.every((i) => i.event.data.hostId === second)).toBe(true);
    expect(all).toMatchObject({ truncated: false, nextCursor: null, matched: all.items.length });
    const seqs = all.items.map((i) => i.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    const newest = (await get(`/v1/events?since=${since}&host=${second}&limit=2`)).json<typeof all>();
    expect(newest.items.map((i) => i.seq)).toEqual(seqs.slice(-2));
    expect(newest).toMatchObject({ truncated: true, matched: all.items.length });
    const older = (
      await get(`/v1/events?since=${since}&host=${second}&limit=2&before=${newest.nextCursor}`)
    ).json<typeof all>();
    expect(older.items.map((i) => i.seq)).toEqual(seqs.slice(-4, -2));
    const future = (await get(`/v1/events?since=2999-01-01T00:00:00Z`)).json<typeof all>();
    expect(future).toMatchObject({ items: [], matched: 0, truncated: false });
  });

  it('sends forget, prune, check and import to the gateways and records each as requested', async () => {
    const prune = await send('POST', '/v1/repository/prune', { maxUnusedFraction: 0.1 });
    expect(prune.statusCode).toBe(202);
    const { operationId } = prune.json<{ operationId: string }>();
    expect(await commandsOn('volback.cmd.gateway.prune-repository')).toBe(1);
    await catalog.caughtUp();
    expect((await get(`/v1/repository/operations/${operationId}`)).json()).toMatchObject({
      operationId,
      operation: 'prune',
      status: 'Requested',
    });
    const forget = await send('POST', `/v1/hosts/${second}/volumes/alpha/forget`, {
      retention: { keepLast: 2 },
    });
    expect(forget.statusCode).toBe(202);
    expect(await commandsOn('volback.cmd.gateway.forget-snapshots')).toBe(1);
    expect((await send('POST', '/v1/repository/check', { readDataFraction: 1 })).statusCode).toBe(202);
    expect(await commandsOn('volback.cmd.gateway.check-repository')).toBe(1);
    // The re-import needs no body: the default repository.
    const imported = await send('POST', '/v1/repository/import');
    expect(imported.statusCode, imported.body).toBe(202);
    expect(await commandsOn('volback.cmd.gateway.import-snapshots')).toBe(1);
    await catalog.caughtUp();
    expect(
      (await get(`/v1/repository/operations/${imported.json<{ operationId: string }>().operationId}`)).json(),
    ).toMatchObject({ operation: 'import', status: 'Requested', repositoryId: 'default' });

    expectProblem(
      await send('POST', `/v1/hosts/${second}/volumes/alpha/forget`, { retention: { keepLast: 0 } }),
      400,
      'VOLBACK_CATALOG_BAD_REQUEST',
      'body.retention',
    );
    expectProblem(
      await send('POST', '/v1/repository/check', { readDataFraction: 1 }, READ),
      403,
      'VOLBACK_CATALOG_FORBIDDEN',
    );
    expectProblem(
      await get('/v1/repository/operations/no-such-op'),
      404,
      'VOLBACK_CATALOG_OPERATION_NOT_FOUND',
    );
  });

  it('answers 503 without internals when NATS does not take a command', async () => {
    const jsm = await jetstreamManager(nc);
    // A full commands stream that refuses new messages: JetStream answers the publish with an error.
    const info = await jsm.streams.info(STREAMS.commands.name);
    await jsm.streams.update(STREAMS.commands.name, {
      ...info.config,
      discard: DiscardPolicy.New,
      max_msgs: Math.max(1, info.state.messages),
    });
    try {
      if (info.state.messages === 0)
        await nc.request(commandSubject({ kind: 'scheduler' }, 'filler'), new Uint8Array());
      const res = await send('POST', `/v1/hosts/${second}/volumes/alpha/backups`, {});
      const body = expectProblem(res, 503, 'VOLBACK_CATALOG_MESSAGING_UNAVAILABLE');
      expect(JSON.stringify(body)).not.toMatch(/stream|jetstream|maximum|\.ts/i);
    } finally {
      await jsm.streams.delete(STREAMS.commands.name);
      await ensureStreams(jsm);
    }
  });

  it('recreates a deleted commands stream and sends the command into it', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(STREAMS.commands.name);
    const res = await send('POST', `/v1/hosts/${second}/volumes/alpha/backups`, {});
    expect(res.statusCode).toBe(202);
    const info = await jsm.streams.info(STREAMS.commands.name);
    expect(info.config.retention).toBe(RetentionPolicy.Workqueue);
    expect(info.state.messages).toBe(1);
  });

  it('a 5xx says only that something failed', async () => {
    const broken = await stack.catalog('broken');
    broken.database.close();
    const res = await broken.app.inject({ url: '/v1/hosts' });
    const body = expectProblem(res, 500, 'VOLBACK_CATALOG_INTERNAL');
    expect(JSON.stringify(body)).not.toMatch(/sqlite|database|stack|\.ts/i);
    await broken.app.close();
  });
});
