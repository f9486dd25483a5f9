import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { drillSpec, workId } from '@volback/contracts';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { CommandSender } from '../adapters/command-sender.ts';
import { CatalogErrorCode, ConflictError } from '../errors.ts';
import { drillView, pageOf } from '../read-model.ts';
import { paging, requestedBy, volumeParams } from './params.ts';

/** The drill part of a policy as the read model holds it (`policy.drill`), when it has one. */
function policyDrill(policy: Record<string, unknown>): Partial<z.output<typeof drillSpec>> {
  const parsed = drillSpec.safeParse(policy['drill']);
  return parsed.success ? parsed.data : {};
}

/** Restore drills: a volume's drills, one drill, and "drill now". */
export function registerDrillRoutes(
  fastify: FastifyInstance,
  deps: { queries: CatalogQueries; commands: CommandSender; now: () => Date },
): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { queries, commands, now } = deps;

  app.get(
    '/v1/hosts/:hostId/volumes/:volumeName/drills',
    {
      schema: {
        tags: ['drills'],
        summary: "A volume's restore drills, newest first",
        params: volumeParams,
        querystring: z.object(paging),
        response: { 200: pageOf(drillView) },
      },
    },
    async (req) => {
      const host = queries.resolveHost(req.params.hostId);
      queries.getVolume(host, req.params.volumeName);
      return queries.listDrills(host, req.params.volumeName, req.query);
    },
  );

  app.get(
    '/v1/drills/:drillId',
    {
      schema: {
        tags: ['drills'],
        summary: 'One restore drill',
        params: z.object({ drillId: workId }),
        response: { 200: drillView },
      },
    },
    async (req) => queries.getDrill(req.params.drillId),
  );

  app.post(
    '/v1/hosts/:hostId/volumes/:volumeName/drills',
    {
      bodyLimit: 8 * 1024,
      schema: {
        tags: ['drills'],
        summary: 'Run a restore drill of a volume now',
        description:
          "Records `RestoreDrillRequested` and sends `RestoreDrill` to the volume's agent: it restores the volume's latest snapshot into a scratch volume, compares every file with the snapshot, optionally starts the recorded containers there and runs the health command, then removes it all. `containers`, `health` and `healthTimeoutSeconds` default to the volume's policy (`volback.drill.*` labels). Follow it on `/v1/drills/{drillId}` (404 until the catalog has read the request).",
        params: volumeParams,
        body: z
          .object({
            containers: z
              .boolean()
              .optional()
              .describe('start the recorded containers on the scratch volume'),
            health: drillSpec.shape.health.describe(
              'run with `sh -c` in each started container; exit 0 passes',
            ),
            healthTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
            requestedBy,
          })
          .nullish()
          .describe('optional'),
        response: {
          202: z.object({ status: z.literal('accepted'), drillId: z.string(), location: z.string() }),
        },
      },
    },
    async (req, reply) => {
      const host = queries.resolveHost(req.params.hostId);
      const name = req.params.volumeName;
      const volume = queries.requireLiveVolume(host, name);
      if (!volume.protection.lastSnapshotId) {
        throw new ConflictError(
          CatalogErrorCode.NothingToDrill,
          `volume ${JSON.stringify(name)} on host ${JSON.stringify(host)} has no snapshot yet: back it up first`,
        );
      }
      const policy = volume.protection.policyId ? queries.getPolicy(volume.protection.policyId).policy : {};
      const fromPolicy = policyDrill(policy);
      const health = req.body?.health ?? fromPolicy.health;
      const { drillId } = await commands.drill({
        hostId: host,
        volumeName: name,
        repositoryId: typeof policy['repositoryId'] === 'string' ? policy['repositoryId'] : 'default',
        containers: req.body?.containers ?? fromPolicy.containers ?? false,
        health,
        healthTimeoutSeconds: req.body?.healthTimeoutSeconds ?? fromPolicy.healthTimeoutSeconds ?? 60,
        requestedBy: req.body?.requestedBy ?? 'api',
        now: now(),
      });
      const location = `/v1/drills/${encodeURIComponent(drillId)}`;
      return reply.code(202).header('location', location).send({ status: 'accepted', drillId, location });
    },
  );
}
