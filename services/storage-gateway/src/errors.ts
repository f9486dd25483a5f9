/** Stable codes of the gateway process's own errors (the data path's are in @volback/data-path). */
export const GatewayErrorCode = {
  /** A setting in the environment cannot be used; the message names the variable. */
  ConfigInvalid: 'VOLBACK_GATEWAY_CONFIG_INVALID',
} as const;
/** One of {@link GatewayErrorCode}. */
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

/** A setting that cannot be used; the message names the variable and never repeats a secret. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = GatewayErrorCode.ConfigInvalid;
  /** The environment variable at fault. */
  readonly variable: string;

  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options);
    this.variable = variable;
  }
}
