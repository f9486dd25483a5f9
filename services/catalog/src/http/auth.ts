import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CatalogErrorCode } from '../errors.ts';
import { sendProblem } from './problem.ts';

/** What a route needs: nothing (docs), a read token, or the write token (it issues a command). */
export type Access = 'public' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** The configured bearer tokens; none configured means the API is open (bound to loopback only). */
export interface Tokens {
  readonly read?: string | undefined;
  readonly write?: string | undefined;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

function same(a: Buffer, b: Buffer | undefined): boolean {
  return b !== undefined && timingSafeEqual(a, b);
}

/**
 * Bearer-token access: `write` routes need the write token; `read` routes a read or the write
 * token when either is configured. Tokens are compared by digest in constant time and never logged.
 */
export function installAuth(app: FastifyInstance, tokens: Tokens): void {
  const read = tokens.read ? digest(tokens.read) : undefined;
  const write = tokens.write ? digest(tokens.write) : undefined;
  if (!read && !write) return;
  app.addHook('onRequest', async (request, reply) => {
    // The docs UI's own routes (static files) are as public as /openapi.json.
    const access =
      request.routeOptions.config?.access ?? (request.url.startsWith('/docs') ? 'public' : 'read');
    if (access === 'public') return;
    if (access === 'read' && !read) return;
    const header = request.headers.authorization;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) {
      return sendProblem(
        reply,
        request,
        401,
        CatalogErrorCode.Unauthorized,
        'send Authorization: Bearer <token>',
      );
    }
    const given = digest(match[1]!);
    const isWrite = same(given, write);
    const isRead = isWrite || same(given, read);
    if (!isRead)
      return sendProblem(reply, request, 401, CatalogErrorCode.Unauthorized, 'the token is not valid');
    if (access === 'write' && !isWrite) {
      return sendProblem(
        reply,
        request,
        403,
        CatalogErrorCode.Forbidden,
        'this route issues a command: it needs the write token',
      );
    }
  });
}
