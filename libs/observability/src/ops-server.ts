import type { AddressInfo } from 'node:net';
import { fastify, LogController, type FastifyError, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createHealthProbe, type HealthCheck, type HealthProbe, type HealthReport } from './health.ts';

/** Which endpoint a check belongs to: `/healthz` (restart me if it fails) or `/readyz` (send me no work). */
export type HealthCheckKind = 'liveness' | 'readiness';

/** Default bound on each health check, below the 1 s that orchestrators' probes usually allow. */
export const DEFAULT_CHECK_TIMEOUT_MS = 800;

/** Options of {@link startOpsServer}. */
export interface OpsServerOptions {
  /** Interface to listen on; `127.0.0.1` when omitted. Use `0.0.0.0` inside a container. */
  readonly host?: string;
  /** TCP port; 0 picks a free one (read it back from {@link OpsServer.port}). */
  readonly port: number;
  /** Root logger; the server logs as its child `{ component: 'ops-server' }`. */
  readonly logger: Logger;
  /** Registry served on `/metrics`: `registry` of the process's `createMetrics(…)`. */
  readonly registry: Registry;
  /** Health checks by endpoint; more can be added later with {@link OpsServer.addCheck}. */
  readonly checks?: {
    /** Run on `/healthz`; only conditions a restart would cure (a wedged event loop, a dead worker). */
    readonly liveness?: readonly HealthCheck[];
    /** Run on `/readyz`; the dependencies the service needs to do its work (NATS, streams, storage). */
    readonly readiness?: readonly HealthCheck[];
  };
  /** Longest wait for one check before it counts as failed; {@link DEFAULT_CHECK_TIMEOUT_MS} by default. */
  readonly checkTimeoutMs?: number;
}

/** A running ops server. */
export interface OpsServer {
  /** Address the server is bound to. */
  readonly host: string;
  /** Port the server is bound to, the kernel's choice when 0 was asked for. */
  readonly port: number;
  /** `http://<host>:<port>`, without a trailing slash. */
  readonly url: string;
  /** Adds a check after start, for a dependency that connects later than the server listens. */
  addCheck(kind: HealthCheckKind, check: HealthCheck): void;
  /**
   * Stops listening and waits for the requests in flight; requests arriving on kept-alive
   * connections meanwhile get 503. Safe to call twice.
   */
  close(): Promise<void>;
}

/** Body of `/healthz` and `/readyz`. */
export interface HealthResponse {
  readonly status: 'ok' | 'fail';
  readonly checks: HealthReport['checks'];
  /** Names of the failing checks; absent when all pass. */
  readonly failed?: HealthReport['failed'];
}

function toResponse(report: HealthReport): HealthResponse {
  return report.ok
    ? { status: 'ok', checks: report.checks }
    : { status: 'fail', checks: report.checks, failed: report.failed };
}

function sendReport(reply: FastifyReply, report: HealthReport): FastifyReply {
  return reply
    .code(report.ok ? 200 : 503)
    .header('cache-control', 'no-store')
    .send(toResponse(report));
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Starts the process's operations endpoint, separate from any business API:
 * - `GET /healthz`: liveness, 200 while the process serves and its liveness checks pass;
 * - `GET /readyz`: runs every readiness check with a timeout; 200 with each check's status, or 503
 *   naming the failed checks with a one-line reason each (never a stack trace);
 * - `GET /metrics`: the registry in Prometheus text format.
 * Probes are not request-logged; readiness changes are logged once per transition.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const logger = options.logger.child({ component: 'ops-server' });
  const timeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const probes: Record<HealthCheckKind, HealthProbe> = {
    liveness: createHealthProbe(options.checks?.liveness ?? [], timeoutMs),
    readiness: createHealthProbe(options.checks?.readiness ?? [], timeoutMs),
  };
  const lastOk: Partial<Record<HealthCheckKind, boolean>> = {};

  const probe = async (kind: HealthCheckKind): Promise<HealthReport> => {
    const report = await probes[kind].run();
    if (lastOk[kind] !== report.ok) {
      lastOk[kind] = report.ok;
      if (report.ok) logger.info({ kind }, `${kind} checks pass`);
      else
        logger.warn(
          { kind, failed: report.checks.filter((c) => !c.ok).map(({ name, detail }) => ({ name, detail })) },
          `${kind} checks failing: ${report.failed.join(', ')}`,
        );
    }
    return report;
  };

  // Probes and scrapes arrive every few seconds; logging each would drown the service's own lines.
  const app = fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.setErrorHandler<FastifyError>((error, request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error, url: request.url }, 'ops endpoint failed');
      return reply.code(status).send({ error: 'internal error' });
    }
    return reply.code(status).send({ error: error.message });
  });

  app.get('/healthz', async (_request, reply) => sendReport(reply, await probe('liveness')));
  app.get('/readyz', async (_request, reply) => sendReport(reply, await probe('readiness')));
  app.get('/metrics', async (_request, reply) => {
    const text = await options.registry.metrics();
    return reply.header('cache-control', 'no-store').type(options.registry.contentType).send(text);
  });

  try {
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    url: urlOf(address),
    addCheck: (kind, check) => probes[kind].add(check),
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
