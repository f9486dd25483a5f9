import fastifyHelmet from '@fastify/helmet';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from '@volback/observability';
import type { CatalogQueries } from '../adapters/catalog-queries.ts';
import type { CommandSender } from '../adapters/command-sender.ts';
import type { EventHistory } from '../adapters/event-history.ts';
import type { LiveEvents } from '../adapters/live-events.ts';
import type { SnapshotReader } from '../adapters/snapshot-reader.ts';
import type { NotificationAdmin } from '../adapters/notification-admin.ts';
import { registerCommandRoutes } from './command-routes.ts';
import { registerDashboardRoutes } from './dashboard-routes.ts';
import { registerDrillRoutes } from './drill-routes.ts';
import { installGuard, type GuardOptions } from './guard.ts';
import { registerLiveRoutes } from './live-routes.ts';
import { registerNotificationRoutes } from './notification-routes.ts';
import { frameworkErrorHandler, installProblemHandlers } from './problem.ts';
import { registerReadRoutes } from './read-routes.ts';
import { registerScheduleRoutes } from './schedule-routes.ts';
import { registerSetRoutes } from './set-routes.ts';
import { registerSnapshotRoutes } from './snapshot-routes.ts';

/** What the HTTP API is built on. */
export interface ApiOptions {
  queries: CatalogQueries;
  commands: CommandSender;
  reader: SnapshotReader;
  live: LiveEvents;
  history: EventHistory;
  /** Notification channels and tests. */
  notifications: NotificationAdmin;
  /** Tokens, the loopback exemption, allowed `Host` names, the auth-failure limit. */
  access: GuardOptions;
  /** Serve HTTPS with this certificate and key (PEM) instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  logger?: Logger;
  now?: () => Date;
  version: string;
  /** Empties this replica's read model and replays the log (`POST /v1/admin/rebuild`). */
  rebuild?: () => Promise<void>;
  /** The built dashboard's directory (default `services/catalog/web/dist`). */
  webRoot?: string;
}

/** The largest body any route takes (a policy, a restore); most commands take 8 KiB. */
const BODY_LIMIT = 64 * 1024;

/**
 * The catalog's HTTP API (fastify, zod schemas, OpenAPI at `/openapi.json`, docs at `/docs`).
 * Routes only parse, ask the queries or the command sender, and answer.
 */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  // pino's Logger is a FastifyBaseLogger; the cast keeps the instance type the routes expect
  // (an HTTPS server's instance has another type parameter, the routes do not mind).
  const app = fastify({
    ...(options.logger
      ? { loggerInstance: options.logger.child({ component: 'http' }) as FastifyBaseLogger }
      : {}),
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    bodyLimit: BODY_LIMIT,
    frameworkErrors: frameworkErrorHandler,
    routerOptions: { maxParamLength: 512 },
    // fastify's own access log is two multi-field entries per request at info; one debug line instead.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  app.addHook('onResponse', (request, reply, done) => {
    request.log.debug(
      `${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`,
    );
    done();
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  await app.register(fastifyHelmet, {
    // Fit for the docs page (its scripts and styles are files of its own; Swagger UI sets style
    // attributes and data: images); JSON answers are not rendered anyway (nosniff).
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Over plain HTTP a browser ignores HSTS; behind a TLS proxy the proxy sets it.
    hsts: options.tls ? { maxAge: 31_536_000, includeSubDomains: false } : false,
  });
  installGuard(app, options.access);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'volback catalog',
        description:
          'Hosts, volumes, containers, policies, backups, restores and snapshots as a projection of the volback event log; commands for backups, restores and policies. Errors are application/problem+json with a stable `code`. Every route needs a bearer token (`read` scope for GET and HEAD, `write` for the rest) except, from 127.0.0.1 and ::1, reads (and writes while no write token is configured): 401 without a valid one, 403 with a read token on a write, 429 with `Retry-After` after too many wrong tokens from one address. A `Host` that is not one of the API names is 421; a write whose `Origin` is another site is 403.',
        version: options.version,
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'A token of `read` scope (GET, HEAD) or `write` scope (every method). Needed from every client but 127.0.0.1 and ::1, which read without one and write without one only while no write token is configured.',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // No badge from the public validator: the CSP allows no image from elsewhere.
    uiConfig: { deepLinking: true, validatorUrl: null },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const now = options.now ?? (() => new Date());
  registerReadRoutes(app, options.queries);
  registerSnapshotRoutes(app, { queries: options.queries, reader: options.reader });
  registerScheduleRoutes(app, now);
  registerCommandRoutes(app, {
    queries: options.queries,
    commands: options.commands,
    now,
    rebuild: options.rebuild,
  });
  registerSetRoutes(app, { queries: options.queries, commands: options.commands, now });
  registerDrillRoutes(app, { queries: options.queries, commands: options.commands, now });
  registerLiveRoutes(app, { live: options.live, history: options.history, queries: options.queries });
  registerNotificationRoutes(app, options.notifications);
  registerDashboardRoutes(app, options.webRoot);
  return app;
}
