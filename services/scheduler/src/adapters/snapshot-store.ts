import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { SCHEDULER_SNAPSHOT_BUCKET } from '@volback/contracts';
import { ensureKvBucket } from '@volback/messaging';
import type { StateSnapshot } from '../domain/index.ts';

const zip = promisify(gzip);
const unzip = promisify(gunzip);

/** The one key of the snapshot bucket: every replica writes its state there, the latest wins. */
export const SNAPSHOT_KEY = 'state';

/** Where the scheduler keeps the snapshot of its state (a KV entry, gzip'd JSON). */
export interface SnapshotStore {
  /** The stored snapshot, undefined when there is none; throws when it cannot be read back (corrupt). */
  load(): Promise<unknown>;
  /** Stores a snapshot; resolves to its size in bytes. */
  save(snapshot: StateSnapshot): Promise<number>;
}

/** Opens (creating when missing) the snapshot bucket `bucket` (default `volback-scheduler-state`). */
export async function openSnapshotStore(
  nc: NatsConnection,
  options: { bucket?: string; replicas?: number } = {},
): Promise<SnapshotStore> {
  const kv: KV = await ensureKvBucket(nc, options.bucket ?? SCHEDULER_SNAPSHOT_BUCKET, {
    history: 1,
    replicas: options.replicas ?? 1,
  });
  return {
    async load() {
      const entry = await kv.get(SNAPSHOT_KEY);
      if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
      return JSON.parse((await unzip(entry.value)).toString('utf8'));
    },
    async save(snapshot) {
      const bytes = await zip(JSON.stringify(snapshot));
      const limit = nc.info?.max_payload;
      if (limit !== undefined && bytes.length > limit - 4096) {
        throw new RangeError(
          `the snapshot takes ${bytes.length} bytes, more than the server's max_payload ${limit}`,
        );
      }
      await kv.put(SNAPSHOT_KEY, bytes);
      return bytes.length;
    },
  };
}
