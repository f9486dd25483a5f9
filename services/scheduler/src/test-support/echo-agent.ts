// A stand-in for the agents of some hosts in the scheduler's NATS tests (the real agent is in the e2e
// tests): it takes BackupVolume commands from the real commands stream and reports them completed.
import type { NatsConnection } from '@nats-io/nats-core';
import {
  BackupCompleted,
  BackupStarted,
  BackupVolume,
  commandSubjectFilter,
  createEvent,
  STREAMS,
} from '@volback/contracts';
import { MessagePublisher, startDurableConsumer, type RunningConsumer } from '@volback/messaging';

/** The backups it was asked for, in order. */
export interface EchoAgent {
  readonly received: { backupId: string; volumeName: string; trigger: string }[];
  stop(): Promise<void>;
}

export async function startEchoAgent(nc: NatsConnection, hostId: string): Promise<EchoAgent> {
  const publisher = new MessagePublisher(nc);
  const received: EchoAgent['received'] = [];
  const consumer: RunningConsumer = await startDurableConsumer({
    nc,
    stream: STREAMS.commands.name,
    durable: `echo-agent-${hostId}`,
    filterSubjects: [commandSubjectFilter({ kind: 'host', hostId })],
    publisher,
    source: `volback://echo-agent/${hostId}`,
    accepts: (def) => def === BackupVolume,
    async handler(message) {
      const command = message.envelope.data as { backupId: string; volumeName: string; trigger: string };
      received.push({ backupId: command.backupId, volumeName: command.volumeName, trigger: command.trigger });
      const now = new Date().toISOString();
      const key = { backupId: command.backupId, hostId, volumeName: command.volumeName };
      const source = `volback://echo-agent/${hostId}`;
      await publisher.publish(
        createEvent(
          BackupStarted,
          { ...key, method: 'direct', startedAt: now },
          { source, id: `${command.backupId}.started` },
        ),
      );
      await publisher.publish(
        createEvent(
          BackupCompleted,
          {
            ...key,
            snapshotId: 'a'.repeat(64),
            stats: {
              filesNew: 0,
              filesChanged: 0,
              filesUnmodified: 0,
              dirsNew: 0,
              dirsChanged: 0,
              dirsUnmodified: 0,
              bytesRead: 0,
              bytesAdded: 0,
              bytesStored: 0,
              durationMs: 1,
            },
            completedAt: now,
          },
          { source, id: `${command.backupId}.completed` },
        ),
      );
    },
  });
  return { received, stop: () => consumer.stop() };
}
