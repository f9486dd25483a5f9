import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { NOTIFICATION_SERVICES, notificationChannelName, notificationFilter } from '@volback/contracts';
import { z } from 'zod';
import type { NotificationAdmin } from '../adapters/notification-admin.ts';
import { requestedBy } from './params.ts';

const redactedChannel = z.object({
  name: z.string(),
  service: z.enum(NOTIFICATION_SERVICES),
  url: z.string().describe('the URL without credentials, tokens or query values'),
  signed: z.boolean().describe('whether generic webhooks carry an HMAC signature'),
  filter: notificationFilter,
  origin: z.enum(['api', 'configuration']),
  definedAt: z.string(),
  definedBy: z.string(),
});

const testResult = z.object({
  channel: z.string(),
  ok: z.boolean(),
  service: z.string().optional(),
  attempts: z.number(),
  status: z.number().optional(),
  code: z.string().optional(),
  reason: z.string().optional(),
});

/** Notification channels (list, define, remove) and `POST /v1/notifications/test`. */
export function registerNotificationRoutes(fastify: FastifyInstance, admin: NotificationAdmin): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const params = z.object({ name: notificationChannelName });

  app.get(
    '/v1/notifications/channels',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Notification channels, without their secrets',
        description:
          "Channels of the API and of the scheduler's configuration (`VOLBACK_NOTIFY_URLS`, `VOLBACK_NOTIFY_FILE`). URLs are shown without user, password, tokens or query values; secrets never.",
        response: { 200: z.object({ items: z.array(redactedChannel) }) },
      },
    },
    async () => ({ items: await admin.list() }),
  );

  app.put(
    '/v1/notifications/channels/:name',
    {
      bodyLimit: 16 * 1024,
      schema: {
        tags: ['notifications'],
        summary: 'Define or replace a notification channel',
        description:
          'A shoutrrr-style URL (`generic+https://`, `ntfy://`, `slack://`, `mattermost://`, `gotify://`, `smtp://`), an optional signing secret for generic webhooks, and a filter (kinds, host ids, volume patterns). Stored in the channels bucket only the scheduler and the catalog can read; the answer is redacted. A configured channel of that name is 409.',
        params,
        body: z.object({
          url: z.string().min(1).max(4096),
          secret: z.string().min(16).max(1024).optional(),
          filter: notificationFilter.default({}),
          requestedBy,
        }),
        response: { 200: redactedChannel },
      },
    },
    async (req) =>
      admin.define(
        req.params.name,
        { url: req.body.url, secret: req.body.secret, filter: req.body.filter },
        req.body.requestedBy ?? 'api',
      ),
  );

  app.delete(
    '/v1/notifications/channels/:name',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Remove a notification channel of the API',
        params,
        response: { 200: z.object({ name: z.string(), removed: z.literal(true) }) },
      },
    },
    async (req) => {
      await admin.remove(req.params.name);
      return { name: req.params.name, removed: true as const };
    },
  );

  app.post(
    '/v1/notifications/test',
    {
      bodyLimit: 8 * 1024,
      schema: {
        tags: ['notifications'],
        summary: 'Send a test notification and report how it went',
        description:
          'Sends `SendTestNotification` to the scheduler and waits (up to `waitSeconds`) for one `NotificationDelivered` or `NotificationFailed` per channel. `complete: false`: some channel had not answered yet (the scheduler may still be retrying; follow `/v1/events?type=io.volback.notification`).',
        body: z
          .object({
            channel: notificationChannelName.optional().describe('one channel; every channel when absent'),
            waitSeconds: z.number().int().min(1).max(300).default(60),
            requestedBy,
          })
          .nullish(),
        response: {
          200: z.object({ testId: z.string(), complete: z.boolean(), results: z.array(testResult) }),
        },
      },
    },
    async (req) =>
      admin.test(req.body?.channel, req.body?.requestedBy ?? 'api', (req.body?.waitSeconds ?? 60) * 1000),
  );
}
