import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { setId, volumeName } from '@volback/contracts';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { CommandSender } from '../adapters/command-sender.ts';
import { BadRequestError, CatalogErrorCode, ConflictError, NotFoundError } from '../errors.ts';
import { setBackupView, setRestoreView, setView } from '../read-model.ts';
import { hostRef, requestedBy } from './params.ts';

const setParams = z.object({ setId });
const accepted = <S extends z.ZodRawShape>(extra: S) =>
  z.object({ status: z.literal('accepted'), ...extra, location: z.string() });

/** Backup sets: list them, back one up now, follow its backups, restore it (volumes and containers). */
export function registerSetRoutes(
  fastify: FastifyInstance,
  deps: { queries: CatalogQueries; commands: CommandSender; now: () => Date },
): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { queries, commands, now } = deps;

  /** The one host a set lives on: the given one, else the only host that has it. */
  const hostOf = (set: string, ref: string | undefined): string => {
    if (ref !== undefined) return queries.getSet(queries.resolveHost(ref), set).hostId;
    const hosts = queries.listSets().filter((s) => s.setId === set);
    if (hosts.length === 0)
      throw new NotFoundError(CatalogErrorCode.SetNotFound, `no host has a set ${JSON.stringify(set)}`);
    if (hosts.length > 1) {
      throw new BadRequestError(
        CatalogErrorCode.BadRequest,
        'hostId',
        `set ${set} is on several hosts (${hosts.map((s) => s.hostId).join(', ')}): say which`,
      );
    }
    return hosts[0]!.hostId;
  };

  app.get(
    '/v1/sets',
    {
      schema: {
        tags: ['sets'],
        summary: 'Backup sets: compose projects and volback.group labels, per host',
        querystring: z.object({ hostId: hostRef.optional() }),
        response: { 200: z.object({ items: z.array(setView) }) },
      },
    },
    async (req) => ({ items: queries.listSets(queries.resolveHostFilter(req.query.hostId)) }),
  );

  app.get(
    '/v1/sets/:setId',
    {
      schema: {
        tags: ['sets'],
        summary: 'One set, its members now and its recent backups',
        params: setParams,
        querystring: z.object({ hostId: hostRef.optional() }),
        response: { 200: setView.extend({ backups: z.array(setBackupView) }) },
      },
    },
    async (req) => {
      const host = hostOf(req.params.setId, req.query.hostId);
      return {
        ...queries.getSet(host, req.params.setId),
        backups: queries.listSetBackups(host, req.params.setId),
      };
    },
  );

  app.get(
    '/v1/set-backups/:backupId',
    {
      schema: {
        tags: ['sets'],
        summary: 'One backup of a set: its phase and member snapshots',
        params: z.object({ backupId: z.string().min(1).max(200) }),
        response: { 200: setBackupView },
      },
    },
    async (req) => queries.getSetBackup(req.params.backupId),
  );

  app.get(
    '/v1/set-restores/:restoreId',
    {
      schema: {
        tags: ['sets'],
        summary: 'One restore of a set: its volumes and the containers it recreated (or would)',
        params: z.object({ restoreId: z.string().min(1).max(200) }),
        response: { 200: setRestoreView },
      },
    },
    async (req) => queries.getSetRestore(req.params.restoreId),
  );

  app.post(
    '/v1/sets/:setId/backups',
    {
      bodyLimit: 8 * 1024,
      schema: {
        tags: ['sets'],
        summary: 'Back up every volume of a set now, at one point in time',
        description:
          "Sends `BackupSet` to the agent of the set's host, which quiesces the set's containers once, snapshots every volume and resumes. Follow it on `/v1/set-backups/{backupId}` (404 until the agent has started it).",
        params: setParams,
        body: z.object({ hostId: hostRef.optional(), requestedBy }).nullish().describe('optional'),
        response: { 202: accepted({ backupId: z.string() }) },
      },
    },
    async (req, reply) => {
      const host = hostOf(req.params.setId, req.body?.hostId);
      const { backupId } = await commands.backupSet({
        hostId: host,
        setId: req.params.setId,
        requestedBy: req.body?.requestedBy ?? 'api',
      });
      const location = `/v1/set-backups/${encodeURIComponent(backupId)}`;
      return reply.code(202).header('location', location).send({ status: 'accepted', backupId, location });
    },
  );

  app.post(
    '/v1/sets/:setId/restores',
    {
      bodyLimit: 8 * 1024,
      schema: {
        tags: ['sets'],
        summary: 'Restore every volume of a set backup, and optionally recreate its containers',
        description:
          'Restores the member snapshots of one set backup (the newest with snapshots unless `setBackupId`) on `toHostId` (the set\u2019s host unless given): under new names (`<volume><volumeSuffix>`) or in place. With `recreateContainers` the agent creates the containers again from the configuration the snapshots recorded, mounts pointed at the restored volumes, and starts those that were running. `dryRun` creates nothing and lists what would be. Follow it on `/v1/set-restores/{restoreId}`.',
        params: setParams,
        body: z.object({
          hostId: hostRef
            .optional()
            .describe('the set\u2019s host, when several hosts have a set of that name'),
          setBackupId: z.string().min(1).max(200).optional(),
          toHostId: hostRef.optional().describe('where to restore; the set\u2019s host when absent'),
          inPlace: z
            .boolean()
            .default(false)
            .describe('into the volumes of the same names (their containers stopped meanwhile)'),
          volumeSuffix: z
            .string()
            .max(60)
            .regex(/^[a-zA-Z0-9_.-]*$/)
            .default('-restored')
            .describe('appended to each volume name unless inPlace'),
          recreateContainers: z.boolean().default(false),
          containerSuffix: z
            .string()
            .max(60)
            .regex(/^[a-zA-Z0-9_.-]*$/)
            .default(''),
          startContainers: z.boolean().default(true),
          dryRun: z.boolean().default(false),
          requestedBy,
        }),
        response: { 202: accepted({ restoreId: z.string(), setBackupId: z.string() }) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const set = req.params.setId;
      const source = hostOf(set, body.hostId);
      const backup =
        body.setBackupId !== undefined
          ? queries.getSetBackup(body.setBackupId)
          : queries.getSet(source, set).lastRestorable;
      const restorable = backup && (backup.phase === 'Completed' || backup.phase === 'PartiallyFailed');
      if (!backup || !restorable || backup.members.length === 0 || backup.setId !== set) {
        throw new NotFoundError(
          CatalogErrorCode.SetBackupNotFound,
          body.setBackupId !== undefined
            ? `set backup ${body.setBackupId} is not a backup of ${set} with snapshots`
            : `set ${set} has no backup with snapshots yet: back it up first`,
        );
      }
      const target = body.toHostId === undefined ? source : queries.resolveHost(body.toHostId);
      queries.getHost(target);
      const liveVolume = (name: string) => {
        try {
          return !queries.getVolume(target, name).removedAt;
        } catch (error) {
          if (error instanceof NotFoundError) return false;
          throw error;
        }
      };
      const members = backup.members.map((m) => {
        if (body.inPlace) {
          return {
            snapshotId: m.snapshotId,
            volumeName: m.volumeName,
            target: liveVolume(m.volumeName)
              ? { kind: 'existing-volume' as const, volumeName: m.volumeName, stopContainers: true }
              : { kind: 'new-volume' as const, volumeName: m.volumeName },
          };
        }
        const name = `${m.volumeName}${body.volumeSuffix}`;
        const valid = volumeName.safeParse(name);
        if (!valid.success)
          throw new BadRequestError(
            CatalogErrorCode.BadRequest,
            'body.volumeSuffix',
            `${name}: not a volume name`,
          );
        if (liveVolume(name)) {
          throw new ConflictError(
            CatalogErrorCode.VolumeExists,
            `host ${JSON.stringify(target)} already has a volume ${JSON.stringify(name)}: choose another volumeSuffix or inPlace`,
          );
        }
        return {
          snapshotId: m.snapshotId,
          volumeName: m.volumeName,
          target: { kind: 'new-volume' as const, volumeName: name },
        };
      });
      const { restoreId } = await commands.restoreSet({
        hostId: target,
        setId: set,
        setBackupId: backup.backupId,
        repositoryId: queries.getSnapshot(backup.members[0]!.snapshotId).repositoryId,
        members,
        recreateContainers: body.recreateContainers,
        containerSuffix: body.containerSuffix,
        startContainers: body.startContainers,
        dryRun: body.dryRun,
        requestedBy: body.requestedBy ?? 'api',
        now: now(),
      });
      const location = `/v1/set-restores/${encodeURIComponent(restoreId)}`;
      return reply
        .code(202)
        .header('location', location)
        .send({ status: 'accepted', restoreId, setBackupId: backup.backupId, location });
    },
  );
}
