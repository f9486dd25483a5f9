import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { BackupPhase, RestorePhase, volumeName } from '@volback/contracts';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import { ProtectionStatus } from '../domain/status.ts';
import {
  backupView,
  containerView,
  hostView,
  pageOf,
  policyView,
  repositoryOperationView,
  restoreView,
  snapshotView,
  statusView,
  volumeView,
} from '../read-model.ts';
import { hostParams, hostRef, paging, queryFlag, volumeParams } from './params.ts';

/** The read side: hosts, volumes, containers, policies, backups, restores, snapshots, maintenance, status. */
export function registerReadRoutes(fastify: FastifyInstance, queries: CatalogQueries): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/v1/status',
    {
      schema: {
        tags: ['status'],
        summary: 'Counts of hosts, volumes by protection, work in progress',
        response: { 200: statusView },
      },
    },
    async () => queries.status(),
  );

  app.get(
    '/v1/hosts',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Docker hosts, online or offline from their heartbeats',
        querystring: z.object({ ...paging, status: z.enum(['online', 'offline']).optional() }),
        response: { 200: pageOf(hostView) },
      },
    },
    async (req) => queries.listHosts({ status: req.query.status }, req.query),
  );

  app.get(
    '/v1/hosts/:hostId',
    {
      schema: { tags: ['hosts'], summary: 'One host', params: hostParams, response: { 200: hostView } },
    },
    async (req) => queries.getHost(queries.resolveHost(req.params.hostId)),
  );

  app.get(
    '/v1/volumes',
    {
      schema: {
        tags: ['volumes'],
        summary: 'Volumes with their protection status and the containers that use them',
        querystring: z.object({
          ...paging,
          host: hostRef.optional(),
          name: volumeName.optional().describe('exact volume name'),
          search: z.string().min(1).max(255).optional().describe('part of the volume name'),
          status: z.enum(Object.values(ProtectionStatus) as [string, ...string[]]).optional(),
          label: z.string().min(1).max(1000).optional().describe('`key` or `key=value`'),
          includeRemoved: queryFlag,
        }),
        response: { 200: pageOf(volumeView) },
      },
    },
    async (req) =>
      queries.listVolumes(
        {
          hostId: queries.resolveHostFilter(req.query.host),
          name: req.query.name,
          search: req.query.search,
          status: req.query.status as ProtectionStatus | undefined,
          label: req.query.label,
          includeRemoved: req.query.includeRemoved,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/hosts/:hostId/volumes/:volumeName',
    {
      schema: {
        tags: ['volumes'],
        summary: 'One volume',
        params: volumeParams,
        response: { 200: volumeView },
      },
    },
    async (req) => queries.getVolume(queries.resolveHost(req.params.hostId), req.params.volumeName),
  );

  app.get(
    '/v1/hosts/:hostId/volumes/:volumeName/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Snapshots of one volume, newest first',
        params: volumeParams,
        querystring: z.object({ ...paging, includeForgotten: queryFlag }),
        response: { 200: pageOf(snapshotView) },
      },
    },
    async (req) => {
      const host = queries.resolveHost(req.params.hostId);
      queries.getVolume(host, req.params.volumeName);
      return queries.listSnapshots(
        {
          hostId: host,
          volumeName: req.params.volumeName,
          includeForgotten: req.query.includeForgotten,
        },
        req.query,
      );
    },
  );

  app.get(
    '/v1/containers',
    {
      schema: {
        tags: ['containers'],
        summary: 'Containers and their mounts',
        querystring: z.object({
          ...paging,
          host: hostRef.optional(),
          volume: volumeName.optional().describe('only containers that mount this volume'),
          state: z
            .enum(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'])
            .optional(),
        }),
        response: { 200: pageOf(containerView) },
      },
    },
    async (req) =>
      queries.listContainers(
        {
          hostId: queries.resolveHostFilter(req.query.host),
          volumeName: req.query.volume,
          state: req.query.state,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/hosts/:hostId/containers/:containerId',
    {
      schema: {
        tags: ['containers'],
        summary: 'One container',
        params: z.object({
          hostId: hostRef,
          containerId: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
        }),
        response: { 200: containerView },
      },
    },
    async (req) => queries.getContainer(queries.resolveHost(req.params.hostId), req.params.containerId),
  );

  app.get(
    '/v1/policies',
    {
      schema: {
        tags: ['policies'],
        summary: 'Backup policies (from the API, labels and configuration)',
        querystring: z.object({
          ...paging,
          scope: z.enum(['default', 'volume']).optional(),
          host: hostRef.optional(),
          volume: volumeName.optional(),
        }),
        response: { 200: pageOf(policyView) },
      },
    },
    async (req) =>
      queries.listPolicies(
        {
          scope: req.query.scope,
          hostId: queries.resolveHostFilter(req.query.host),
          volumeName: req.query.volume,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/policies/:policyId',
    {
      schema: {
        tags: ['policies'],
        summary: 'One policy',
        params: z.object({ policyId: z.string().min(1).max(200) }),
        response: { 200: policyView },
      },
    },
    async (req) => queries.getPolicy(req.params.policyId),
  );

  app.get(
    '/v1/backups',
    {
      schema: {
        tags: ['backups'],
        summary: 'Backups, newest first, with phase, stats and errors',
        querystring: z.object({
          ...paging,
          host: hostRef.optional(),
          volume: volumeName.optional(),
          phase: z.enum(Object.values(BackupPhase) as [BackupPhase, ...BackupPhase[]]).optional(),
          trigger: z
            .enum(['schedule', 'catch-up', 'volume-discovered', 'container-stopped', 'manual', 'retry'])
            .optional(),
          since: z.iso.datetime({ offset: true }).optional().describe('created at or after'),
        }),
        response: { 200: pageOf(backupView) },
      },
    },
    async (req) =>
      queries.listBackups(
        {
          hostId: queries.resolveHostFilter(req.query.host),
          volumeName: req.query.volume,
          phase: req.query.phase,
          trigger: req.query.trigger,
          since: req.query.since,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/backups/:backupId',
    {
      schema: {
        tags: ['backups'],
        summary: 'One backup',
        params: z.object({ backupId: z.string().min(1).max(200) }),
        response: { 200: backupView },
      },
    },
    async (req) => queries.getBackup(req.params.backupId),
  );

  app.get(
    '/v1/restores',
    {
      schema: {
        tags: ['restores'],
        summary: 'Restores, newest first',
        querystring: z.object({
          ...paging,
          host: hostRef.optional(),
          snapshot: z
            .string()
            .regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits')
            .optional(),
          phase: z.enum(Object.values(RestorePhase) as [RestorePhase, ...RestorePhase[]]).optional(),
        }),
        response: { 200: pageOf(restoreView) },
      },
    },
    async (req) =>
      queries.listRestores(
        {
          hostId: queries.resolveHostFilter(req.query.host),
          snapshotId: req.query.snapshot,
          phase: req.query.phase,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/restores/:restoreId',
    {
      schema: {
        tags: ['restores'],
        summary: 'One restore',
        params: z.object({ restoreId: z.string().min(1).max(200) }),
        response: { 200: restoreView },
      },
    },
    async (req) => queries.getRestore(req.params.restoreId),
  );

  app.get(
    '/v1/snapshots',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Snapshots, newest first',
        querystring: z.object({
          ...paging,
          host: hostRef.optional(),
          volume: volumeName.optional(),
          includeForgotten: queryFlag,
        }),
        response: { 200: pageOf(snapshotView) },
      },
    },
    async (req) =>
      queries.listSnapshots(
        {
          hostId: queries.resolveHostFilter(req.query.host),
          volumeName: req.query.volume,
          includeForgotten: req.query.includeForgotten,
        },
        req.query,
      ),
  );

  app.get(
    '/v1/repository/operations',
    {
      schema: {
        tags: ['repository'],
        summary: 'Outcomes of forget, prune and check, newest first',
        querystring: z.object({
          ...paging,
          repository: z.string().min(1).max(63).optional(),
          operation: z.enum(['forget', 'prune', 'check', 'import']).optional(),
        }),
        response: { 200: pageOf(repositoryOperationView) },
      },
    },
    async (req) =>
      queries.listOperations(
        { repositoryId: req.query.repository, operation: req.query.operation },
        req.query,
      ),
  );

  app.get(
    '/v1/repository/operations/:operationId',
    {
      schema: {
        tags: ['repository'],
        summary: 'One forget, prune or check: `Requested` until its outcome is recorded',
        params: z.object({ operationId: z.string().min(1).max(200) }),
        response: { 200: repositoryOperationView },
      },
    },
    async (req) => queries.getOperation(req.params.operationId),
  );
}
