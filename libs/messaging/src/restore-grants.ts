import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { ensureKvBucket } from './kv-buckets.ts';
import { GRANTS_BUCKET, grantKey, restoreGrant, type RestoreGrant } from '@volback/contracts';

/** How long a grant stays in the bucket after it is written (it expires well before). */
const BUCKET_TTL_MS = 7 * 24 * 3_600_000;

/**
 * The restore grants in KV bucket `VOLBACK_GRANTS` (see `GRANTS_BUCKET` in libs/contracts): the
 * catalog writes one before each `RestoreSnapshot`, the gateways read them. The bucket is opened at
 * first use (and created by a writer), so a gateway that starts before any catalog still finds it.
 */
export class RestoreGrants {
  readonly #nc: NatsConnection;
  readonly #replicas: number;
  #kv: Promise<KV> | undefined;

  constructor(nc: NatsConnection, options: { replicas?: number } = {}) {
    this.#nc = nc;
    this.#replicas = options.replicas ?? 1;
  }

  #bucket(create: boolean): Promise<KV> {
    this.#kv ??= (async () => {
      if (!create) return new Kvm(this.#nc).open(GRANTS_BUCKET);
      return ensureKvBucket(this.#nc, GRANTS_BUCKET, {
        history: 1,
        ttl: BUCKET_TTL_MS,
        replicas: this.#replicas,
      });
    })();
    // A failed open is tried again next time (the bucket may be created meanwhile).
    this.#kv.catch(() => (this.#kv = undefined));
    return this.#kv;
  }

  /** Lets `grant.hostId` read `grant.snapshotId` for restore `restoreId`, until `grant.expiresAt`. */
  async put(restoreId: string, grant: RestoreGrant): Promise<void> {
    const value = JSON.stringify(restoreGrant.parse(grant));
    try {
      await (await this.#bucket(true)).put(grantKey(restoreId), value);
    } catch {
      // The bucket may have been deleted under us (no stream answers the put): open or create it
      // again and try once more; a second failure is the caller's.
      this.#kv = undefined;
      await (await this.#bucket(true)).put(grantKey(restoreId), value);
    }
  }

  /** The grant of a restore; undefined when there is none, or none that reads as one. */
  async get(restoreId: string): Promise<RestoreGrant | undefined> {
    let entry: KvEntry | null;
    try {
      entry = await (await this.#bucket(false)).get(grantKey(restoreId));
    } catch (error) {
      // No bucket: nobody granted anything yet.
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
        this.#kv = undefined;
        return undefined;
      }
      throw error;
    }
    if (!entry || entry.operation !== 'PUT') return undefined;
    try {
      const parsed = restoreGrant.safeParse(entry.json());
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}
