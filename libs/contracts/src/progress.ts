import { z } from 'zod';
import { count, workId } from './fields.ts';

/**
 * Live progress of a backup or restore on `volback.progress.<workId>` (core NATS, not stored; a
 * few per second at most). The durable record is the events.
 */
export const workProgress = z.object({
  workId,
  kind: z.enum(['backup', 'restore']),
  /** What the work is doing now. */
  phase: z.enum(['quiescing', 'reading', 'committing', 'writing']),
  files: count,
  dirs: count,
  /** Bytes read from the volume (backup) or written into it (restore). */
  bytes: count,
  /** Bytes of new data sent to the repository (backup). */
  bytesAdded: count,
  at: z.iso.datetime({ offset: true }),
});
/** A parsed progress message. */
export type WorkProgress = z.infer<typeof workProgress>;
