import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
import {
  connectNats,
  drainNats,
  ensureStreams,
  MessagePublisher,
  type NatsConnection,
} from '@volback/messaging';
import { startNatsServer, waitUntil, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCatalog, type Catalog } from './catalog.ts';
import { TEST_NOW, testHistory } from './test-support/history.ts';

const checkpointOf = async (catalog: Catalog) =>
  (await catalog.app.inject({ url: '/v1/status' })).json<{ checkpoint: number }>().checkpoint;
const hostsOf = async (catalog: Catalog) =>
  (await catalog.app.inject({ url: '/v1/hosts' })).json<{ items: unknown[] }>();

// Its own server: the test deletes the streams.
describe('the catalog when VOLBACK_EVENTS is deleted and created again', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  let publisher: MessagePublisher;
  const catalogs: Catalog[] = [];
  const start = async (name: string) => {
    const catalog = await startCatalog({
      nc,
      databaseFile: join(dir, `${name}.sqlite`),
      instanceId: name,
      now: () => TEST_NOW,
    });
    catalogs.push(catalog);
    return catalog;
  };
  const deleteStreams = async () => {
    await jsm.streams.delete(STREAMS.events.name);
    await jsm.streams.delete(STREAMS.commands.name);
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectNats({ servers: nats.url, name: 'catalog-stream-loss-test' });
    jsm = await jetstreamManager(nc);
    await ensureStreams(jsm);
    dir = await mkdtemp(join(tmpdir(), 'volback-catalog-loss-'));
    publisher = new MessagePublisher(nc);
  });

  afterAll(async () => {
    for (const catalog of catalogs) await catalog.stop().catch(() => undefined);
    if (nc) await drainNats(nc);
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a running catalog recreates the stream, rebuilds from the new one and applies events sent afterwards', async () => {
    const history = testHistory();
    for (const message of history) await publisher.publish(message);
    const live = await start('live');
    await live.caughtUp();
    expect(await checkpointOf(live)).toBe(history.length);

    await deleteStreams();
    // The catalog notices and recreates the stream; events sent to it then must all show.
    await waitUntil(
      'the events stream to be recreated',
      async () => (await jsm.streams.info(STREAMS.events.name).catch(() => null)) !== null,
    );
    const again = history.slice(0, 3);
    for (const message of again) await publisher.publish(message);
    await waitUntil(
      'the new events in the read model',
      async () => (await checkpointOf(live)) === again.length,
    );

    // Rebuilt from the new stream only: the same answers as a catalog that never saw the old one.
    const fresh = await start('fresh');
    await fresh.caughtUp();
    expect((await hostsOf(fresh)).items.length).toBeGreaterThan(0);
    expect(await hostsOf(live)).toEqual(await hostsOf(fresh));
  });

  it('a catalog started on a recreated stream rebuilds instead of resuming at its old checkpoint', async () => {
    const old = await start('restarted');
    await old.caughtUp();
    const before = await checkpointOf(old);
    expect(before).toBeGreaterThan(0);
    await old.stop();

    await deleteStreams();
    await ensureStreams(jsm); // another service recreated them while this catalog was down
    const history = testHistory().slice(0, 2);
    for (const message of history) await publisher.publish(message);

    const restarted = await start('restarted');
    await restarted.caughtUp();
    expect(await checkpointOf(restarted)).toBe(history.length);
    const fresh = await start('fresh-2');
    await fresh.caughtUp();
    expect(await hostsOf(restarted)).toEqual(await hostsOf(fresh));
  });
});
