import type { NatsConnection } from '@nats-io/nats-core';
import {
  commandSubjectFilter,
  DefinePolicy,
  RemovePolicy,
  RequestBackup,
  SendTestNotification,
  SERVICE_CONSUMERS,
  STREAMS,
} from '@volback/contracts';
import { startDurableConsumer, type MessagePublisher, type RunningConsumer } from '@volback/messaging';
import type { Logger } from '@volback/observability';
import { decideCommand, type SchedulerCommand, type SchedulerSettings } from '../domain/index.ts';
import { publishDecisions } from './decision-publisher.ts';
import type { EventProjection } from './event-projection.ts';
import type { Notifier } from './notifier.ts';

/** Durable name of the consumer all schedulers share: each command is handled by one of them. */
export const SCHEDULER_COMMANDS_CONSUMER = SERVICE_CONSUMERS.scheduler;

/** Options of {@link startSchedulerCommandConsumer}. */
export interface SchedulerCommandConsumerOptions {
  readonly nc: NatsConnection;
  readonly publisher: MessagePublisher;
  readonly projection: EventProjection;
  readonly settings: SchedulerSettings;
  /** Sends the test notifications (`SendTestNotification`). */
  readonly notifier?: Notifier;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly onDecision?: (what: string) => void;
}

/**
 * `RequestBackup`, `DefinePolicy`, `RemovePolicy` and `SendTestNotification` from `volback.cmd.scheduler.*`. Any scheduler
 * may handle them, leader or not: the decision reads the state caught up to the log's end, and
 * its messages have ids derived from the command's, so a redelivery (or a handler that died after
 * publishing) stores nothing twice.
 */
export async function startSchedulerCommandConsumer(
  options: SchedulerCommandConsumerOptions,
): Promise<RunningConsumer> {
  const log = options.logger.child({ component: 'commands' });
  return startDurableConsumer({
    nc: options.nc,
    stream: STREAMS.commands.name,
    durable: SCHEDULER_COMMANDS_CONSUMER,
    filterSubjects: [commandSubjectFilter({ kind: 'scheduler' })],
    publisher: options.publisher,
    source: options.settings.source,
    accepts: (def) =>
      def === RequestBackup ||
      def === DefinePolicy ||
      def === RemovePolicy ||
      (def === SendTestNotification && options.notifier !== undefined),
    logger: log,
    ackWaitMs: 30_000,
    async handler(message) {
      if (message.envelope.type === SendTestNotification.type) {
        const test = message.envelope.data as { testId: string; channel?: string; requestedBy: string };
        const outcomes = await options.notifier!.sendTest(test, () => message.working());
        log.info({ type: message.envelope.type, id: message.envelope.id, outcomes }, 'command handled');
        return;
      }
      // Decide on the latest facts: a policy defined a moment ago must be seen by its removal.
      if (!(await options.projection.catchUp(10_000)))
        throw new Error('the projection is behind the event log');
      const command = {
        type: message.envelope.type,
        id: message.envelope.id,
        data: message.envelope.data,
      } as SchedulerCommand;
      const decisions = decideCommand(command, options.projection.state, options.clock(), options.settings);
      const outcome = await publishDecisions(options.publisher, decisions, log, (d) =>
        options.onDecision?.(d.what),
      );
      // Throwing makes the consumer deliver the command again, after a backoff.
      if (outcome.failed > 0) throw new Error(`could not publish the outcome of ${message.envelope.type}`);
      log.info(
        { type: message.envelope.type, id: message.envelope.id, decided: decisions.map((d) => d.what) },
        'command handled',
      );
      await options.projection.waitFor(outcome.lastEventSequence, 5_000);
    },
  });
}
