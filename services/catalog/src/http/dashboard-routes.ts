import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { accessOf } from './guard.ts';

/** Where `scripts/build-web.sh` writes the dashboard's static files. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** The files of a built dashboard, by URL path, read once at start (a few kilobytes). */
function readBuiltFiles(root: string): Map<string, { body: Buffer; type: string; immutable: boolean }> {
  const files = new Map<string, { body: Buffer; type: string; immutable: boolean }>();
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
      else
        files.set(`${prefix}${name}`, {
          body: readFileSync(path),
          type: CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
          // Vite names assets by their content hash: they never change under the same name.
          immutable: prefix.startsWith('/assets/'),
        });
    }
  };
  walk(root, '/');
  return files;
}

/**
 * The dashboard (`services/catalog/web`, built into `web/dist`) at `/`, and `GET /v1/access`, which
 * tells a client what its token (or this machine's exemption) allows. Without a built dashboard
 * `/` says how to build it.
 */
export function registerDashboardRoutes(fastify: FastifyInstance, webRoot: string = DEFAULT_WEB_ROOT): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/v1/access',
    {
      schema: {
        tags: ['access'],
        summary: 'What this request may do: its scope and where it comes from',
        description:
          'The dashboard asks this to check a token at login and to hide write actions from a `read` scope. `via: loopback` is the exemption of 127.0.0.1 and ::1 (a valid write token sent from there still counts); `tokenValid` is false when the token sent was not valid but the exemption let the request in, null when none was sent. Without a token (and no exemption) the answer is `scope: null` rather than 401, and does not count towards the 429 limit; a wrong token is 401 as everywhere.',
        response: {
          200: z.object({
            scope: z.enum(['read', 'write']).nullable().describe('null: this client has no access'),
            via: z.enum(['token', 'loopback']).nullable(),
            tokenValid: z.boolean().nullable(),
          }),
        },
      },
    },
    async (req) => accessOf(req) ?? { scope: null, via: null, tokenValid: null },
  );

  let files: ReturnType<typeof readBuiltFiles>;
  try {
    files = readBuiltFiles(webRoot);
  } catch {
    files = new Map();
  }
  const index = files.get('/index.html');
  fastify.get('/', { schema: { hide: true } }, async (_req, reply) => {
    if (!index)
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('the dashboard is not built: run `sh scripts/build-web.sh` (npm start and npm test do)\n');
    return reply.header('cache-control', 'no-cache').type(index.type).send(index.body);
  });
  for (const [path, file] of files) {
    if (path === '/index.html') continue;
    fastify.get(path, { schema: { hide: true } }, async (_req, reply) =>
      reply
        .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .type(file.type)
        .send(file.body),
    );
  }
}
