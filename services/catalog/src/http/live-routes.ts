import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { volumeName } from '@volback/contracts';
import { z } from 'zod';
import type { EventHistory } from '../adapters/event-history.ts';
import type { LiveEvents, LiveItem } from '../adapters/live-events.ts';
import { BadRequestError, CatalogErrorCode } from '../errors.ts';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import { hostRef, queryFlag } from './params.ts';

/** Most missed events one resumption (`Last-Event-ID`) sends. */
const MAX_RESUMED = 10_000;

/** A `Last-Event-ID` this stream gave out: a stream sequence. */
function lastEventId(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && /^[0-9]{1,15}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

/** Seconds between SSE comments that keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/** The live stream: Server-Sent Events of what happens from now on, filtered per client. */
export function registerLiveRoutes(
  fastify: FastifyInstance,
  deps: { live: LiveEvents; history: EventHistory; queries: CatalogQueries },
): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { live, history, queries } = deps;
  // Open streams end when the API closes: a stream never ends by itself, and the server's close
  // would otherwise wait for every client to hang up (the catalog's shutdown ran into its 15 s limit).
  const open = new Set<() => void>();
  fastify.addHook('preClose', (done) => {
    for (const end of open) end();
    done();
  });
  const types = (raw: string | undefined) =>
    raw
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean);

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Past events from the event log: the newest `limit` that match, oldest first',
        description:
          'Reads `VOLBACK_EVENTS` from `since` on. When more events match than `limit`, `nextCursor` is set: pass it as `before` (with the same `since`) for the older ones.',
        querystring: z.object({
          since: z.iso.datetime({ offset: true }).describe('events at or after this time'),
          before: z
            .string()
            .regex(/^[1-9][0-9]{0,15}$/)
            .optional()
            .describe('`nextCursor` of the previous page'),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          host: hostRef.optional(),
          volume: volumeName.optional(),
          type: z.string().max(2000).optional().describe('comma-separated type prefixes'),
          work: z.string().min(1).max(200).optional().describe('a backup, restore or operation id'),
        }),
        response: {
          200: z.object({
            items: z.array(z.object({ seq: z.number().int(), event: z.record(z.string(), z.unknown()) })),
            matched: z.number().int().describe('events that matched since `since` (before `before`)'),
            truncated: z.boolean().describe('older matches exist (`nextCursor`) or the scan hit its cap'),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (req) => {
      const since = new Date(req.query.since);
      if (Number.isNaN(since.getTime()))
        throw new BadRequestError(CatalogErrorCode.BadRequest, 'query.since', 'not a time');
      const page = await history.read({
        since,
        before: req.query.before === undefined ? undefined : Number(req.query.before),
        limit: req.query.limit,
        filter: {
          hostId: queries.resolveHostFilter(req.query.host),
          volumeName: req.query.volume,
          types: types(req.query.type),
          workId: req.query.work,
        },
      });
      return {
        items: page.items.map((i) => ({ seq: i.seq, event: i.event as unknown as Record<string, unknown> })),
        matched: page.matched,
        truncated: page.nextCursor !== null || page.capped,
        nextCursor: page.nextCursor,
      };
    },
  );

  app.get(
    '/v1/events/stream',
    {
      schema: {
        tags: ['events'],
        summary: 'Live events as Server-Sent Events (text/event-stream)',
        description:
          'Each event is `event: <CloudEvents type>` with the CloudEvents envelope as `data`, its `id` its sequence in `VOLBACK_EVENTS`. With `work`, live progress of that backup or restore comes as `event: progress`; with `progress=true`, the progress of all work (of `host` when given), whatever the event filters. What happens after connecting is sent; a client that reconnects with the header `Last-Event-ID` (an EventSource does so by itself) first gets the matching events it missed (at most 10,000; more are announced by `event: truncated` with `data` `{"after": <seq>}`: read them from `GET /v1/events`), then the live ones, none twice. Older history: `GET /v1/events`, or replay `VOLBACK_EVENTS` with a NATS consumer.',
        querystring: z.object({
          host: hostRef.optional(),
          volume: volumeName.optional(),
          type: z
            .string()
            .max(2000)
            .optional()
            .describe('comma-separated type prefixes, e.g. `io.volback.backup.,io.volback.host.seen`'),
          work: z.string().min(1).max(200).optional().describe('a backup, restore or operation id'),
          progress: queryFlag.describe('live progress of all running work, as `event: progress`'),
        }),
      },
    },
    (req, reply) => {
      // Resolved before the stream opens, so an unknown host is a 404, not an empty stream.
      const hostId = queries.resolveHostFilter(req.query.host);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': volback live events\n\n');
      const write = (item: LiveItem) => {
        if (item.kind === 'event') {
          res.write(`id: ${item.seq}\nevent: ${item.event.type}\ndata: ${JSON.stringify(item.event)}\n\n`);
        } else if (item.kind === 'heartbeat') {
          // No id: a heartbeat is not in the log, so it must not move the client's Last-Event-ID.
          res.write(`event: ${item.event.type}\ndata: ${JSON.stringify(item.event)}\n\n`);
        } else {
          res.write(`event: progress\ndata: ${JSON.stringify(item.progress)}\n\n`);
        }
      };
      const filter = {
        hostId,
        volumeName: req.query.volume,
        types: types(req.query.type),
        workId: req.query.work,
        allProgress: req.query.progress,
      };
      // A client back after a break says the last event it saw (`Last-Event-ID`, which an
      // EventSource sends by itself): it gets what it missed from the log first, then the live
      // events, none twice (the live ones are held meanwhile and those already sent dropped).
      const resumeFrom = lastEventId(req.headers['last-event-id']);
      let held: LiveItem[] | undefined = resumeFrom === undefined ? undefined : [];
      let lastSent = 0;
      const send = (item: LiveItem) => {
        if (held) held.push(item);
        else if (item.kind !== 'event' || item.seq > lastSent) {
          if (item.kind === 'event') lastSent = item.seq;
          write(item);
        }
      };
      const unsubscribe = live.subscribe(filter, send);
      if (resumeFrom !== undefined) {
        void (async () => {
          try {
            const upTo = await history.lastSequence();
            const missed = await history.readAfter({ after: resumeFrom, upTo, max: MAX_RESUMED, filter });
            for (const item of missed.items) {
              lastSent = item.seq;
              write({ kind: 'event', event: item.event, seq: item.seq });
            }
            // More were missed than one resumption sends: the client reads the rest from /v1/events.
            if (missed.more) res.write(`event: truncated\ndata: ${JSON.stringify({ after: lastSent })}\n\n`);
          } catch {
            res.write(`event: truncated\ndata: ${JSON.stringify({ after: resumeFrom })}\n\n`);
          }
          const waiting = held ?? [];
          held = undefined;
          for (const item of waiting) send(item);
        })();
      }
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      const close = () => {
        clearInterval(keepalive);
        unsubscribe();
        open.delete(end);
      };
      const end = () => {
        close();
        // `Connection: close` is no longer settable; ending the response and its socket lets the
        // client see the stream end at once (an EventSource reconnects to a restarted catalog).
        res.end();
        res.socket?.destroySoon();
      };
      open.add(end);
      req.raw.on('close', close);
      res.on('close', close);
    },
  );
}
