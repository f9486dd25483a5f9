import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  BadRequestError,
  CatalogError,
  CatalogErrorCode,
  ConflictError,
  NotFoundError,
  UnavailableError,
  type FieldIssue,
} from '../errors.ts';

/** RFC 9457 problem details, with volback's stable `code` and, for bad input, the fields at fault. */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  instance: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
/** A problem document. */
export type Problem = z.infer<typeof problemSchema>;

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function statusOf(error: CatalogError): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof BadRequestError) return 400;
  if (error instanceof ConflictError) return 409;
  if (error instanceof UnavailableError) return 503;
  switch (error.code) {
    case CatalogErrorCode.Unauthorized:
      return 401;
    case CatalogErrorCode.Forbidden:
      return 403;
    case CatalogErrorCode.BadRequest:
    case CatalogErrorCode.InvalidCursor:
      return 400;
    default:
      return 500;
  }
}

/** Sends a problem document. */
export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  errors?: readonly FieldIssue[],
): FastifyReply {
  const body: Problem = {
    type: `urn:volback:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    instance: request.url.split('?')[0] ?? request.url,
    ...(errors?.length ? { errors: [...errors] } : {}),
  };
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="volback"');
  return reply.code(status).type('application/problem+json').serializer(JSON.stringify).send(body);
}

function validationIssues(error: FastifyError): FieldIssue[] {
  const where = error.validationContext ?? 'request';
  return (error.validation ?? []).map((issue) => {
    const path = issue.instancePath.split('/').filter(Boolean).join('.');
    return { field: path ? `${where}.${path}` : where, message: issue.message ?? 'invalid' };
  });
}

/**
 * fastify's `frameworkErrors`: a URL it cannot decode (`%zz`) is refused before routing, as a
 * problem like every other 400 rather than fastify's own document quoting the URL.
 */
export function frameworkErrorHandler(
  _error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  return sendProblem(reply, request, 400, CatalogErrorCode.BadRequest, 'the URL cannot be decoded');
}

/**
 * Every error leaves as `application/problem+json` with a stable code: bad input names its
 * fields; a 5xx says only that something failed (the details go to the log with the request id).
 */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      404,
      CatalogErrorCode.RouteNotFound,
      `no route ${request.method} ${request.url.split('?')[0]}`,
    ),
  );
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error) || error.validation) {
      const issues = validationIssues(error);
      return sendProblem(
        reply,
        request,
        400,
        CatalogErrorCode.BadRequest,
        issues.map((i) => `${i.field}: ${i.message}`).join('; '),
        issues,
      );
    }
    if (error instanceof CatalogError) {
      const status = statusOf(error);
      if (status >= 500) {
        request.log.error(
          { err: error, code: error.code, cause: (error.cause as Error | undefined)?.message },
          'request failed',
        );
      }
      return sendProblem(reply, request, status, error.code, error.message, error.issues);
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(
          reply,
          request,
          415,
          CatalogErrorCode.UnsupportedMediaType,
          'send the body as application/json',
        );
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendProblem(reply, request, 400, CatalogErrorCode.BadRequest, 'the body is not valid JSON', [
          { field: 'body', message: 'not valid JSON' },
        ]);
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendProblem(reply, request, 413, CatalogErrorCode.PayloadTooLarge, 'the body is too large');
      default:
        if (error.statusCode === 400 && error.code?.startsWith('FST_ERR_CTP')) {
          return sendProblem(reply, request, 400, CatalogErrorCode.BadRequest, 'the body cannot be read', [
            { field: 'body', message: 'cannot be read' },
          ]);
        }
        // Any other client error of fastify's: its status, never its message.
        if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
          return sendProblem(
            reply,
            request,
            error.statusCode,
            CatalogErrorCode.BadRequest,
            TITLES[error.statusCode] ?? 'the request cannot be served',
          );
        }
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(
      reply,
      request,
      500,
      CatalogErrorCode.Internal,
      `internal error (request ${request.id})`,
    );
  });
}
