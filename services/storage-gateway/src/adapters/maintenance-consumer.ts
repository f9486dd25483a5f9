import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  CheckRepository,
  commandSubjectFilter,
  createEvent,
  ForgetSnapshots,
  ImportSnapshots,
  PruneRepository,
  RepositoryImportCompleted,
  RepositoryImportFailed,
  RepositoryChecked,
  RepositoryMaintenanceFailed,
  RepositoryPruned,
  SnapshotImported,
  SnapshotsForgotten,
  STREAMS,
  type EventDefinition,
  type MessageDefinition,
  SERVICE_CONSUMERS,
} from '@volback/contracts';
import {
  ConcurrencyConflictError,
  startDurableConsumer,
  type ConsumedMessage,
  type MessagePublisher,
  type RunningConsumer,
  type StreamOptions,
} from '@volback/messaging';
import type { Logger } from '@volback/observability';
import {
  check,
  forget,
  prune,
  RepositoryError,
  RepositoryErrorCode,
  type Repository,
} from '@volback/repository';
import type { z } from 'zod';
import {
  forgetSelection,
  forgetPolicy,
  maintenanceFailed,
  MaintenanceFailureCode,
  repositoryChecked,
  repositoryPruned,
  snapshotsForgotten,
  type CheckCommand,
  type ForgetCommand,
  type PruneCommand,
} from '../domain/maintenance.ts';
import { importCompleted, planImport, type ImportCommand } from '../domain/snapshot-import.ts';
import { storedSnapshots } from './stored-snapshots.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { knownSnapshotIds } from './known-snapshots.ts';

/** Durable name of the consumer all gateways share: each command runs on one of them. */
export const MAINTENANCE_CONSUMER = SERVICE_CONSUMERS.gatewayMaintenance;
/**
 * How long a command may run before JetStream hands it to another gateway. Prune and a full
 * check of a large repository take long; a gateway that dies mid-command delays it this long.
 */
export const MAINTENANCE_ACK_WAIT_MS = 30 * 60_000;

/** Options of {@link startMaintenanceConsumer}. */
export interface MaintenanceConsumerOptions {
  readonly nc: NatsConnection;
  readonly publisher: MessagePublisher;
  /** The handle maintenance runs on (separate from the data path's, whose packers it must not share). */
  readonly repository: () => Promise<Repository>;
  readonly repositoryId: string;
  readonly gatewayId: string;
  readonly logger: Logger;
  readonly metrics?: GatewayMetrics;
  /** Durable consumer name (default {@link MAINTENANCE_CONSUMER}). */
  readonly durable?: string;
  readonly ackWaitMs?: number;
  readonly clock?: () => Date;
  /** Settings the streams are recreated with if they are deleted under the service. */
  readonly streams?: StreamOptions;
}

const HANDLED: readonly MessageDefinition[] = [
  ForgetSnapshots,
  PruneRepository,
  CheckRepository,
  ImportSnapshots,
];

/** A deterministic event id per command and outcome: a redelivered command's event is stored once. */
function eventId(commandId: string, what: string): string {
  const id = `${commandId}.${what}`;
  return id.length <= 200 ? id : `${createHash('sha256').update(id).digest('hex')}.${what}`;
}

/** The failure code for an error a maintenance operation raised. */
export function failureCode(error: unknown): MaintenanceFailureCode {
  if (error instanceof RangeError) return MaintenanceFailureCode.InvalidPolicy;
  switch ((error as RepositoryError).code) {
    case RepositoryErrorCode.Locked:
      return MaintenanceFailureCode.Locked;
    case RepositoryErrorCode.BackendUnavailable:
    case RepositoryErrorCode.NoSpace:
    case RepositoryErrorCode.NotARepository:
      return MaintenanceFailureCode.Unavailable;
    case RepositoryErrorCode.Authentication:
    case RepositoryErrorCode.Malformed:
    case RepositoryErrorCode.FileNotFound:
      return MaintenanceFailureCode.RepositoryDamaged;
    default:
      return MaintenanceFailureCode.Failed;
  }
}

