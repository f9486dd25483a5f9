/** Stable codes of the agent's errors, for logs and alerts. */
export const AgentErrorCode = {
  /** A setting in the environment cannot be used; the message names the variable. */
  ConfigInvalid: 'VOLBACK_AGENT_CONFIG_INVALID',
  /** The persisted host id cannot be read or is not a valid host id. */
  HostIdInvalid: 'VOLBACK_AGENT_HOST_ID_INVALID',
  /** The Docker Engine did not answer, or answered something the agent cannot use. */
  EngineUnavailable: 'VOLBACK_AGENT_ENGINE_UNAVAILABLE',
  /** The volume named does not exist on the engine. */
  VolumeNotFound: 'VOLBACK_AGENT_VOLUME_NOT_FOUND',
  /** A volume was to be created under a name that is taken. */
  VolumeExists: 'VOLBACK_AGENT_VOLUME_EXISTS',
  /** The engine refuses to remove a volume a container still uses. */
  VolumeInUse: 'VOLBACK_AGENT_VOLUME_IN_USE',
  /** The image of the helper containers (`VOLBACK_HELPER_IMAGE`) is not on the engine. */
  HelperImageMissing: 'VOLBACK_AGENT_HELPER_IMAGE_MISSING',
  /** Reading or writing a volume through the engine's archive API failed. */
  ArchiveFailed: 'VOLBACK_AGENT_ARCHIVE_FAILED',
  /** A tar archive to be written into a volume is malformed, or an entry could land outside it. */
  ArchiveInvalid: 'VOLBACK_AGENT_ARCHIVE_INVALID',
  /** A `volback.*` consistency label on a container has a value that cannot be used. */
  ConsistencyLabelInvalid: 'VOLBACK_AGENT_CONSISTENCY_LABEL_INVALID',
  /** A container could not be stopped or paused (or its hook container is gone) for a backup. */
  QuiesceFailed: 'VOLBACK_AGENT_QUIESCE_FAILED',
  /** A consistency hook exited with a non-zero status or ran out of time (code shared with events). */
  HookFailed: 'VOLBACK_HOOK_FAILED',
  /**
   * A hook sent with a command names a container that does not mount the volume, or one that has
   * not opted in to such hooks (label `volback.hooks.allow`, `VOLBACK_AGENT_HOOK_CONTAINERS`).
   */
  HookNotAllowed: 'VOLBACK_AGENT_HOOK_NOT_ALLOWED',
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

/** The volume does not exist on the engine. */
export class VolumeNotFoundError extends Error {
  override readonly name = 'VolumeNotFoundError';
  readonly code = AgentErrorCode.VolumeNotFound;
  readonly volumeName: string;

  constructor(volumeName: string, options?: ErrorOptions) {
    super(`volume ${JSON.stringify(volumeName)} does not exist`, options);
    this.volumeName = volumeName;
  }
}

/** A volume of that name exists already; nothing was created. */
export class VolumeExistsError extends Error {
  override readonly name = 'VolumeExistsError';
  readonly code = AgentErrorCode.VolumeExists;
  readonly volumeName: string;

  constructor(volumeName: string, options?: ErrorOptions) {
    super(`volume ${JSON.stringify(volumeName)} exists already`, options);
    this.volumeName = volumeName;
  }
}

/** The engine refused to remove a volume because a container (running or not) uses it. */
export class VolumeInUseError extends Error {
  override readonly name = 'VolumeInUseError';
  readonly code = AgentErrorCode.VolumeInUse;
  readonly volumeName: string;

  constructor(volumeName: string, message: string, options?: ErrorOptions) {
    super(`volume ${JSON.stringify(volumeName)} is in use: ${message}`, options);
    this.volumeName = volumeName;
  }
}

/** The helper image is not on the engine; the agent does not pull it. */
export class HelperImageMissingError extends Error {
  override readonly name = 'HelperImageMissingError';
  readonly code = AgentErrorCode.HelperImageMissing;
  readonly image: string;

  constructor(image: string, options?: ErrorOptions) {
    super(
      `the helper image ${JSON.stringify(image)} is not on the engine: pull it there or set VOLBACK_HELPER_IMAGE`,
      options,
    );
    this.image = image;
  }
}

/** The engine's archive API failed to read or write a volume. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  readonly code = AgentErrorCode.ArchiveFailed;
  readonly volumeName: string;

  constructor(volumeName: string, message: string, options?: ErrorOptions) {
    super(`volume ${JSON.stringify(volumeName)}: ${message}`, options);
    this.volumeName = volumeName;
  }
}

/**
 * A tar archive to be written into a volume is malformed, or one of its entries could land outside
 * the volume (absolute, `..`, through a symlink) or is of a kind volback does not write.
 */
export class InvalidArchiveError extends Error {
  override readonly name = 'InvalidArchiveError';
  readonly code = AgentErrorCode.ArchiveInvalid;
  /** The entry at fault, as the archive names it (its bytes read as latin1); absent for the whole archive. */
  readonly entry: string | undefined;

  constructor(why: string, entry?: string, options?: ErrorOptions) {
    super(
      entry === undefined
        ? `invalid tar archive: ${why}`
        : `refusing tar entry ${JSON.stringify(entry)}: ${why}`,
      options,
    );
    this.entry = entry;
  }
}

/** A consistency label that cannot be used; the backup fails with this reason. */
export class ConsistencyLabelError extends Error {
  override readonly name = 'ConsistencyLabelError';
  readonly code = AgentErrorCode.ConsistencyLabelInvalid;
  readonly container: string;
  readonly label: string;

  constructor(container: string, label: string, why: string, options?: ErrorOptions) {
    super(`container ${container}: label ${label} ${why}`, options);
    this.container = container;
    this.label = label;
  }
}

/** Stopping or pausing a container for a backup failed; what was done before was undone. */
export class QuiesceError extends Error {
  override readonly name = 'QuiesceError';
  readonly code = AgentErrorCode.QuiesceFailed;
  readonly container: string;

  constructor(container: string, message: string, options?: ErrorOptions) {
    super(`container ${container}: ${message}`, options);
    this.container = container;
  }
}

/** Most bytes of a failed hook's stderr its error message (and so its `BackupFailed` event) carries. */
export const HOOK_STDERR_TAIL_LIMIT = 200;

/**
 * A consistency hook failed: non-zero exit, no exit within its timeout, or it could not run. The
 * message carries the exit status and at most the last {@link HOOK_STDERR_TAIL_LIMIT} bytes of its
 * stderr, quoted and labelled; its stdout never (a dump may write data there).
 */
export class HookFailedError extends Error {
  override readonly name = 'HookFailedError';
  readonly code = AgentErrorCode.HookFailed;
  readonly phase: 'pre' | 'post';
  readonly container: string;
  readonly command: string;
  /** Exit status; absent when it timed out or could not be started. */
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
  /** Its stdout and stderr interleaved, the last 8 KiB at most; kept out of the message. */
  readonly output: string;

  constructor(
    details: {
      phase: 'pre' | 'post';
      container: string;
      command: string;
      exitCode?: number;
      timedOut?: boolean;
      output: string;
      /** The end of its stderr; only its last {@link HOOK_STDERR_TAIL_LIMIT} bytes are used. */
      stderr?: string;
      why: string;
    },
    options?: ErrorOptions,
  ) {
    const command = details.command.length > 200 ? `${details.command.slice(0, 200)}…` : details.command;
    const stderr = Buffer.from(details.stderr?.trim() ?? '', 'utf8');
    const tail = stderr.subarray(Math.max(0, stderr.length - HOOK_STDERR_TAIL_LIMIT)).toString('utf8');
    super(
      `${details.phase} hook \`${command}\` in container ${details.container} ${details.why}` +
        (tail ? `; stderr (last ${HOOK_STDERR_TAIL_LIMIT} bytes at most): ${JSON.stringify(tail)}` : ''),
      options,
    );
    this.phase = details.phase;
    this.container = details.container;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.timedOut = details.timedOut ?? false;
    this.output = details.output;
  }
}

/**
 * A hook that may not run where it was asked to: nothing ran. Said without the hook's command,
 * which came from whoever sent it.
 */
export class HookNotAllowedError extends Error {
  override readonly name = 'HookNotAllowedError';
  readonly code = AgentErrorCode.HookNotAllowed;
  readonly container: string;

  constructor(container: string, why: string, options?: ErrorOptions) {
    super(`hook refused, nothing ran: container ${container} ${why}`, options);
    this.container = container;
  }
}
