import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { BackupVolume, commandSubjectFilter, createCommand, STREAMS } from '@volback/contracts';
import { startNatsServer, waitUntil, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  drainNats,
  ensureStreams,
  MessagePublisher,
  startDurableConsumer,
  type ConsumedMessage,
  type NatsConnection,
} from './index.ts';

// Its own server: these tests delete the streams every other test relies on.
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: MessagePublisher;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats({ servers: server.url, name: 'stream-loss-test', connectTimeoutMs: 10_000 });
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  publisher = new MessagePublisher(nc);
});
afterAll(async () => {
  await drainNats(nc);
  await server.destroy();
});

const command = (hostId: string, backupId: string) =>
  createCommand(
    BackupVolume,
    { backupId, hostId, volumeName: 'db', trigger: 'manual' },
    { source: 'volback://test' },
  );

/** Publishes once the stream is back (a publish to a deleted stream has no responder). */
async function publishWhenStreamIsBack(message: ReturnType<typeof command>): Promise<void> {
  await waitUntil(
    'the commands stream to be recreated',
    async () => (await jsm.streams.info(STREAMS.commands.name).catch(() => null)) !== null,
    30_000,
  );
  await publisher.publish(message);
}

describe.each([
  { mode: 'batched pulls', longRunning: false },
  { mode: 'one long-running message at a time', longRunning: true },
])('a durable consumer whose stream is deleted under it ($mode)', ({ longRunning }) => {
  it('recreates the stream with its settings and itself, and handles commands sent afterwards', async () => {
    const hostId = `host-loss-${longRunning ? 'long' : 'batch'}`;
    const seen: string[] = [];
    const consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.commands.name,
      durable: `agent-${hostId}`,
      filterSubjects: [commandSubjectFilter({ kind: 'host', hostId })],
      publisher,
      source: 'volback://test',
      longRunning,
      streams: { commandMaxAgeMs: 3_600_000 },
      handler: async (m: ConsumedMessage) =>
        void seen.push((m.envelope.data as { backupId: string }).backupId),
    });
    await publisher.publish(command(hostId, 'before'));
    await waitUntil('the first command', async () => seen.includes('before'));

    await jsm.streams.delete(STREAMS.events.name);
    await jsm.streams.delete(STREAMS.commands.name);
    await publishWhenStreamIsBack(command(hostId, 'after'));
    await waitUntil('the command sent after the deletion', async () => seen.includes('after'), 30_000);

    const info = await jsm.streams.info(STREAMS.commands.name);
    expect(info.config.retention).toBe('workqueue');
    expect(info.config.max_age).toBe(3_600_000 * 1_000_000);
    expect((await jsm.streams.info(STREAMS.events.name)).config.retention).toBe('limits');
    await consumer.stop();
  });
});

describe('a publisher told to recreate missing streams', () => {
  it('stores a command sent while its stream is deleted, once; a plain publisher fails', async () => {
    await jsm.streams.delete(STREAMS.commands.name);
    const message = command('host-publisher', 'backup-publisher-1');
    await expect(publisher.publish(message)).rejects.toThrow(/jetstream is not enabled/);

    const recreating = new MessagePublisher(nc, { recreateStreams: {} });
    const first = await recreating.publish(message);
    expect(first).toMatchObject({ stream: STREAMS.commands.name, duplicate: false });
    const again = await recreating.publish(message);
    expect(again.duplicate).toBe(true);
    const info = await jsm.streams.info(STREAMS.commands.name);
    expect(info.state.messages).toBe(1);
    expect(info.config.retention).toBe('workqueue');
  });
});
