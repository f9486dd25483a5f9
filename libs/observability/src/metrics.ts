import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

export type { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prefix of every metric name volback exports. */
export const METRIC_PREFIX = 'volback_';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Name of the service, attached to every sample as the `service` label. */
  readonly service: string;
  /** Collect prom-client's default Node and process metrics (CPU, memory, event loop, GC); default true. */
  readonly defaultMetrics?: boolean;
}

/** A metric's prom-client configuration, minus the registries: {@link Metrics} picks its own. */
export type MetricConfig<C> = Omit<C, 'registers'>;

/** The process's metric registry and the helpers that create metrics on it. */
export interface Metrics {
  /** The registry `/metrics` serves; one per process, never prom-client's global one. */
  readonly registry: Registry;
  /** A counter named `volback_<name>`; `name` is given without the prefix. */
  counter<L extends string = string>(config: MetricConfig<CounterConfiguration<L>>): Counter<L>;
  /** A gauge named `volback_<name>`; `name` is given without the prefix. */
  gauge<L extends string = string>(config: MetricConfig<GaugeConfiguration<L>>): Gauge<L>;
  /** A histogram named `volback_<name>`; `name` is given without the prefix. */
  histogram<L extends string = string>(config: MetricConfig<HistogramConfiguration<L>>): Histogram<L>;
}

/** Error raised when a metric name already carries {@link METRIC_PREFIX}, which the helpers add. */
export class PrefixedMetricNameError extends Error {
  override readonly name = 'PrefixedMetricNameError';
  readonly code = 'VOLBACK_PREFIXED_METRIC_NAME';
}

/**
 * Creates the process's metric registry: every sample carries `service`, and prom-client's default
 * metrics are collected under the `volback_` prefix (`volback_process_cpu_seconds_total`, …).
 * Call it once in `main.ts` and hand `metrics` to the parts that count things.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  const configure = <C extends { name: string }>(config: C): C & { registers: Registry[] } => {
    if (config.name.startsWith(METRIC_PREFIX))
      throw new PrefixedMetricNameError(
        `metric name ${config.name} already starts with ${METRIC_PREFIX}; give it without the prefix`,
      );
    return { ...config, name: METRIC_PREFIX + config.name, registers: [registry] };
  };

  return {
    registry,
    counter: (config) => new Counter(configure(config)),
    gauge: (config) => new Gauge(configure(config)),
    histogram: (config) => new Histogram(configure(config)),
  };
}
