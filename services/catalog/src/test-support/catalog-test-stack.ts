import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  connectNats,
  drainNats,
  ensureStreams,
  MessagePublisher,
  type NatsConnection,
} from '@volback/messaging';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { startCatalog, type Catalog, type CatalogOptions } from '../catalog.ts';
import { TEST_NOW, testHistory } from './history.ts';

/**
 * What the catalog's integration tests run on: a real NATS server with the streams and the test
 * history in them, a scratch directory for the databases, and the catalogs started on them (each
 * caught up with the history, stopped with the stack).
 */
export class CatalogTestStack {
  readonly catalogs: Catalog[] = [];
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  /** Scratch directory of the databases, removed by {@link stop}. */
  readonly dir: string;

  private constructor(nats: NatsServer, nc: NatsConnection, dir: string) {
    this.nats = nats;
    this.nc = nc;
    this.dir = dir;
  }

  /** Starts NATS, creates the streams and publishes {@link testHistory}. */
  static async start(name: string): Promise<CatalogTestStack> {
    const nats = await startNatsServer();
    const nc = await connectNats({ servers: nats.url, name: `catalog-${name}-test` });
    await ensureStreams(await jetstreamManager(nc));
    const publisher = new MessagePublisher(nc);
    for (const message of testHistory()) await publisher.publish(message);
    return new CatalogTestStack(nats, nc, await mkdtemp(join(tmpdir(), `volback-catalog-${name}-`)));
  }

  /** A catalog with its own database `<name>.sqlite` and durable, at {@link TEST_NOW}, caught up. */
  async catalog(name: string, options: Partial<CatalogOptions> = {}): Promise<Catalog> {
    const catalog = await startCatalog({
      nc: this.nc,
      databaseFile: join(this.dir, `${name}.sqlite`),
      instanceId: name,
      now: () => TEST_NOW,
      ...options,
    });
    this.catalogs.push(catalog);
    await catalog.caughtUp();
    return catalog;
  }

  /** Stops the catalogs, drains the connection, stops NATS, removes the directory. */
  async stop(): Promise<void> {
    for (const catalog of this.catalogs) await catalog.stop().catch(() => undefined);
    await drainNats(this.nc);
    await this.nats.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
