/**
 * Logging, metrics and health endpoints shared by every volback service. This file is the
 * library's only public entry point.
 */
export {
  createLogger,
  InvalidLogLevelError,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from './logger.ts';
export { REDACTED, SECRET_KEYS } from './redaction.ts';
export {
  createMetrics,
  METRIC_PREFIX,
  PrefixedMetricNameError,
  type Counter,
  type Gauge,
  type Histogram,
  type MetricConfig,
  type Metrics,
  type MetricsOptions,
  type Registry,
} from './metrics.ts';
export {
  DuplicateHealthCheckError,
  startupCheck,
  type StartupCheck,
  type CheckStatus,
  type HealthCheck,
  type HealthCheckResult,
  type HealthReport,
} from './health.ts';
export {
  DEFAULT_CHECK_TIMEOUT_MS,
  startOpsServer,
  type HealthCheckKind,
  type HealthResponse,
  type OpsServer,
  type OpsServerOptions,
} from './ops-server.ts';
export { onShutdownSignals, type Shutdown } from './shutdown.ts';
export { formatBytes, formatDuration } from './human.ts';
