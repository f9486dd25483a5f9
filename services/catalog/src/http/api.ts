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
import { installAuth, type Tokens } from './auth.ts';
import { registerCommandRoutes } from './command-routes.ts';
import { registerLiveRoutes } from './live-routes.ts';
import { installProblemHandlers } from './problem.ts';
import { registerReadRoutes } from './read-routes.ts';
import { registerSnapshotRoutes } from './snapshot-routes.ts';

/** What the HTTP API is built on. */
export interface ApiOptions {
  queries: CatalogQueries;
  commands: CommandSender;
  reader: SnapshotReader;
  live: LiveEvents;
  history: EventHistory;
  tokens: Tokens;
  logger?: Logger;
  now?: () => Date;
  version: string;
  /** Empties this replica's read model and replays the log (`POST /v1/admin/rebuild`). */
  rebuild?: () => Promise<void>;
}

/**
 * The catalog's HTTP API (fastify, zod schemas, OpenAPI at `/openapi.json`, docs at `/docs`).
 * Routes only parse, ask the queries or the command sender, and answer.
 */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  // pino's Logger is a FastifyBaseLogger; the cast keeps the instance type the routes expect.
  const app = fastify({
    ...(options.logger
      ? { loggerInstance: options.logger.child({ component: 'http' }) as FastifyBaseLogger }
      : {}),
    bodyLimit: 1024 * 1024,
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
  installAuth(app, options.tokens);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'volback catalog',
        description:
          'Hosts, volumes, containers, policies, backups, restores and snapshots as a projection of the volback event log; commands for backups, restores and policies. Errors are application/problem+json with a stable `code`.',
        version: options.version,
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );

  const now = options.now ?? (() => new Date());
  registerReadRoutes(app, options.queries);
  registerSnapshotRoutes(app, { queries: options.queries, reader: options.reader });
  registerCommandRoutes(app, {
    queries: options.queries,
    commands: options.commands,
    now,
    rebuild: options.rebuild,
  });
  registerLiveRoutes(app, { live: options.live, history: options.history, queries: options.queries });
  return app;
}
