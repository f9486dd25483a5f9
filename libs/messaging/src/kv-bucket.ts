import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';

/**
 * A JetStream KV bucket opened at first use: created (with `config`) when a writer asks and it is
 * missing, opened as it is otherwise. A failed open is tried again next time, and {@link forget}
 * makes the next use open it again (after the bucket was deleted under a running service).
 */
export class LazyBucket {
  readonly #nc: NatsConnection;
  readonly #name: string;
  readonly #config: Partial<KvOptions>;
  #kv: Promise<KV> | undefined;

  constructor(nc: NatsConnection, name: string, config: Partial<KvOptions>) {
    this.#nc = nc;
    this.#name = name;
    this.#config = config;
  }

  /** The bucket; with `create`, created when missing. */
  open(create: boolean): Promise<KV> {
    this.#kv ??= (async () => {
      const kvm = new Kvm(this.#nc);
      if (!create) return kvm.open(this.#name);
      try {
        return await kvm.create(this.#name, this.#config);
      } catch {
        // Created already, with settings of its own: use it as it is.
        return kvm.open(this.#name);
      }
    })();
    this.#kv.catch(() => (this.#kv = undefined));
    return this.#kv;
  }

  /** Opens it again at the next use. */
  forget(): void {
    this.#kv = undefined;
  }
}
