/** Stable codes of the agent's errors, for logs and alerts. */
export const AgentErrorCode = {
  /** A setting in the environment cannot be used; the message names the variable. */
  ConfigInvalid: 'VOLBACK_AGENT_CONFIG_INVALID',
  /** The persisted host id cannot be read or is not a valid host id. */
  HostIdInvalid: 'VOLBACK_AGENT_HOST_ID_INVALID',
  /** The Docker Engine did not answer, or answered something the agent cannot use. */
  EngineUnavailable: 'VOLBACK_AGENT_ENGINE_UNAVAILABLE',
} as const;
/** One of {@link AgentErrorCode}. */
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

/** A setting that cannot be used. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = AgentErrorCode.ConfigInvalid;
  /** The environment variable at fault. */
  readonly variable: string;

  constructor(variable: string, message: string, options?: ErrorOptions) {
    super(`${variable}: ${message}`, options);
    this.variable = variable;
  }
}

/** The host id file exists but does not hold a usable id; the agent refuses to invent another. */
export class HostIdError extends Error {
  override readonly name = 'HostIdError';
  readonly code = AgentErrorCode.HostIdInvalid;
  readonly file: string;

  constructor(file: string, message: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options);
    this.file = file;
  }
}

/** The Docker Engine could not be reached or gave an unusable answer. */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
  readonly code = AgentErrorCode.EngineUnavailable;
}
