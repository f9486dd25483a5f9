import { z } from 'zod';
import { defineEvent } from '../define.ts';
import { count, errorCode, reason, timestamp, workId } from '../fields.ts';
import {
  notificationChannelName,
  notificationKind,
  notificationScope,
  NOTIFICATION_SERVICES,
} from '../notification.ts';

/** What both outcomes of a delivery name; never the channel's URL or secret. */
const delivery = {
  channel: notificationChannelName,
  /** The channel's service; absent when no channel of that name exists (a test of an unknown channel). */
  service: z.enum(NOTIFICATION_SERVICES).optional(),
  kind: notificationKind,
  /** The event notified about (`test`: the test's id). */
  eventId: workId,
  /** Its `type` (absent for a test). */
  eventType: z.string().max(200).optional(),
  ...notificationScope.shape,
  /** Requests made, the first included. */
  attempts: z.number().int().positive(),
};

export const NotificationDelivered = defineEvent({
  name: 'NotificationDelivered',
  aggregate: 'notification',
  what: 'delivered',
  description:
    'A notification about an event reached a channel (its receiver answered with success). One per channel and event: the subject is stored once.',
  schema: z.object({
    ...delivery,
    /** The receiver's HTTP status (SMTP: 250). */
    status: count.optional(),
    deliveredAt: timestamp,
  }),
  aggregateId: (d) => [d.channel, d.eventId],
});

export const NotificationFailed = defineEvent({
  name: 'NotificationFailed',
  aggregate: 'notification',
  what: 'failed',
  description:
    'A notification about an event could not be delivered to a channel after every retry; the reason names no credential.',
  schema: z.object({
    ...delivery,
    code: errorCode,
    reason,
    status: count.optional(),
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.channel, d.eventId],
});
