import {
  createHeartbeat,
  agentDurableName,
  BackupCompleted,
  BackupFailed,
  BackupStarted,
  BackupVolume,
  commandSubjectFilter,
  createEvent,
  HostRegistered,
  snapshotTags,
  STREAMS,
  VolumeDiscovered,
  volumeSnapshotPath,
  type EventDefinition,
} from '@volback/contracts';
import { DataPathClient, GatewayBlobStore } from '@volback/data-path';
import {
  MAX_ATOMIC_BATCH,
  MessagePublisher,
  startDurableConsumer,
  type NatsConnection,
  type RunningConsumer,
} from '@volback/messaging';
import { formatGoTime, goModeFromPosix, saveTree, sha256Hex, type TreeNode } from '@volback/repository';
import type { z } from 'zod';

/** What {@link startSimulatedAgent} needs. */
export interface SimulatedAgentOptions {
  /** This host's own connection (with the host's identity where the server checks them). */
  readonly nc: NatsConnection;
  readonly hostId: string;
  readonly volumeNames: readonly string[];
  /** `HostSeen.intervalSeconds`, and how often one is sent (the agent's default: 30). */
  readonly heartbeatSeconds: number;
  /** How long the server waits for a running backup's sign of life (the agent's default: 30 s). */
  readonly ackWaitMs?: number;
}

/** One simulated host: its discovery published, its heartbeats going, its commands answered. */
export interface SimulatedAgent {
  readonly hostId: string;
  /** Backups this agent completed (a snapshot committed and `BackupCompleted` stored). */
  completed(): number;
  stop(): Promise<void>;
}

type BackupVolumeCommand = z.output<typeof BackupVolume.schema>;

const ENGINE = { id: 'fleet-sim', version: '28.0.0', apiVersion: '1.48', os: 'linux', arch: 'x86_64' };

/**
 * A stand-in for the agent of one host, for fleet-scale tests: it speaks the real contracts on
 * real NATS as the agent does (`HostRegistered`, then every volume's `VolumeDiscovered` as one
 * atomic batch, `HostSeen` at the agent's interval; its host's `BackupVolume` commands from the
 * agent's durable consumer, one at a time) and answers each backup with a small real snapshot (one
 * file naming the backup, under `/volumes/<name>`) stored and committed through the storage
 * gateways over the data path, between the real `BackupStarted` and `BackupCompleted`. No Docker
 * Engine: the volumes exist only in what it announces.
 */
