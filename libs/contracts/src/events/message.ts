import { z } from 'zod';
import { defineEvent } from '../define.ts';
import { count, timestamp } from '../fields.ts';

export const MessageRejected = defineEvent({
  name: 'MessageRejected',
  aggregate: 'message',
  what: 'rejected',
  description:
    'A consumer received a message that breaks the contract; it was acknowledged without effect. The payload is not copied (it may hold secrets).',
  schema: z.object({
    /** The durable consumer (or service) that refused it. */
    consumer: z.string().min(1).max(200),
    stream: z.string().max(200).optional(),
    streamSequence: count.optional(),
    subject: z.string().min(1).max(1000),
    /** `Nats-Msg-Id` or envelope id, when present. */
    messageId: z.string().max(200).optional(),
    /** The claimed `type`, when it could be read. */
    messageType: z.string().max(200).optional(),
    code: z.string().min(1).max(100),
    reason: z.string().min(1).max(4000),
    issues: z.array(z.object({ path: z.string().max(1000), message: z.string().max(1000) })).max(100),
    payloadBytes: count,
    rejectedAt: timestamp,
  }),
  aggregateId: (d) => [d.consumer],
});
