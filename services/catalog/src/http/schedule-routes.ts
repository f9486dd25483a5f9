import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { issuesText, nextScheduledRuns, scheduleIssues } from '@volback/contracts';
import { z } from 'zod';
import { CatalogError, CatalogErrorCode } from '../errors.ts';

/** A schedule's next runs, by the rules the scheduler applies (the dashboard's cron preview). */
export function registerScheduleRoutes(fastify: FastifyInstance, now: () => Date): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/v1/schedules/preview',
    {
      schema: {
        tags: ['policies'],
        summary: 'The next runs of a cron expression in a time zone, as the scheduler reads it',
        description:
          'The same checks as `PUT /v1/policies/{policyId}` makes of `policy.schedule` (400 naming `query.cron` or `query.timezone`). The scheduler adds its jitter to each run.',
        querystring: z.object({
          cron: z.string().min(1).max(200).describe('5 fields, or 6 with seconds first'),
          timezone: z.string().min(1).max(64).default('UTC'),
          count: z.coerce.number().int().min(1).max(50).default(5),
        }),
        response: {
          200: z.object({ cron: z.string(), timezone: z.string(), runs: z.array(z.string()) }),
        },
      },
    },
    async (req) => {
      const { cron, timezone, count } = req.query;
      const issues = scheduleIssues({ cron, timezone }, 'query');
      if (issues.length > 0)
        throw new CatalogError(CatalogErrorCode.BadRequest, issuesText(issues), { issues });
      return {
        cron,
        timezone,
        runs: nextScheduledRuns({ cron, timezone }, now(), count).map((d) => d.toISOString()),
      };
    },
  );
}
