import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  issuesText,
  policyDefinitionIssues,
  policyId,
  policyRemovalIssues,
  policyScope,
  policySpec,
  retention,
  volumeName,
  workId,
  type PolicyIssue,
  type PolicyOrigin,
} from '@volback/contracts';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { CommandSender } from '../adapters/command-sender.ts';
import { canonicalVolumePath } from '../domain/snapshot-path.ts';
import {
  BadRequestError,
  CatalogError,
  CatalogErrorCode,
  ConflictError,
  NotFoundError,
  type FieldIssue,
} from '../errors.ts';
import { hostRef, requestedBy, snapshotRef, volumeParams } from './params.ts';

/** Most commands' bodies are a few fields: a smaller limit than the API's. */
const small = { bodyLimit: 8 * 1024 };

const accepted = <S extends z.ZodRawShape>(extra: S) =>
  z.object({ status: z.literal('accepted'), ...extra, location: z.string().optional() });

/** The rules' issues as request fields: the id is a path parameter, the rest is in the body. */
function requestIssues(issues: readonly PolicyIssue[]): FieldIssue[] {
  return issues.map((i) => ({
    field: i.field === 'policyId' ? 'params.policyId' : `body.${i.field}`,
    message: i.message,
  }));
}

/** Routes that issue commands: back up now, restore, define and remove policies, forget/prune/check, rebuild. */
export function registerCommandRoutes(
  fastify: FastifyInstance,
  deps: {
    queries: CatalogQueries;
    commands: CommandSender;
    now: () => Date;
    rebuild?: (() => Promise<void>) | undefined;
  },
): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { queries, commands, now } = deps;
  /** Where a policy the read model knows came from (undefined when it knows none). */
  const originOf = (policyId: string): PolicyOrigin | undefined => {
    try {
      return queries.getPolicy(policyId).origin as PolicyOrigin;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  };

  app.post(
    '/v1/hosts/:hostId/volumes/:volumeName/backups',
    {
      ...small,
      schema: {
        tags: ['backups'],
        summary: 'Back up a volume now',
        description:
          "Sends `RequestBackup` to the scheduler, which records `BackupRequested` under the returned `backupId` and sends `BackupVolume` to the host's agent with the consistency, excludes and repository of the policy that applies (retried like a scheduled backup). Follow it on `/v1/backups/{backupId}` (404 for the moment until the scheduler has recorded it) or the live stream with `work={backupId}`.",
        params: volumeParams,
        body: z.object({ requestedBy }).nullish().describe('optional'),
        response: { 202: accepted({ backupId: z.string() }) },
      },
    },
    async (req, reply) => {
      const host = queries.resolveHost(req.params.hostId);
      const name = req.params.volumeName;
      queries.requireLiveVolume(host, name);
      const { backupId } = await commands.backupNow({
        hostId: host,
        volumeName: name,
        requestedBy: req.body?.requestedBy ?? 'api',
      });
      const location = `/v1/backups/${encodeURIComponent(backupId)}`;
      return reply.code(202).header('location', location).send({ status: 'accepted', backupId, location });
    },
  );

  app.post(
    '/v1/restores',
    {
      schema: {
        tags: ['restores'],
        summary: 'Restore a snapshot (or a path in it) into a volume',
        description:
          "Sends `RestoreSnapshot` to the agent of the snapshot's host (or `hostId`). To download instead, use `GET /v1/snapshots/{snapshotId}/tar`.",
        body: z.object({
          snapshotId: snapshotRef,
          target: z.discriminatedUnion('kind', [
            z.object({ kind: z.literal('new-volume'), volumeName }),
            z.object({
              kind: z.literal('existing-volume'),
              volumeName,
              stopContainers: z.boolean().default(false),
            }),
          ]),
          hostId: hostRef
            .optional()
            .describe("where to restore (id or name); the snapshot's own host when absent"),
          path: z
            .string()
            .max(4096)
            .optional()
            .describe(
              'restore only this path of the volume; it lands at its own place (`2024/01` → `<targetPath>/2024/01`)',
            ),
          targetPath: z
            .string()
            .max(4096)
            .optional()
            .describe(
              'directory inside the target volume to restore into (created when missing); the volume root when absent',
            ),
          dryRun: z
            .boolean()
            .default(false)
            .describe(
              'write nothing; the completed restore lists what would be written, replaced and left alone',
            ),
          preserveSpecialModes: z
            .boolean()
            .default(false)
            .describe(
              'keep setuid/setgid bits; the agent keeps them only for a snapshot of its own host (device nodes are never restored)',
            ),
          requestedBy,
        }),
        response: { 202: accepted({ restoreId: z.string() }) },
      },
    },
    async (req, reply) => {
      const snapshot = queries.getSnapshot(req.body.snapshotId);
      const host = req.body.hostId === undefined ? snapshot.hostId : queries.resolveHost(req.body.hostId);
      queries.getHost(host);
      const inVolume = (field: 'path' | 'targetPath'): string | undefined => {
        const given = req.body[field];
        if (given === undefined) return undefined;
        const canonical = canonicalVolumePath(given);
        if (typeof canonical !== 'string')
          throw new BadRequestError(CatalogErrorCode.BadRequest, `body.${field}`, canonical.error);
        return canonical === '/' ? undefined : canonical;
      };
      const path = inVolume('path');
      const targetPath = inVolume('targetPath');
      const target = req.body.target;
      const existing = (() => {
        try {
          return queries.getVolume(host, target.volumeName);
        } catch (error) {
          if (error instanceof NotFoundError) return undefined;
          throw error;
        }
      })();
      if (target.kind === 'new-volume' && existing && !existing.removedAt) {
        throw new ConflictError(
          CatalogErrorCode.VolumeExists,
          `host ${JSON.stringify(host)} already has a volume ${JSON.stringify(target.volumeName)}; restore into a new name or use existing-volume`,
        );
      }
      if (target.kind === 'existing-volume' && (!existing || existing.removedAt)) {
        throw new NotFoundError(
          CatalogErrorCode.VolumeNotFound,
          `host ${JSON.stringify(host)} has no volume ${JSON.stringify(target.volumeName)}`,
        );
      }
      const { restoreId } = await commands.restore({
        hostId: host,
        snapshotId: snapshot.snapshotId,
        repositoryId: snapshot.repositoryId,
        target,
        path,
        targetPath,
        dryRun: req.body.dryRun,
        preserveSpecialModes: req.body.preserveSpecialModes,
        requestedBy: req.body.requestedBy ?? 'api',
        now: now(),
      });
      const location = `/v1/restores/${encodeURIComponent(restoreId)}`;
      return reply.code(202).header('location', location).send({ status: 'accepted', restoreId, location });
    },
  );

  app.put(
    '/v1/policies/:policyId',
    {
      schema: {
        tags: ['policies'],
        summary: 'Define or replace a policy',
        description:
          'Checks what the catalog can (the rules the scheduler applies: time zone, cron expression, ids of label policies) and answers 400 naming every problem at once; else sends `DefinePolicy` to the scheduler, which records `PolicyDefined` or `PolicyRejected` (on `volback.evt.policy.<policyId>`, `causationid` = the `commandId` answered here); the policy shows in `GET /v1/policies` once recorded.',
        params: z.object({ policyId }),
        body: z.object({ scope: policyScope, policy: policySpec, requestedBy }),
        response: { 202: accepted({ policyId: z.string(), commandId: z.string() }) },
      },
    },
    async (req, reply) => {
      const issues = policyDefinitionIssues({
        policyId: req.params.policyId,
        policy: req.body.policy,
        existingOrigin: originOf(req.params.policyId),
      });
      if (issues.length > 0) {
        const fields = requestIssues(issues);
        throw new CatalogError(CatalogErrorCode.BadRequest, issuesText(fields), { issues: fields });
      }
      const { commandId } = await commands.definePolicy({
        policyId: req.params.policyId,
        scope: req.body.scope,
        policy: req.body.policy,
        requestedBy: req.body.requestedBy ?? 'api',
      });
      const location = `/v1/policies/${encodeURIComponent(req.params.policyId)}`;
      return reply
        .code(202)
        .header('location', location)
        .send({ status: 'accepted', policyId: req.params.policyId, commandId, location });
    },
  );

  app.delete(
    '/v1/policies/:policyId',
    {
      ...small,
      schema: {
        tags: ['policies'],
        summary: 'Remove a policy',
        description:
          'Sends `RemovePolicy` to the scheduler, which records `PolicyRemoved` or `PolicyRejected` (`causationid` = the `commandId` answered here). The policy must be known to the catalog (404) and come from the API: a label or configuration policy is refused at once (409).',
        params: z.object({ policyId: workId }),
        querystring: z.object({ requestedBy }),
        response: { 202: accepted({ policyId: z.string(), commandId: z.string() }) },
      },
    },
    async (req, reply) => {
      const origin = queries.getPolicy(req.params.policyId).origin as PolicyOrigin;
      const issues = policyRemovalIssues(req.params.policyId, origin);
      if (issues.length > 0) {
        const fields = requestIssues(issues);
        throw new ConflictError(CatalogErrorCode.PolicyNotRemovable, issuesText(fields), { issues: fields });
      }
      const { commandId } = await commands.removePolicy({
        policyId: req.params.policyId,
        requestedBy: req.query.requestedBy ?? 'api',
      });
      return reply.code(202).send({ status: 'accepted', policyId: req.params.policyId, commandId });
    },
  );

  registerMaintenanceRoutes(fastify, deps);

  if (deps.rebuild) {
    const rebuild = deps.rebuild;
    app.post(
      '/v1/admin/rebuild',
      {
        ...small,
        schema: {
          tags: ['admin'],
          summary: 'Empty this replica’s read model and replay the event log into it',
          response: { 202: z.object({ status: z.literal('accepted') }) },
        },
      },
      async (_req, reply) => {
        await rebuild();
        return reply.code(202).send({ status: 'accepted' as const });
      },
    );
  }
}

