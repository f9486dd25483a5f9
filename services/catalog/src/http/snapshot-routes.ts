import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { SnapshotReader } from '../adapters/snapshot-reader.ts';
import { decodeCursor, encodeCursor } from '../domain/cursor.ts';
import { compileGlob, InvalidGlobError, type Glob } from '../domain/glob.ts';
import { canonicalVolumePath } from '../domain/snapshot-path.ts';
import { BadRequestError, CatalogErrorCode } from '../errors.ts';
import { foundFileView, snapshotDiffView, snapshotView, treeEntryView } from '../read-model.ts';
import { queryFlag, snapshotParams, snapshotRef, volumeParams, volumePathQuery } from './params.ts';

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
    '/v1/snapshots/:snapshotId/file',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Download one file of a snapshot: its content as it was (a directory: use `/tar`)',
        params: snapshotParams,
        querystring: z.object({ path: volumePathQuery }),
      },
    },
    async (req, reply) => {
      const snapshot = queries.getSnapshot(req.params.snapshotId);
      const path = pathOf(req.query.path);
      const { size, stream } = await reader.file(snapshot, path);
      stream.on('error', (error) =>
        req.log.error({ err: error, snapshotId: snapshot.snapshotId }, 'file stream failed midway'),
      );
      return reply
        .type('application/octet-stream')
        .header('content-length', size)
        .header(
          'content-disposition',
          `attachment; filename="${path
            .split('/')
            .at(-1)!
            .replace(/[^A-Za-z0-9._-]/g, '_')}"`,
        )
        .send(stream);
    },
  );

  app.get(
    '/v1/snapshots/:snapshotId/diff',
    {
      schema: {
        tags: ['snapshots'],
        summary: 'What changed from this snapshot to another of the same volume (added, removed, changed)',
        description:
          'Computed from the two trees: entries compared by name per directory, directories with the same subtree skipped. A new or removed directory is one entry.',
        params: snapshotParams,
        querystring: z.object({
          to: snapshotRef.describe('the later snapshot (id or unique prefix), of the same volume'),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000).describe('most entries returned'),
        }),
        response: {
          200: snapshotDiffView.extend({ from: snapshotView, to: snapshotView }),
        },
      },
    },
    async (req) => {
      const from = queries.getSnapshot(req.params.snapshotId);
      const to = queries.getSnapshot(req.query.to);
      if (from.hostId !== to.hostId || from.volumeName !== to.volumeName) {
        throw new BadRequestError(
          CatalogErrorCode.BadRequest,
          'query.to',
          `snapshot ${to.shortId} is of another volume (${to.volumeName}) than ${from.shortId} (${from.volumeName})`,
        );
      }
      return { from, to, ...(await reader.diff(from, to, req.query.limit)) };
    },
  );

  app.get(
    '/v1/hosts/:hostId/volumes/:volumeName/find',
    {
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
          cursor: z
            .string()
            .min(1)
            .max(2000)
            .optional()
            .describe('`nextCursor` of the previous page (same glob and snapshots)'),
          includeForgotten: queryFlag,
        }),
        response: {
          200: z.object({
            items: z.array(foundFileView),
            truncated: z
              .boolean()
              .describe('more matches exist: on the next page (`nextCursor`), or beyond the search cap'),
            nextCursor: z
              .string()
              .nullable()
              .describe('pass as `cursor` for the next page; null on the last'),
            snapshotsSearched: z.number().int(),
          }),
        },
      },
    },
    async (req) => {
      const glob = globOf(req.query.glob);
      const hostId = queries.resolveHost(req.params.hostId);
      queries.getVolume(hostId, req.params.volumeName);
      const snapshots = queries.listSnapshots(
        { hostId, volumeName: req.params.volumeName, includeForgotten: req.query.includeForgotten },
        { limit: req.query.snapshots },
      ).items;
      // A page resumes inside a snapshot: the cursor names it and how many of its matches were sent.
      let first = 0;
      let skip = 0;
      if (req.query.cursor !== undefined) {
        const key = decodeCursor('find', req.query.cursor, 2);
        first = key ? snapshots.findIndex((s) => s.snapshotId === key[0]) : -1;
        if (!key || first < 0 || typeof key[1] !== 'number') {
          throw new BadRequestError(
            CatalogErrorCode.InvalidCursor,
            'query.cursor',
            'not a cursor of this search (or its snapshot was forgotten)',
          );
        }
        skip = key[1];
      }
      const items: z.infer<typeof foundFileView>[] = [];
      let nextCursor: string | null = null;
      let capped = false;
      for (let i = first; i < snapshots.length; i++) {
        const snapshot = snapshots[i]!;
        const offset = i === first ? skip : 0;
        const left = req.query.limit - items.length;
        // One more than fits tells whether this snapshot has matches beyond the page.
        const found = await reader.find(snapshot, glob, offset + left + 1);
        const fresh = found.entries.slice(offset);
        items.push(
          ...fresh.slice(0, left).map((e) => ({
            ...e,
            snapshotId: snapshot.snapshotId,
            snapshotTime: snapshot.time,
          })),
        );
        // Truncated without more than fit: the walk hit its cap of visited entries in this snapshot.
        if (found.truncated && fresh.length <= left) capped = true;
        if (fresh.length > left) {
          nextCursor = encodeCursor('find', [snapshot.snapshotId, offset + Math.min(left, fresh.length)]);
          break;
        }
        if (items.length >= req.query.limit && i + 1 < snapshots.length) {
          nextCursor = encodeCursor('find', [snapshots[i + 1]!.snapshotId, 0]);
          break;
        }
      }
      return {
        items,
        truncated: nextCursor !== null || capped,
        nextCursor,
        snapshotsSearched: snapshots.length,
      };
    },
  );
}
