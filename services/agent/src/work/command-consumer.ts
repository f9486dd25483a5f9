import { jetstreamManager } from '@nats-io/jetstream';
import {
  agentDurableName,
  BackupSet,
  BackupVolume,
  commandSubjectFilter,
  eventSubject,
  parseMessage,
  RestoreDrill,
  RestoreSet,
  RestoreSnapshot,
  STREAMS,
} from '@volback/contracts';
import {
  MessagePublisher,
  startDurableConsumer,
  type NatsConnection,
  type RunningConsumer,
  type StreamOptions,
} from '@volback/messaging';
import type { Logger } from '@volback/observability';
import type { ApplicationEngine } from '../adapters/applications.ts';
import type { DatabaseDumper } from '../adapters/database-dump.ts';
import type { Quiescer } from '../adapters/quiesce.ts';
import type { VolumeAccess } from '../adapters/volume-access.ts';
import { runBackupSet, type BackupSetCommand } from './backup-set.ts';
import { runBackup, type BackupVolumeCommand } from './backup-volume.ts';
import { runRestoreDrill, type RestoreDrillCommand } from './restore-drill.ts';
import { runRestoreSet, type RestoreSetCommand } from './restore-set.ts';
import { runRestore, type RestoreSnapshotCommand } from './restore-snapshot.ts';
import {
  DEFAULT_WORK_SECURITY,
  workPublishing,
  type WorkContext,
  type WorkSecurity,
} from './work-context.ts';

/** What {@link startCommandConsumer} needs. */
export interface CommandConsumerOptions {
  readonly hostId: string;
  /** The host's display name now (the engine's host name unless configured); the host id if absent. */
  readonly hostName?: () => Promise<string>;
  readonly nc: NatsConnection;
  readonly volumes: VolumeAccess;
  readonly quiescer: Quiescer;
  readonly applications: ApplicationEngine;
  readonly dumper: DatabaseDumper;
  readonly logger: Logger;
  readonly clock?: () => Date;
  /** How long the server waits for a sign of life before redelivering a command (default 30 s). */
  readonly ackWaitMs?: number;
  readonly dataPath?: WorkContext['dataPath'];
  /** Where command hooks may run and what snapshots keep of containers' env (default: no allow-list, env kept). */
  readonly security?: WorkSecurity;
  /** Settings the streams are recreated with if they are deleted under the service. */
  readonly streams?: StreamOptions;
  /** The chunk caches of directly read volumes go below it (`<stateDir>/chunk-cache`); none without. */
  readonly chunkCacheRoot?: string;
  /** Called once the streams and the consumer were recreated (the agent announces itself again). */
  readonly onStreamsRecreated?: () => void;
}

/** Event types that end a piece of work: a command whose work already ended is not run again. */
const TERMINAL = /\.(set-)?(completed|partially-failed|failed|passed)\.v\d+$/;

/** Durable consumer name of a host's agent (in @volback/contracts: the permissions name it). */
export { agentDurableName };

/**
 * Consumes the backup and restore commands addressed to this host, one at a time, from the
 * durable commands stream: a command sent while the agent was down runs when it is back; one
 * whose run was cut short by a crash is delivered again and runs again (its chunks already
 * stored are not sent twice). While a command runs the agent tells the server it is working, so
 * it is not handed out again meanwhile. `stop()` interrupts a running backup: it publishes no
 * outcome and its command is handed back (not acknowledged), to run again at the next start.
 */
export async function startCommandConsumer(options: CommandConsumerOptions): Promise<RunningConsumer> {
  const { hostId, nc } = options;
  const clock = options.clock ?? (() => new Date());
  const log = options.logger.child({ component: 'commands', hostId });
  const publisher = new MessagePublisher(nc);
  const source = `volback://agent/${hostId}`;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const stopping = new AbortController();
  const jsm = await jetstreamManager(nc);

  /** True when the work's aggregate already holds its final event (the ack was lost, not the work). */
  const alreadyEnded = async (
    aggregate: 'backup' | 'restore' | 'drill',
    workId: string,
  ): Promise<boolean> => {
    const last = await jsm.streams
      .getMessage(STREAMS.events.name, { last_by_subj: eventSubject(aggregate, hostId, workId) })
      .catch(() => null);
    if (!last) return false;
    const parsed = parseMessage(last.data);
    return parsed.ok && TERMINAL.test(parsed.message.envelope.type);
  };

  const consumer = await startDurableConsumer({
    nc,
    stream: STREAMS.commands.name,
    durable: agentDurableName(hostId),
    filterSubjects: [commandSubjectFilter({ kind: 'host', hostId })],
    publisher,
    source,
    accepts: (definition) =>
      definition === BackupVolume ||
      definition === RestoreSnapshot ||
      definition === BackupSet ||
      definition === RestoreSet ||
      definition === RestoreDrill,
    logger: log,
    ackWaitMs,
    longRunning: true,
    ...(options.streams ? { streams: options.streams } : {}),
    ...(options.onStreamsRecreated ? { onRecreated: options.onStreamsRecreated } : {}),
    async handler(message) {
      const data = message.envelope.data as
        | BackupVolumeCommand
        | RestoreSnapshotCommand
        | BackupSetCommand
        | RestoreSetCommand
        | RestoreDrillCommand;
      if (data.hostId !== hostId) {
        log.error({ subject: message.subject, hostId: data.hostId }, 'command for another host; dropped');
        return;
      }
      const [aggregate, workId] =
        'backupId' in data
          ? (['backup', data.backupId] as const)
          : 'drillId' in data
            ? (['drill', data.drillId] as const)
            : (['restore', data.restoreId] as const);
      if (await alreadyEnded(aggregate, workId)) {
        log.info(
          { workId, deliveryCount: message.deliveryCount },
          'work already ended; not running it again',
        );
        return;
      }
      const heartbeat = setInterval(() => message.working(), Math.max(1_000, ackWaitMs / 3));
      try {
        const ctx: WorkContext = {
          hostId,
          hostName: options.hostName ?? (async () => hostId),
          nc,
          volumes: options.volumes,
          quiescer: options.quiescer,
          applications: options.applications,
          dumper: options.dumper,
          logger: log,
          clock,
          signal: stopping.signal,
          deliveryCount: message.deliveryCount,
          ...(options.dataPath ? { dataPath: options.dataPath } : {}),
          ...(options.chunkCacheRoot ? { chunkCacheRoot: options.chunkCacheRoot } : {}),
          security: options.security ?? DEFAULT_WORK_SECURITY,
          ...workPublishing({
            nc,
            hostId,
            publisher,
            source,
            clock,
            causationid: message.envelope.id,
            correlationid: workId,
          }),
        };
        if (message.definition === BackupVolume) await runBackup(ctx, data as BackupVolumeCommand);
        else if (message.definition === RestoreSnapshot)
          await runRestore(ctx, data as RestoreSnapshotCommand);
        else if (message.definition === BackupSet) await runBackupSet(ctx, data as BackupSetCommand);
        else if (message.definition === RestoreDrill) await runRestoreDrill(ctx, data as RestoreDrillCommand);
        else await runRestoreSet(ctx, data as RestoreSetCommand);
      } finally {
        clearInterval(heartbeat);
      }
    },
  });
  return {
    durable: consumer.durable,
    finished: consumer.finished,
    async stop() {
      stopping.abort();
      await consumer.stop();
    },
  };
}
