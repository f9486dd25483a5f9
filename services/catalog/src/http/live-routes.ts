import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { hostId, volumeName } from '@volback/contracts';
import { z } from 'zod';
import type { LiveEvents, LiveItem } from '../adapters/live-events.ts';

/** Seconds between SSE comments that keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/** The live stream: Server-Sent Events of what happens from now on, filtered per client. */
export function registerLiveRoutes(fastify: FastifyInstance, live: LiveEvents): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Open streams end when the API closes: a stream never ends by itself, and the server's close
  // would otherwise wait for every client to hang up (the catalog's shutdown ran into its 15 s limit).
  const open = new Set<() => void>();
  fastify.addHook('preClose', (done) => {
    for (const end of open) end();
    done();
  });
  app.get(
    '/v1/events/stream',
    {
      config: { access: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Live events as Server-Sent Events (text/event-stream)',
        description:
          'Each event is `event: <CloudEvents type>` with the CloudEvents envelope as `data`, its `id` the envelope id. With `work`, live progress of that backup or restore comes as `event: progress`. Only what happens after connecting is sent: read history from the lists, or replay `VOLBACK_EVENTS` with a NATS consumer.',
        querystring: z.object({
          host: hostId.optional(),
          volume: volumeName.optional(),
          type: z
            .string()
            .max(2000)
            .optional()
            .describe('comma-separated type prefixes, e.g. `io.volback.backup.,io.volback.host.seen`'),
          work: z.string().min(1).max(200).optional().describe('a backup, restore or operation id'),
        }),
      },
    },
    (req, reply) => {
      const types = req.query.type
        ?.split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': volback live events\n\n');
      const send = (item: LiveItem) => {
        if (item.kind === 'event') {
          res.write(
            `id: ${item.event.id}\nevent: ${item.event.type}\ndata: ${JSON.stringify(item.event)}\n\n`,
          );
        } else {
          res.write(`event: progress\ndata: ${JSON.stringify(item.progress)}\n\n`);
        }
      };
      const unsubscribe = live.subscribe(
        { hostId: req.query.host, volumeName: req.query.volume, types, workId: req.query.work },
        send,
      );
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