export async function startSimulatedAgent(options: SimulatedAgentOptions): Promise<SimulatedAgent> {
  const { nc, hostId } = options;
  const source = `volback://agent/${hostId}`;
  const publisher = new MessagePublisher(nc);
  const event = <S extends z.ZodType>(
    def: EventDefinition<string, string, S>,
    data: z.input<S>,
    id: string,
    extra: { causationid?: string; correlationid?: string } = {},
  ) => createEvent(def, data, { source, id, ...extra });

  const now = new Date().toISOString();
  await publisher.publish(
    event(
      HostRegistered,
      { hostId, name: hostId, engine: ENGINE, agentVersion: 'fleet-sim', registeredAt: now },
      `${hostId}.registered.${now}`,
    ),
  );
  const discovered = options.volumeNames.map((volumeName) => ({
    message: event(
      VolumeDiscovered,
      { hostId, volumeName, driver: 'local', anonymous: false, discoveredAt: now },
      `${hostId}.volume.${volumeName}.discovered`,
    ),
  }));
  for (let i = 0; i < discovered.length; i += MAX_ATOMIC_BATCH)
    await publisher.publishAtomic(discovered.slice(i, i + MAX_ATOMIC_BATCH));

  let running = 0;
  const beat = async () => {
    const seenAt = new Date().toISOString();
    // As the agent does: on the host's heartbeat subject (VOLBACK_HEARTBEATS), not the event log.
    await publisher
      .publish(
        createHeartbeat(
          {
            hostId,
            seenAt,
            intervalSeconds: options.heartbeatSeconds,
            containers: 0,
            volumes: options.volumeNames.length,
            backupsRunning: running,
          },
          { source, id: `${hostId}.seen.${seenAt}` },
        ),
      )
      .catch(() => undefined);
  };
  await beat();
  const heartbeats = setInterval(() => void beat(), options.heartbeatSeconds * 1000);

  let completed = 0;
  let consumer: RunningConsumer;
  try {
    consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.commands.name,
      durable: agentDurableName(hostId),
      filterSubjects: [commandSubjectFilter({ kind: 'host', hostId })],
      publisher,
      source,
      accepts: (definition) => definition === BackupVolume,
      ackWaitMs: options.ackWaitMs ?? 30_000,
      longRunning: true,
      async handler(message) {
        const command = message.envelope.data as BackupVolumeCommand;
        const causation = { causationid: message.envelope.id, correlationid: command.backupId };
        const key = { backupId: command.backupId, hostId, volumeName: command.volumeName };
        const startedAt = new Date();
        running++;
        try {
          await publisher.publish(
            event(
              BackupStarted,
              { ...key, method: 'direct', startedAt: startedAt.toISOString() },
              `${command.backupId}.started.${message.deliveryCount}`,
              causation,
            ),
          );
          const stored = await storeSnapshot(nc, hostId, command, startedAt);
          await publisher.publish(
            event(
              BackupCompleted,
              {
                ...key,
                snapshotId: stored.snapshotId,
                repositoryId: command.repositoryId,
                stats: {
                  filesNew: 1,
                  filesChanged: 0,
                  filesUnmodified: 0,
                  dirsNew: 1,
                  dirsChanged: 0,
                  dirsUnmodified: 0,
                  bytesRead: stored.bytes,
                  totalBytes: stored.bytes,
                  bytesAdded: stored.bytes,
                  bytesStored: stored.bytesStored,
                  durationMs: Date.now() - startedAt.getTime(),
                },
                completedAt: new Date().toISOString(),
              },
              `${command.backupId}.outcome`,
              causation,
            ),
          );
          completed++;
        } catch (error) {
          await publisher.publish(
            event(
              BackupFailed,
              {
                ...key,
                code: 'FLEET_SIM_BACKUP_FAILED',
                reason: (error as Error).message.slice(0, 2000),
                attempt: command.attempt,
                failedAt: new Date().toISOString(),
              },
              `${command.backupId}.outcome`,
              causation,
            ),
          );
        } finally {
          running--;
        }
      },
    });
  } catch (error) {
    clearInterval(heartbeats);
    throw error;
  }
  return {
    hostId,
    completed: () => completed,
    async stop() {
      clearInterval(heartbeats);
      await consumer.stop();
    },
  };
}

function node(name: string, type: 'dir' | 'file', time: string): TreeNode {
  return {
    name,
    type,
    mode: goModeFromPosix(type === 'dir' ? 0o040755 : 0o100644),
    mtime: time,
    atime: time,
    ctime: time,
    uid: 0,
    gid: 0,
    content: null,
  };
}

/**
 * Stores a one-file snapshot of the volume through the gateways, laid out as the agent's are
 * (`/volumes/<name>/backup.txt`), and commits it with the agent's tags.
 */
async function storeSnapshot(
  nc: NatsConnection,
  hostId: string,
  command: BackupVolumeCommand,
  startedAt: Date,
): Promise<{ snapshotId: string; bytes: number; bytesStored: number }> {
  const client = new DataPathClient(nc, {
    requester: { kind: 'host', hostId },
    repositoryId: command.repositoryId,
    sessionId: command.backupId,
  });
  const store = await GatewayBlobStore.open(client);
  const time = formatGoTime(BigInt(startedAt.getTime()) * 1_000_000n);
  const content = Buffer.from(`${hostId} ${command.volumeName} ${command.backupId}\n`, 'utf8');
  const blobId = sha256Hex(content);
  await store.saveBlob('data', content, blobId);
  const volumeDir = node(command.volumeName, 'dir', time);
  volumeDir.subtree = await saveTree(store, [
    { ...node('backup.txt', 'file', time), size: content.length, content: [blobId] },
  ]);
  const volumes = node('volumes', 'dir', time);
  volumes.subtree = await saveTree(store, [volumeDir]);
  const tree = await saveTree(store, [volumes]);
  await store.drain();
  let bytesStored = 0;
  for (const reply of await client.flush()) bytesStored += reply.bytesStored ?? 0;
  const snapshotId = await client.commitSnapshot({
    tree,
    paths: [volumeSnapshotPath(command.volumeName)],
    hostname: hostId,
    time: startedAt.toISOString(),
    tags: snapshotTags({ hostId, hostName: hostId, volumeName: command.volumeName, extra: command.tags }),
  });
  return { snapshotId, bytes: content.length, bytesStored };
}
