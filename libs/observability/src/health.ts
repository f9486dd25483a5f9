import { stripUrlCredentials } from './redaction.ts';

/** What one run of a {@link HealthCheck} found. */
export interface HealthCheckResult {
  /** True when the dependency is usable. */
  readonly ok: boolean;
  /** A short, operator-facing explanation; shown on the probe endpoints, so never a secret. */
  readonly detail?: string;
}

/**
 * One condition a process needs, e.g. "NATS connected" or "streams present". Libraries implement
 * it; the ops server runs it on `/readyz` (readiness) or `/healthz` (liveness). A check should be
 * cheap and answer within the probe timeout; throwing counts as a failure with the error's message.
 */
export interface HealthCheck {
  /** Stable, unique name shown to operators, kebab-case (`nats-connected`). */
  readonly name: string;
  /** Looks at the dependency once; resolves `{ ok: false, detail }` or throws when it is not usable. */
  check(): Promise<HealthCheckResult>;
}

/** The outcome of one check within a {@link HealthReport}. */
export interface CheckStatus {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
  /** Time the check took, or the timeout when it did not answer. */
  readonly durationMs: number;
}

/** The outcome of running a set of checks: ok when every one of them is. */
export interface HealthReport {
  readonly ok: boolean;
  readonly checks: readonly CheckStatus[];
  /** Names of the checks that failed, in the order they were given. */
  readonly failed: readonly string[];
}

/** Longest detail a probe endpoint shows; the logs keep the whole story. */
export const MAX_DETAIL_LENGTH = 200;

/** Error raised when two checks of one set share a name, which would make reports ambiguous. */
export class DuplicateHealthCheckError extends Error {
  override readonly name = 'DuplicateHealthCheckError';
  readonly code = 'VOLBACK_DUPLICATE_HEALTH_CHECK';
}

/** Makes a detail safe to show: first line only, no URL credentials, bounded length, never a stack. */
export function summarizeDetail(detail: string): string {
  const firstLine = stripUrlCredentials(detail.trim().split('\n', 1)[0] ?? '').trim();
  return firstLine.length > MAX_DETAIL_LENGTH ? `${firstLine.slice(0, MAX_DETAIL_LENGTH - 1)}…` : firstLine;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function toResult(value: unknown): HealthCheckResult {
  if (typeof value !== 'object' || value === null || typeof (value as HealthCheckResult).ok !== 'boolean')
    return { ok: false, detail: 'check returned no result' };
  const { ok, detail } = value as HealthCheckResult;
  return detail === undefined ? { ok } : { ok, detail: summarizeDetail(String(detail)) };
}

/** Runs a set of checks concurrently, each bounded by a timeout; see {@link createHealthProbe}. */
export interface HealthProbe {
  /** Runs every check once and reports; never rejects. */
  run(): Promise<HealthReport>;
  /** Adds a check to the set, for dependencies that come up after the probe was made. */
  add(check: HealthCheck): void;
}

/**
 * Creates a probe over `checks`. Each run starts every check at once and waits at most `timeoutMs`
 * for each; a check that times out or throws fails with a one-line reason. A check still running
 * from an earlier probe is awaited again rather than started twice, so a hung dependency does not
 * pile up calls at every poll.
 */
export function createHealthProbe(checks: readonly HealthCheck[], timeoutMs: number): HealthProbe {
  const all: HealthCheck[] = [];
  const inFlight = new Map<HealthCheck, Promise<HealthCheckResult>>();

  const add = (check: HealthCheck): void => {
    if (all.some((c) => c.name === check.name))
      throw new DuplicateHealthCheckError(
        `a health check named ${JSON.stringify(check.name)} already exists`,
      );
    all.push(check);
  };
  for (const check of checks) add(check);

  const start = (check: HealthCheck): Promise<HealthCheckResult> => {
    let running = inFlight.get(check);
    if (!running) {
      // The async wrapper turns a synchronous throw into a rejection.
      running = (async () => check.check())().then(toResult, (error: unknown) => ({
        ok: false,
        detail: summarizeDetail(describeError(error)) || 'check failed',
      }));
      inFlight.set(check, running);
      void running.finally(() => inFlight.delete(check));
    }
    return running;
  };

  const runOne = async (check: HealthCheck): Promise<CheckStatus> => {
    const began = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<HealthCheckResult>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
    });
    try {
      const result = await Promise.race([start(check), timedOut]);
      const durationMs = Math.round(performance.now() - began);
      return { name: check.name, ...result, durationMs };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    add,
    async run() {
      const statuses = await Promise.all(all.map(runOne));
      const failed = statuses.filter((s) => !s.ok).map((s) => s.name);
      return { ok: failed.length === 0, checks: statuses, failed };
    },
  };
}

/** A process's start-up as a readiness check: failing, naming the step it is at, until done. */
export interface StartupCheck extends HealthCheck {
  /** What start-up is waiting for now (shown by /readyz). */
  step(what: string): void;
  done(): void;
}

/** A {@link StartupCheck} named `started`, at its first step. */
export function startupCheck(firstStep: string): StartupCheck {
  let step: string | undefined = firstStep;
  return {
    name: 'started',
    check: async () => (step === undefined ? { ok: true } : { ok: false, detail: step }),
    step: (what) => void (step = what),
    done: () => void (step = undefined),
  };
}
