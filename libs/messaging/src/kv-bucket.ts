import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import { ensureKvBucket, type KvBucketOptions } from './kv-buckets.ts';

/**
 * A JetStream KV bucket opened at first use: created (with `config`) when a writer asks and it is
 * missing, its replicas raised to `config.replicas` if fewer ({@link ensureKvBucket}), opened as it
 * is otherwise. A failed open is tried again next time, and {@link forget}
 * makes the next use open it again (after the bucket was deleted under a running service).
 */
export class LazyBucket {
  readonly #nc: NatsConnection;
  readonly #name: string;
  readonly #config: KvBucketOptions;
  #kv: Promise<KV> | undefined;

  constructor(nc: NatsConnection, name: string, config: KvBucketOptions) {
    this.#nc = nc;
    this.#name = name;
    this.#config = config;
  }

  /** The bucket; with `create`, created when missing. */
  open(create: boolean): Promise<KV> {
    this.#kv ??= (async () => {
      if (!create) return new Kvm(this.#nc).open(this.#name);
      return ensureKvBucket(this.#nc, this.#name, this.#config);
    })();
    this.#kv.catch(() => (this.#kv = undefined));
    return this.#kv;
  }

  /** Opens it again at the next use. */
  forget(): void {
    this.#kv = undefined;
  }
}
