import {
  loadAhead,
  loadTreeFrom,
  type BlobSink,
  type BlobSource,
  type BlobType,
  type TreeNode,
} from '@volback/repository';
import type { DataPathClient } from './client.ts';

/** Blobs a restore asks the gateways for ahead of the one it writes. */
const LOAD_AHEAD = 12;

/** Tuning of a {@link GatewayBlobStore}. */
export interface GatewayBlobStoreOptions {
  /** Bytes of blobs on their way to gateways at once (flow control; default 64 MiB). */
  readonly maxInFlightBytes?: number;
  /** Requests on their way at once (default 16). */
  readonly maxInFlightRequests?: number;
  /**
   * Blobs smaller than this are sent without asking first whether the repository lacks them:
   * one round trip instead of two, and the gateway deduplicates anyway (default 64 KiB).
   */
  readonly askAboveBytes?: number;
}

/**
 * The agent's side of the data path as a repository to back up into and restore from: chunks
 * hashed here, only those the repository lacks sent to a gateway, with a bound on the bytes in
 * flight so memory stays flat whatever the volume's size. Keys never reach this side.
 *
 * A file unchanged since the parent snapshot is taken as stored without asking: the gateway's
 * commit checks that every blob a snapshot reaches exists, so a blob pruned meanwhile fails
 * the commit (and the backup is retried) rather than leaving a snapshot with holes.
 */
export class GatewayBlobStore implements BlobSink, BlobSource {
  readonly chunkerPolynomial: string;
  readonly #client: DataPathClient;
  readonly #maxBytes: number;
  readonly #maxRequests: number;
  readonly #askAbove: number;
  /** Blobs this session knows to be in the repository or on their way. */
  readonly #known = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  #inFlightBytes = 0;
  #bytesAdded = 0;
  #bytesSent = 0;
  #storedBytes = 0;
  #error: unknown;
  #wake: (() => void) | undefined;

  private constructor(client: DataPathClient, chunkerPolynomial: string, options: GatewayBlobStoreOptions) {
    this.#client = client;
    this.chunkerPolynomial = chunkerPolynomial;
    this.#maxBytes = options.maxInFlightBytes ?? 64 * 1024 * 1024;
    this.#maxRequests = options.maxInFlightRequests ?? 16;
    this.#askAbove = options.askAboveBytes ?? 64 * 1024;
  }

  /** Asks a gateway for the repository's chunker polynomial and returns a store for one session. */
  static async open(
    client: DataPathClient,
    options: GatewayBlobStoreOptions = {},
  ): Promise<GatewayBlobStore> {
    const info = await client.repositoryInfo();
    return new GatewayBlobStore(client, info.chunkerPolynomial, options);
  }

  get client(): DataPathClient {
    return this.#client;
  }

  /** Plaintext bytes of data blobs (file contents) the repository did not have. */
  get bytesAdded(): number {
    return this.#bytesAdded;
  }

  /** Plaintext bytes that crossed the network to gateways. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Bytes the gateways reported the new blobs take in packs (0 for blobs still in an open pack). */
  get storedBytes(): number {
    return this.#storedBytes;
  }

  async saveBlob(type: BlobType, data: Uint8Array, id: string): Promise<void> {
    if (this.#error) throw this.#error;
    const key = `${type}:${id}`;
    if (this.#known.has(key)) return;
    this.#known.add(key);
    while (
      this.#inFlight.size > 0 &&
      (this.#inFlight.size >= this.#maxRequests || this.#inFlightBytes + data.length > this.#maxBytes)
    ) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
      if (this.#error) throw this.#error;
    }
    this.#inFlightBytes += data.length;
    const task = this.#send(type, id, data).then(
      () => undefined,
      (error: unknown) => {
        this.#known.delete(key);
        this.#error ??= error;
      },
    );
    const tracked = task.finally(() => {
      this.#inFlightBytes -= data.length;
      this.#inFlight.delete(tracked);
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
    this.#inFlight.add(tracked);
  }

  async #send(type: BlobType, id: string, data: Uint8Array): Promise<void> {
    if (data.length >= this.#askAbove) {
      const missing = await this.#client.missingBlobs([{ type, id }]);
      if (missing.length === 0) return;
    }
    const stored = await this.#client.storeBlob(type, id, data);
    this.#bytesSent += data.length;
    if (stored.added) {
      if (type === 'data') this.#bytesAdded += data.length;
      this.#storedBytes += stored.storedLength;
    }
  }

  hasBlobs(): boolean {
    return true;
  }

  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    if (this.#error) throw this.#error;
  }

  loadBlob(type: BlobType, id: string): Promise<Buffer> {
    return this.#client.loadBlob(type, id);
  }

  /**
   * A file's blobs in order, many requests ahead (a round trip each, spread over the gateways):
   * a restore is not paced by one gateway's latency.
   */
  loadBlobs(type: BlobType, ids: readonly string[]): AsyncGenerator<Buffer, void, undefined> {
    return loadAhead((t, id) => this.#client.loadBlob(t, id), type, ids, LOAD_AHEAD);
  }

  async loadTree(id: string): Promise<TreeNode[]> {
    return loadTreeFrom(this.#client, id);
  }
}
