import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { NOTIFY_CHANNELS_BUCKET, notificationChannel, type NotificationChannel } from '@volback/contracts';
import { LazyBucket } from './kv-bucket.ts';

/**
 * The notification channels in KV bucket `volback-notify-channels` (see `NOTIFY_CHANNELS_BUCKET`),
 * one key per channel name. The values hold credentials: NATS lets only the scheduler and the
 * catalog read the bucket. The catalog writes the channels of the API, the scheduler those of its
 * configuration. Opened at first use and created by whoever needs it first.
 */
export class NotificationChannels {
  readonly #bucket: LazyBucket;

  constructor(nc: NatsConnection, options: { replicas?: number } = {}) {
    this.#bucket = new LazyBucket(nc, NOTIFY_CHANNELS_BUCKET, {
      history: 1,
      replicas: options.replicas ?? 1,
    });
  }

  /** Runs `op` on the bucket, opening it again once if it was deleted meanwhile. */
  async #with<T>(op: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await op(await this.#bucket.open(true));
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound))
        throw error;
      this.#bucket.forget();
      return op(await this.#bucket.open(true));
    }
  }

  /** Every channel that reads as one, by name. */
  async list(): Promise<NotificationChannel[]> {
    return this.#with(async (kv) => {
      const names: string[] = [];
      for await (const key of await kv.keys()) names.push(key);
      const channels: NotificationChannel[] = [];
      for (const name of names.sort()) {
        const channel = await this.#read(kv, name);
        if (channel) channels.push(channel);
      }
      return channels;
    });
  }

  /** One channel; undefined when there is none of that name. */
  async get(name: string): Promise<NotificationChannel | undefined> {
    return this.#with((kv) => this.#read(kv, name));
  }

  async #read(kv: KV, name: string): Promise<NotificationChannel | undefined> {
    const entry = await kv.get(name);
    if (!entry || entry.operation !== 'PUT') return undefined;
    try {
      const parsed = notificationChannel.safeParse(entry.json());
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores (or replaces) a channel under its name. */
  async put(channel: NotificationChannel): Promise<void> {
    const value = JSON.stringify(notificationChannel.parse(channel));
    await this.#with((kv) => kv.put(channel.name, value));
  }

  /** Removes a channel; true when there was one. */
  async remove(name: string): Promise<boolean> {
    return this.#with(async (kv) => {
      const entry = await kv.get(name);
      if (!entry || entry.operation !== 'PUT') return false;
      await kv.delete(name);
      return true;
    });
  }
}
