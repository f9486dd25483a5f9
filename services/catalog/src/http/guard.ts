import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FailureLimiter, type FailureLimit } from '../domain/failure-limiter.ts';
import { CatalogErrorCode } from '../errors.ts';
import { sendProblem } from './problem.ts';
import { TokenSet, type AccessToken, type TokenScope } from './tokens.ts';

/** Who may do what over HTTP (README, "Access"). */
export interface GuardOptions {
  readonly tokens: readonly AccessToken[];
  /**
   * Whether a client on 127.0.0.1 or ::1 counts as this machine: it reads without a token, and
   * writes without one while no write token is configured. Off behind a reverse proxy on the same
   * machine, where every request comes from loopback. Default true.
   */
  readonly trustLoopback?: boolean;
  /** The address the API listens on: a name clients may use in `Host` (any IP for 0.0.0.0 / ::). */
  readonly bindHost?: string;
  /** More names (or addresses) clients may use in `Host` (`VOLBACK_CATALOG_ALLOWED_HOSTS`). */
  readonly allowedHosts?: readonly string[];
  /** Wrong or missing tokens an address may send before it gets 429 (default 10 a minute). */
  readonly authFailures?: FailureLimit;
  /** Milliseconds since the epoch (tests). */
  readonly clock?: () => number;
}

export const DEFAULT_AUTH_FAILURES: FailureLimit = { max: 10, windowMs: 60_000 };

const WILDCARDS = new Set(['0.0.0.0', '[::]']);

/** What a request may do, as the guard decided it (`GET /v1/access` tells the client). */
export interface RequestAccess {
  /** `write` allows every method, `read` GET and HEAD. */
  readonly scope: TokenScope;
  /** `token`: the bearer token's scope; `loopback`: the exemption of this machine. */
  readonly via: 'token' | 'loopback';
  /** Whether the bearer token sent was valid; null when none was sent. */
  readonly tokenValid: boolean | null;
}

const accessOfRequest = new WeakMap<FastifyRequest, RequestAccess>();

/** The access the guard granted this request; undefined for public files and `GET /v1/access` without one. */
export function accessOf(request: FastifyRequest): RequestAccess | undefined {
  return accessOfRequest.get(request);
}

/**
 * The dashboard's static files (`/`, `/assets/…`): public, as any login page is. They hold no
 * data; every answer with data comes from `/v1`, which needs a token.
 */
function isPublicFile(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const path = request.url.split('?', 1)[0]!;
  return path === '/' || path.startsWith('/assets/');
}

/**
 * `GET /v1/access` without a token answers "no access" instead of 401: the dashboard asks it at
 * every start, and a visitor without a token is not guessing one (no count towards the 429).
 */
function isAccessQuestionWithoutToken(request: FastifyRequest): boolean {
  return (
    request.method === 'GET' &&
    request.url.split('?', 1)[0] === '/v1/access' &&
    request.headers.authorization === undefined
  );
}

/** A host name or address as it is compared: lower case, IPv6 in brackets. */
export function normalizeHostName(name: string): string {
  const lower = name.trim().toLowerCase();
  return isIP(lower) === 6 ? `[${lower}]` : lower;
}

/** The name of a `Host` header without its port; undefined when it is not `name[:port]`. */
function hostNameOf(header: string | undefined): string | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]\s/@]+)(?::\d{1,5})?$/i.exec(header ?? '');
  return match ? match[1]!.toLowerCase() : undefined;
}

/**
 * Only 127.0.0.1 and ::1 are this machine. Linux routes all of 127.0.0.0/8 to `lo`, but other
 * addresses there stand for other hosts in the tests (and in containers' port forwarding setups),
 * so they get no exemption.
 */
function isThisMachine(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/** True when a state-changing request's `Origin` is absent or names the host and port it was sent to. */
function sameOrigin(origin: string | undefined, host: string): boolean {
  if (origin === undefined) return true;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    // Both sides through URL, so that a default port written out compares equal to none.
    return url.host === new URL(`${url.protocol}//${host}`).host;
  } catch {
    return false; // `Origin: null` (sandboxed frames, file:) or garbage
  }
}

