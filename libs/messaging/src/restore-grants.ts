import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KvEntry } from '@nats-io/kv';
import { GRANTS_BUCKET, grantKey, restoreGrant, type RestoreGrant } from '@volback/contracts';
import { LazyBucket } from './kv-bucket.ts';

/** How long a grant stays in the bucket after it is written (it expires well before). */
const BUCKET_TTL_MS = 7 * 24 * 3_600_000;

/**
 * The restore grants in KV bucket `VOLBACK_GRANTS` (see `GRANTS_BUCKET` in libs/contracts): the
 * catalog writes one before each `RestoreSnapshot`, the gateways read them. The bucket is opened at
 * first use (and created by a writer), so a gateway that starts before any catalog still finds it.
 */
export class RestoreGrants {
  readonly #bucket: LazyBucket;

  constructor(nc: NatsConnection, options: { replicas?: number } = {}) {
    this.#bucket = new LazyBucket(nc, GRANTS_BUCKET, {
      history: 1,
      ttl: BUCKET_TTL_MS,
      replicas: options.replicas ?? 1,
    });
  }

  /** Lets `grant.hostId` read `grant.snapshotId` for restore `restoreId`, until `grant.expiresAt`. */
  async put(restoreId: string, grant: RestoreGrant): Promise<void> {
    const value = JSON.stringify(restoreGrant.parse(grant));
    try {
      await (await this.#bucket.open(true)).put(grantKey(restoreId), value);
    } catch {
      // The bucket may have been deleted under us (no stream answers the put): open or create it
      // again and try once more; a second failure is the caller's.
      this.#bucket.forget();
      await (await this.#bucket.open(true)).put(grantKey(restoreId), value);
    }
  }

  /** The grant of a restore; undefined when there is none, or none that reads as one. */
  async get(restoreId: string): Promise<RestoreGrant | undefined> {
    let entry: KvEntry | null;
    try {
      entry = await (await this.#bucket.open(false)).get(grantKey(restoreId));
    } catch (error) {
      // No bucket: nobody granted anything yet.
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
        this.#bucket.forget();
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
