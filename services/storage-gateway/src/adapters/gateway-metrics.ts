import type { Counter, Histogram, Metrics } from '@volback/observability';

/** The gateway's own metrics (all `volback_gateway_*`). */
export interface GatewayMetrics {
  /** Data-path requests by operation and outcome (`ok` or the error code). */
  readonly requests: Counter<'operation' | 'outcome'>;
  readonly requestSeconds: Histogram<'operation'>;
  /** Blobs received by type and outcome (`added`, `duplicate`). */
  readonly blobs: Counter<'type' | 'outcome'>;
  /** Plaintext bytes of blobs new to the repository. */
  readonly bytesAdded: Counter<'type'>;
  /** Packs written (with their index). */
  readonly packs: Counter;
  /** Maintenance commands by operation and outcome (`ok` or the failure code). */
  readonly maintenance: Counter<'operation' | 'outcome'>;
}

/** Creates the gateway's metrics; `sessions` reports the sessions holding a lock here. */
export function createGatewayMetrics(metrics: Metrics, sessions: () => number): GatewayMetrics {
  metrics.gauge({
    name: 'gateway_sessions',
    help: 'Backup and restore sessions holding a shared repository lock on this gateway.',
    collect() {
      this.set(sessions());
    },
  });
  return {
    requests: metrics.counter({
      name: 'gateway_requests_total',
      help: 'Data-path requests handled, by operation and outcome (ok or the error code).',
      labelNames: ['operation', 'outcome'],
    }),
    requestSeconds: metrics.histogram({
      name: 'gateway_request_duration_seconds',
      help: 'Time to answer a data-path request, by operation.',
      labelNames: ['operation'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    }),
    blobs: metrics.counter({
      name: 'gateway_blobs_stored_total',
      help: 'Blobs received on store-blob and store-blobs, by type and outcome (added or duplicate).',
      labelNames: ['type', 'outcome'],
    }),
    bytesAdded: metrics.counter({
      name: 'gateway_blob_bytes_added_total',
      help: 'Plaintext bytes of blobs new to the repository, by type.',
      labelNames: ['type'],
    }),
    packs: metrics.counter({
      name: 'gateway_packs_written_total',
      help: 'Pack files written (each named by an index file written with it).',
    }),
    maintenance: metrics.counter({
      name: 'gateway_maintenance_total',
      help: 'Forget, prune and check commands run, by operation and outcome (ok or the failure code).',
      labelNames: ['operation', 'outcome'],
    }),
  };
}