const repositoryField = z
  .string()
  .min(1)
  .max(63)
  .default('default')
  .describe('the repository; `default` when absent');
const operationAccepted = { 202: accepted({ operationId: z.string() }) };

/**
 * Repository maintenance on request: forget (one volume's snapshots by a retention), prune and
 * check. Each records `RepositoryMaintenanceRequested` and sends the gateways' command; the outcome
 * (`SnapshotsForgotten`, `RepositoryPruned`, `RepositoryChecked` or `RepositoryMaintenanceFailed`)
 * shows on `/v1/repository/operations/{operationId}` and on the live stream with `work={operationId}`.
 * The re-import of snapshots the same way, with `RepositoryImportRequested`/`Completed`/`Failed`.
 */
function registerMaintenanceRoutes(
  fastify: FastifyInstance,
  deps: { queries: CatalogQueries; commands: CommandSender; now: () => Date },
): void {
  const typed = fastify.withTypeProvider<ZodTypeProvider>();
  const { queries, commands, now } = deps;
  const answer = (reply: FastifyReply, operationId: string) => {
    const location = `/v1/repository/operations/${encodeURIComponent(operationId)}`;
    return reply.code(202).header('location', location).send({ status: 'accepted', operationId, location });
  };

  typed.post(
    '/v1/hosts/:hostId/volumes/:volumeName/forget',
    {
      ...small,
      schema: {
        tags: ['repository'],
        summary: "Forget a volume's snapshots by a retention (restic forget)",
        params: volumeParams,
        body: z.object({
          retention,
          dryRun: z.boolean().default(false),
          repositoryId: repositoryField,
          requestedBy,
        }),
        response: operationAccepted,
      },
    },
    async (req, reply) => {
      const hostId = queries.resolveHost(req.params.hostId);
      queries.getVolume(hostId, req.params.volumeName);
      const { operationId } = await commands.maintenance({
        operation: 'forget',
        repositoryId: req.body.repositoryId,
        hostId,
        volumeName: req.params.volumeName,
        retention: req.body.retention,
        dryRun: req.body.dryRun,
        requestedBy: req.body.requestedBy ?? 'api',
        now: now(),
      });
      return answer(reply, operationId);
    },
  );

  typed.post(
    '/v1/repository/prune',
    {
      ...small,
      schema: {
        tags: ['repository'],
        summary: 'Prune the repository: remove unreferenced data, repack partly used packs',
        body: z.object({
          maxUnusedFraction: z.number().min(0).max(1).default(0.05),
          repositoryId: repositoryField,
          requestedBy,
        }),
        response: operationAccepted,
      },
    },
    async (req, reply) => {
      const { operationId } = await commands.maintenance({
        operation: 'prune',
        repositoryId: req.body.repositoryId,
        maxUnusedFraction: req.body.maxUnusedFraction,
        requestedBy: req.body.requestedBy ?? 'api',
        now: now(),
      });
      return answer(reply, operationId);
    },
  );

  typed.post(
    '/v1/repository/check',
    {
      ...small,
      schema: {
        tags: ['repository'],
        summary: 'Check the repository structure and read back a share of its data',
        body: z.object({
          readDataFraction: z.number().min(0).max(1).default(0),
          repositoryId: repositoryField,
          requestedBy,
        }),
        response: operationAccepted,
      },
    },
    async (req, reply) => {
      const { operationId } = await commands.maintenance({
        operation: 'check',
        repositoryId: req.body.repositoryId,
        readDataFraction: req.body.readDataFraction,
        requestedBy: req.body.requestedBy ?? 'api',
        now: now(),
      });
      return answer(reply, operationId);
    },
  );

  typed.post(
    '/v1/repository/import',
    {
      ...small,
      schema: {
        tags: ['repository'],
        summary: "Re-import the repository's snapshots the event log does not know (after the log was lost)",
        description:
          "The gateways list the repository's snapshots and record `SnapshotImported` for each volback snapshot (tags `volback`, `volume:`, `host:`, `host-id:`, or the path `/volumes/<name>`) the log lacks; each is imported once, however often this runs. The operation's summary counts `imported`, `alreadyKnown` and `skipped` (not volback's).",
        body: z
          .object({ repositoryId: repositoryField, requestedBy })
          .nullish()
          .describe('optional: the default repository'),
        response: operationAccepted,
      },
    },
    async (req, reply) => {
      const { operationId } = await commands.importSnapshots({
        repositoryId: req.body?.repositoryId ?? 'default',
        requestedBy: req.body?.requestedBy ?? 'api',
        now: now(),
      });
      return answer(reply, operationId);
    },
  );
}
