import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  hostId,
  issuesText,
  policyDefinitionIssues,
  policyId,
  policyRemovalIssues,
  policyScope,
  policySpec,
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
import { requestedBy, snapshotRef, volumeParams } from './params.ts';

const write = { access: 'write' as const };

const accepted = <S extends z.ZodRawShape>(extra: S) =>
  z.object({ status: z.literal('accepted'), ...extra, location: z.string().optional() });

/** The rules' issues as request fields: the id is a path parameter, the rest is in the body. */
function requestIssues(issues: readonly PolicyIssue[]): FieldIssue[] {
  return issues.map((i) => ({
    field: i.field === 'policyId' ? 'params.policyId' : `body.${i.field}`,
    message: i.message,
  }));
}

/** Routes that issue commands: back up now, restore, define and remove policies, rebuild. */
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
      config: write,
      schema: {
        tags: ['backups'],
        summary: 'Back up a volume now',
        description:
          "Sends `BackupVolume` straight to the host's agent (after recording `BackupRequested`), with the consistency, excludes and repository of the policy that applies. Follow it on `/v1/backups/{backupId}` or the live stream with `work={backupId}`.",
        params: volumeParams,
        body: z.object({ requestedBy }).nullish().describe('optional'),
        response: { 202: accepted({ backupId: z.string() }) },
      },
    },
    async (req, reply) => {
      const { hostId: host, volumeName: name } = req.params;
      queries.requireLiveVolume(host, name);
      const policy = queries.effectivePolicy(host, name)?.policy as
        { repositoryId?: string; consistency?: never; excludes?: string[] } | undefined;
      const { backupId } = await commands.backupNow({
        hostId: host,
        volumeName: name,
        requestedBy: req.body?.requestedBy ?? 'api',
        settings: policy
          ? {
              ...(policy.repositoryId ? { repositoryId: policy.repositoryId } : {}),
              ...(policy.consistency ? { consistency: policy.consistency } : {}),
              ...(policy.excludes ? { excludes: policy.excludes } : {}),
            }
          : {},
        now: now(),
      });
      const location = `/v1/backups/${encodeURIComponent(backupId)}`;
      return reply.code(202).header('location', location).send({ status: 'accepted', backupId, location });
    },
  );

  app.post(
    '/v1/restores',
    {
      config: write,
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
          hostId: hostId.optional().describe("where to restore; the snapshot's own host when absent"),
          path: z.string().max(4096).optional().describe('restore only this path of the volume'),
          requestedBy,
        }),
        response: { 202: accepted({ restoreId: z.string() }) },
      },
    },
    async (req, reply) => {
      const snapshot = queries.getSnapshot(req.body.snapshotId);
      const host = req.body.hostId ?? snapshot.hostId;
      queries.getHost(host);
      let path: string | undefined;
      if (req.body.path !== undefined) {
        const canonical = canonicalVolumePath(req.body.path);
        if (typeof canonical !== 'string')
          throw new BadRequestError(CatalogErrorCode.BadRequest, 'body.path', canonical.error);
        path = canonical === '/' ? undefined : canonical;
      }
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
      config: write,
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
      config: write,
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

  if (deps.rebuild) {
    const rebuild = deps.rebuild;
    app.post(
      '/v1/admin/rebuild',
      {
        config: write,
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