/**
 * The API's gate, before any route runs: the `Host` must be one of ours (421: DNS rebinding), a
 * state-changing request must not come from another origin (403: cross-site requests), and the
 * bearer token must allow the method (GET/HEAD read, everything else write) unless the client is
 * this machine and the request is open to it. Wrong or missing tokens are counted per address:
 * past the limit the address gets 429 with `Retry-After` until its window ends.
 */
export function installGuard(app: FastifyInstance, options: GuardOptions): void {
  const tokens = new TokenSet(options.tokens);
  const trustLoopback = options.trustLoopback ?? true;
  const clock = options.clock ?? Date.now;
  const failures = new FailureLimiter(options.authFailures ?? DEFAULT_AUTH_FAILURES);
  const bind = options.bindHost === undefined ? undefined : normalizeHostName(options.bindHost);
  const anyAddress = bind !== undefined && WILDCARDS.has(bind);
  const allowed = new Set(
    ['localhost', '127.0.0.1', '[::1]', ...(bind ? [bind] : []), ...(options.allowedHosts ?? [])].map(
      normalizeHostName,
    ),
  );
  const hostAllowed = (name: string) =>
    // An IP literal cannot be rebound: a page can only name our address by being on it.
    allowed.has(name) || (anyAddress && isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0);

  /** The scope this machine has without a token; undefined for other clients. */
  const loopbackScope = (request: FastifyRequest): TokenScope | undefined => {
    if (!trustLoopback || !isThisMachine(request.ip)) return undefined;
    return tokens.hasWrite ? 'read' : 'write';
  };
  const bearer = (request: FastifyRequest) => /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');

  app.addHook('onRequest', async (request, reply) => {
    const host = hostNameOf(request.headers.host);
    if (host === undefined || !hostAllowed(host)) {
      return sendProblem(
        reply,
        request,
        421,
        CatalogErrorCode.HostNotAllowed,
        'this API does not answer to that Host name (set VOLBACK_CATALOG_ALLOWED_HOSTS)',
      );
    }
    const reads = request.method === 'GET' || request.method === 'HEAD';
    if (!reads && !sameOrigin(request.headers.origin, request.headers.host!)) {
      return sendProblem(
        reply,
        request,
        403,
        CatalogErrorCode.OriginNotAllowed,
        'requests from another origin cannot change anything',
      );
    }
    if (isPublicFile(request)) return;
    const scope: TokenScope = reads ? 'read' : 'write';
    const exempt = loopbackScope(request);
    if (exempt === undefined && isAccessQuestionWithoutToken(request)) return;
    if (exempt !== undefined && (exempt === 'write' || scope === 'read')) {
      // A token sent from this machine still counts when it gives more (a write token on a read).
      const sent = bearer(request);
      const given = sent ? tokens.scopeOf(sent[1]!) : undefined;
      const tokenValid = sent ? given !== undefined : null;
      accessOfRequest.set(
        request,
        given === 'write' && exempt === 'read'
          ? { scope: given, via: 'token', tokenValid }
          : { scope: exempt, via: 'loopback', tokenValid },
      );
      return;
    }
    const wait = failures.retryAfter(request.ip, clock());
    if (wait !== undefined) {
      reply.header('retry-after', String(wait));
      return sendProblem(
        reply,
        request,
        429,
        CatalogErrorCode.TooManyAuthFailures,
        `too many requests with a wrong or missing token: try again in ${wait} s`,
      );
    }
    const match = bearer(request);
    const given = match ? tokens.scopeOf(match[1]!) : undefined;
    if (given === undefined) {
      failures.fail(request.ip, clock());
      return sendProblem(
        reply,
        request,
        401,
        CatalogErrorCode.Unauthorized,
        match ? 'the token is not valid' : 'send Authorization: Bearer <token>',
      );
    }
    if (scope === 'write' && given !== 'write') {
      return sendProblem(
        reply,
        request,
        403,
        CatalogErrorCode.Forbidden,
        'this request changes something: it needs a token of write scope',
      );
    }
    accessOfRequest.set(request, { scope: given, via: 'token', tokenValid: true });
  });
}
