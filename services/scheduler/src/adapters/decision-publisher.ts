import { ConcurrencyConflictError, type MessagePublisher } from '@volback/messaging';
import type { Logger } from '@volback/observability';
import type { Decision } from '../domain/index.ts';

/** What publishing some decisions did. */
export interface PublishOutcome {
  /** Highest stream sequence of an event stored (0: none): the projection must reach it before the next round. */
  readonly lastEventSequence: number;
  readonly published: number;
  readonly failed: number;
}

/**
 * Publishes each decision's messages in order: events, then commands. An event that opens its
 * subject and finds it taken (`ConcurrencyConflictError`) was already decided, by this scheduler
 * before a restart or by another one: its commands are sent anyway, with the same ids, which
 * JetStream (duplicate window) and the receivers (work already ended) drop. A decision whose
 * publish fails stops there; the next round decides it again, or, when its event was stored,
 * sends its command again (the scheduler resends every queued command after a failure).
 */
export async function publishDecisions(
  publisher: MessagePublisher,
  decisions: readonly Decision[],
  logger: Logger,
  onPublished?: (decision: Decision) => void,
): Promise<PublishOutcome> {
  let lastEventSequence = 0;
  let published = 0;
  let failed = 0;
  for (const decision of decisions) {
    try {
      for (const intent of decision.intents) {
        try {
          const ack = await publisher.publish(
            intent.message,
            intent.kind === 'event' && intent.firstOnSubject ? { expectedLastSubjectSequence: 0 } : {},
          );
          if (intent.kind === 'event') lastEventSequence = Math.max(lastEventSequence, ack.seq);
        } catch (error) {
          if (!(error instanceof ConcurrencyConflictError)) throw error;
          logger.debug(
            { subject: intent.message.subject, id: intent.message.envelope.id },
            'already decided',
          );
        }
      }
      published++;
      onPublished?.(decision);
    } catch (error) {
      failed++;
      logger.warn(
        { what: decision.what, subject: decision.intents[0]?.message.subject, err: (error as Error).message },
        'could not publish a decision; the next round decides it or sends its command again',
      );
    }
  }
  return { lastEventSequence, published, failed };
}