/**
 * Runs the gateway commands (`volback.cmd.gateway.*`: forget, prune, check, import) from the
 * work-queue stream, one at a time per gateway, and turns each outcome into an event:
 * SnapshotsForgotten, RepositoryPruned, RepositoryChecked, or RepositoryMaintenanceFailed; an
 * import's SnapshotImported events and RepositoryImportCompleted or RepositoryImportFailed. Never
 * a silent drop.
 */
export async function startMaintenanceConsumer(
  options: MaintenanceConsumerOptions,
): Promise<RunningConsumer> {
  const log = options.logger.child({ component: 'maintenance' });
  const clock = options.clock ?? (() => new Date());
  const source = `volback://storage-gateway/${options.gatewayId}`;

  const publish = async <S extends z.ZodType>(
    def: EventDefinition<string, string, S>,
    data: z.input<S>,
    message: ConsumedMessage,
    what: string,
  ) => {
    const envelope = message.envelope;
    await options.publisher.publish(
      createEvent(def, data, {
        source,
        id: eventId(envelope.id, what),
        causationid: envelope.id,
        ...(envelope.correlationid ? { correlationid: envelope.correlationid } : {}),
      }),
    );
  };

  /** Why this gateway cannot run a command for `repositoryId`, or undefined when it can. */
  const wrongRepository = (repositoryId: string): string | undefined =>
    repositoryId === options.repositoryId
      ? undefined
      : `gateway ${options.gatewayId} serves repository ${options.repositoryId}, not ${repositoryId}`;

  /** The code and the operator's reason for an error an operation raised (logged when unexpected). */
  const failureOf = (error: unknown, context: { operation: string }) => {
    const code = failureCode(error);
    if (code === MaintenanceFailureCode.Failed) log.error({ ...context, err: error }, 'maintenance error');
    // Repository errors name files and the location, never credentials; others stay in the log.
    const reason =
      error instanceof RepositoryError || error instanceof RangeError
        ? error.message
        : `${context.operation} failed in gateway ${options.gatewayId} (see its log)`;
    return { code, reason };
  };

  /**
   * Re-import: the repository's volback snapshots that the log does not know become
   * `SnapshotImported` events, each at most once (expected last sequence 0 on its own subject).
   */
  const runImport = async (message: ConsumedMessage): Promise<void> => {
    const command = message.envelope.data as ImportCommand;
    const operation = 'import';
    const context = { operation, operationId: command.operationId, deliveryCount: message.deliveryCount };
    const failed = async (code: MaintenanceFailureCode, reason: string) => {
      options.metrics?.maintenance.inc({ operation, outcome: code });
      log.warn({ ...context, code, reason }, 'import failed');
      await publish(
        RepositoryImportFailed,
        {
          operationId: command.operationId,
          repositoryId: command.repositoryId,
          code,
          reason: reason.slice(0, 4000) || code,
          failedAt: clock().toISOString(),
        },
        message,
        'failed',
      );
    };
    const elsewhere = wrongRepository(command.repositoryId);
    if (elsewhere) {
      await failed(MaintenanceFailureCode.UnknownRepository, elsewhere);
      return;
    }
    log.info(context, 'import started');
    const started = performance.now();
    let plan;
    try {
      const repo = await options.repository();
      // The log first: a snapshot committed meanwhile has its backup outcome published after it.
      const known = await knownSnapshotIds(options.nc);
      plan = planImport(command, storedSnapshots(await repo.listSnapshots()), known, clock());
    } catch (error) {
      const { code, reason } = failureOf(error, context);
      await failed(code, reason);
      return;
    }
    let imported = 0;
    for (const data of plan.imports) {
      const { envelope } = message;
      try {
        const ack = await options.publisher.publish(
          createEvent(SnapshotImported, data, {
            source,
            id: `snapshot-imported.${data.snapshotId}`,
            causationid: envelope.id,
            ...(envelope.correlationid ? { correlationid: envelope.correlationid } : {}),
          }),
          { expectedLastSubjectSequence: 0 },
        );
        if (!ack.duplicate) imported++;
      } catch (error) {
        // Another import (a concurrent one, or this one before a redelivery) stored it first.
        if (!(error instanceof ConcurrencyConflictError)) throw error;
      }
    }
    await publish(
      RepositoryImportCompleted,
      importCompleted(command, plan, imported, performance.now() - started, clock()),
      message,
      'import-completed',
    );
    options.metrics?.maintenance.inc({ operation, outcome: 'ok' });
    log.info(
      { ...context, imported, skipped: plan.skipped, durationMs: Math.round(performance.now() - started) },
      'import done',
    );
  };

  const run = async (message: ConsumedMessage): Promise<void> => {
    if (message.definition === ImportSnapshots) return runImport(message);
    const name = message.definition.name as 'ForgetSnapshots' | 'PruneRepository' | 'CheckRepository';
    const operation = name === 'ForgetSnapshots' ? 'forget' : name === 'PruneRepository' ? 'prune' : 'check';
    const command = message.envelope.data as ForgetCommand | PruneCommand | CheckCommand;
    const context = { operation, operationId: command.operationId, deliveryCount: message.deliveryCount };
    const failed = async (code: MaintenanceFailureCode, reason: string) => {
      options.metrics?.maintenance.inc({ operation, outcome: code });
      log.warn({ ...context, code, reason }, 'maintenance failed');
      await publish(
        RepositoryMaintenanceFailed,
        maintenanceFailed(command, operation, code, reason, clock()),
        message,
        'failed',
      );
    };

    const elsewhere = wrongRepository(command.repositoryId);
    if (elsewhere) {
      await failed(MaintenanceFailureCode.UnknownRepository, elsewhere);
      return;
    }
    log.info(context, 'maintenance started');
    const started = performance.now();
    let outcome: { def: EventDefinition; data: unknown; what: string };
    try {
      const repo = await options.repository();
      if (name === 'ForgetSnapshots') {
        const forgetCommand = command as ForgetCommand;
        const decisions = await forget(repo, forgetPolicy(forgetCommand.retention), {
          ...forgetSelection(forgetCommand),
          dryRun: forgetCommand.dryRun,
          now: clock().getTime(),
        });
        outcome = {
          def: SnapshotsForgotten,
          data: snapshotsForgotten(forgetCommand, decisions, clock()),
          what: 'forgotten',
        };
      } else if (name === 'PruneRepository') {
        const summary = await prune(repo, { maxUnusedFraction: (command as PruneCommand).maxUnusedFraction });
        outcome = {
          def: RepositoryPruned,
          data: repositoryPruned(command as PruneCommand, summary, clock()),
          what: 'pruned',
        };
      } else {
        const checkCommand = command as CheckCommand;
        // Exclusive, as restic's check: a snapshot committed while the check reads would name
        // trees and blobs in an index file it read before, and look damaged.
        const lock = await repo.lock(true);
        try {
          const report = await check(repo, { readDataFraction: checkCommand.readDataFraction });
          outcome = {
            def: RepositoryChecked,
            data: repositoryChecked(checkCommand, report, performance.now() - started, clock()),
            what: 'checked',
          };
        } finally {
          await lock.release().catch(() => undefined);
        }
      }
    } catch (error) {
      const { code, reason } = failureOf(error, context);
      await failed(code, reason);
      return;
    }
    await publish(outcome.def, outcome.data as never, message, outcome.what);
    options.metrics?.maintenance.inc({ operation, outcome: 'ok' });
    log.info({ ...context, durationMs: Math.round(performance.now() - started) }, 'maintenance done');
  };

  return startDurableConsumer({
    nc: options.nc,
    stream: STREAMS.commands.name,
    durable: options.durable ?? MAINTENANCE_CONSUMER,
    filterSubjects: [commandSubjectFilter({ kind: 'gateway' })],
    handler: run,
    publisher: options.publisher,
    source,
    accepts: (definition) => HANDLED.includes(definition),
    logger: log,
    ...(options.streams ? { streams: options.streams } : {}),
    ackWaitMs: options.ackWaitMs ?? MAINTENANCE_ACK_WAIT_MS,
    longRunning: true,
  });
}
