import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { NOTIFY_CHANNELS_BUCKET, notificationChannel, type NotificationChannel } from '@volback/contracts';

/**
 * The notification channels in KV bucket `volback-notify-channels` (see `NOTIFY_CHANNELS_BUCKET`),
 * one key per channel name. The values hold credentials: NATS lets only the scheduler and the
 * catalog read the bucket. The catalog writes the channels of the API, the scheduler those of its
 * configuration. Opened at first use and created by whoever needs it first.
 */
export class NotificationChannels {
  readonly #nc: NatsConnection;
  readonly #replicas: number;
  #kv: Promise<KV> | undefined;

  constructor(nc: NatsConnection, options: { replicas?: number } = {}) {
    this.#nc = nc;
    this.#replicas = options.replicas ?? 1;
  }

  #bucket(): Promise<KV> {
    this.#kv ??= (async () => {
      const kvm = new Kvm(this.#nc);
      try {
        return await kvm.create(NOTIFY_CHANNELS_BUCKET, { history: 1, replicas: this.#replicas });
      } catch {
        return kvm.open(NOTIFY_CHANNELS_BUCKET);
      }
    })();
    this.#kv.catch(() => (this.#kv = undefined));
    return this.#kv;
  }

  /** Runs `op` on the bucket, opening it again once if it was deleted meanwhile. */
  async #with<T>(op: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await op(await this.#bucket());
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound))
        throw error;
      this.#kv = undefined;
      return op(await this.#bucket());
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
