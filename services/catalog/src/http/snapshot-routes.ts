import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { SnapshotReader } from '../adapters/snapshot-reader.ts';
import { compileGlob, InvalidGlobError, type Glob } from '../domain/glob.ts';
import { canonicalVolumePath } from '../domain/snapshot-path.ts';
import { BadRequestError, CatalogErrorCode } from '../errors.ts';
import { foundFileView, snapshotView, treeEntryView } from '../read-model.ts';
import { queryFlag, snapshotParams, volumeParams, volumePathQuery } from './params.ts';

const read = { access: 'read' as const };

function pathOf(raw: string, field = 'query.path'): string {
  const canonical = canonicalVolumePath(raw);
  if (typeof canonical !== 'string')
    throw new BadRequestError(CatalogErrorCode.BadRequest, field, canonical.error);
  return canonical;
}

function globOf(raw: string): Glob {
  try {
    return compileGlob(raw);
  } catch (error) {
    if (error instanceof InvalidGlobError) {
      throw new BadRequestError(CatalogErrorCode.BadRequest, 'query.glob', error.message, { cause: error });
    }
    throw error;
  }
}

/** A snapshot's contents, read through the storage gateways: browse, find, download as tar. */
export function registerSnapshotRoutes(
  fastify: FastifyInstance,
  deps: { queries: CatalogQueries; reader: SnapshotReader },
): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { queries, reader } = deps;

  app.get(
    '/v1/snapshots/:snapshotId',
    {
      config: read,
      schema: {
        tags: ['snapshots'],
        summary: 'One snapshot (by id or unique prefix)',
        params: snapshotParams,
        response: { 200: snapshotView },
      },
    },
    async (req) => queries.getSnapshot(req.params.snapshotId),
  );

  app.get(
    '/v1/snapshots/:snapshotId/tree',
    {
      config: read,
      schema: {
        tags: ['snapshots'],
        summary: 'The entries of a directory in a snapshot (a file: that file)',
        params: snapshotParams,
        querystring: z.object({ path: volumePathQuery }),
        response: {
          200: z.object({ snapshotId: z.string(), path: z.string(), entries: z.array(treeEntryView) }),
        },
      },
    },
    async (req) => {
      const snapshot = queries.getSnapshot(req.params.snapshotId);
      const path = pathOf(req.query.path);
      const entries = await reader.list(snapshot, path);
      return { snapshotId: snapshot.snapshotId, path, entries };
    },
  );

  app.get(
    '/v1/snapshots/:snapshotId/tar',
    {
      config: read,
      schema: {
        tags: ['snapshots'],
        summary: 'Download a snapshot sub-tree as a tar stream (names relative to `path`)',
        params: snapshotParams,
        querystring: z.object({ path: volumePathQuery }),
      },
    },
    async (req, reply) => {
      const snapshot = queries.getSnapshot(req.params.snapshotId);
      const path = pathOf(req.query.path);
      const stream = await reader.tar(snapshot, path);
      stream.on('error', (error) =>
        req.log.error({ err: error, snapshotId: snapshot.snapshotId }, 'tar stream failed midway'),
      );
      const base = path === '/' ? snapshot.volumeName : path.split('/').at(-1)!;
      return reply
        .type('application/x-tar')
        .header(
          'content-disposition',
          `attachment; filename="${`${base}-${snapshot.shortId}.tar`.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
        )
        .send(stream);
    },
  );

  app.get(
    '/v1/hosts/:hostId/volumes/:volumeName/find',
    {
      config: read,
      schema: {
        tags: ['snapshots'],
        summary: "Find files by name or glob across a volume's snapshots, newest snapshot first",
        description:
          'A pattern without `/` matches base names (`*.sql`); with `/` the whole volume-relative path (`app/**/config.*`).',
        params: volumeParams,
        querystring: z.object({
          glob: z.string().min(1).max(1000),
          snapshots: z.coerce
            .number()
            .int()
            .min(1)
            .max(100)
            .default(10)
            .describe('how many of the newest snapshots to search'),
          limit: z.coerce.number().int().min(1).max(5000).default(500).describe('most matches returned'),
          includeForgotten: queryFlag,
        }),
        response: {
          200: z.object({
            items: z.array(foundFileView),
            truncated: z.boolean(),
            snapshotsSearched: z.number().int(),
          }),
        },
      },
    },
    async (req) => {
      const glob = globOf(req.query.glob);
      queries.getVolume(req.params.hostId, req.params.volumeName);
      const snapshots = queries.listSnapshots(
        {
          hostId: req.params.hostId,
          volumeName: req.params.volumeName,
          includeForgotten: req.query.includeForgotten,
        },
        { limit: req.query.snapshots },
      ).items;
      const items: z.infer<typeof foundFileView>[] = [];
      let truncated = false;
      for (const snapshot of snapshots) {
        const left = req.query.limit - items.length;
        if (left <= 0) {
          truncated = true;
          break;
        }
        const found = await reader.find(snapshot, glob, left);
        items.push(
          ...found.entries.map((e) => ({
            ...e,
            snapshotId: snapshot.snapshotId,
            snapshotTime: snapshot.time,
          })),
        );
        if (found.truncated) {
          truncated = true;
          break;
        }
      }
      return { items, truncated, snapshotsSearched: snapshots.length };
    },
  );
}
