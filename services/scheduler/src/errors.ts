/** Stable codes of the scheduler's own failures (the domain's are on its error classes). */
export const SchedulerErrorCode = {
  /** An environment variable has a value the scheduler cannot use. */
  ConfigInvalid: 'VOLBACK_SCHEDULER_CONFIG_INVALID',
} as const;
/** One of {@link SchedulerErrorCode}. */
export type SchedulerErrorCode = (typeof SchedulerErrorCode)[keyof typeof SchedulerErrorCode];

/** A configuration value is unusable; `variable` names the environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = SchedulerErrorCode.ConfigInvalid;
  readonly variable: string;

  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options);
    this.variable = variable;
  }
}
