import { DataPathError } from '@volback/data-path';
import { RepositoryError } from '@volback/repository';

/**
 * Stable codes of a backup's or restore's failure, as they appear in `…Failed` events, besides the
 * codes of the adapters' errors (errors.ts), which are passed on as they are.
 */
export const WorkErrorCode = {
  /** A restore into a new volume whose name is taken. */
  VolumeExists: 'VOLBACK_VOLUME_EXISTS',
  /** A restore into a volume a running container uses, without `stopContainers`. */
  VolumeInUse: 'VOLBACK_VOLUME_IN_USE',
  /** `method: direct` was asked for, but this agent cannot see the volume's files. */
  DirectReadUnavailable: 'VOLBACK_DIRECT_READ_UNAVAILABLE',
  /** The snapshot to restore does not exist, or the path is not in it. */
  SnapshotNotFound: 'VOLBACK_SNAPSHOT_NOT_FOUND',
  /** The target kind is not written by agents. */
  TargetUnsupported: 'VOLBACK_RESTORE_TARGET_UNSUPPORTED',
  /** No gateway answered, or one refused; the reason says which. */
  GatewayUnavailable: 'VOLBACK_GATEWAY_UNAVAILABLE',
  /** The gateways could not make a snapshot of what was sent. */
  CommitFailed: 'VOLBACK_COMMIT_FAILED',
  /** The Docker Engine refused or failed an operation. */
  EngineFailed: 'VOLBACK_ENGINE_FAILED',
  /** Some entries could not be restored; they are named. */
  RestoreIncomplete: 'VOLBACK_RESTORE_INCOMPLETE',
  /** A backup set with no volume on this host (no container or volume carries its labels). */
  SetNotFound: 'VOLBACK_SET_NOT_FOUND',
  /** A member volume of a set restore failed; the others were not restored. */
  SetMemberFailed: 'VOLBACK_SET_MEMBER_FAILED',
  /** A recorded container could not be created again (its image is missing, its name is taken…). */
  ContainerNotRecreated: 'VOLBACK_CONTAINER_NOT_RECREATED',
  /** Anything else; the reason holds the message. */
  Internal: 'VOLBACK_AGENT_INTERNAL',
} as const;
/** One of {@link WorkErrorCode}. */
export type WorkErrorCode = (typeof WorkErrorCode)[keyof typeof WorkErrorCode];

/** A backup or restore that cannot go on, with the code its failure event carries. */
export class WorkError extends Error {
  override readonly name = 'WorkError';
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Maps any failure to a code and a message safe for an event (no stack, no secrets). */
export function workErrorOf(error: unknown): { code: string; message: string } {
  if (error instanceof WorkError) return { code: error.code, message: error.message };
  if (error instanceof DataPathError) {
    return {
      code: /^[A-Z][A-Z0-9_]{2,63}$/.test(error.code) ? error.code : WorkErrorCode.GatewayUnavailable,
      message: `data path: ${error.message}`,
    };
  }
  if (error instanceof RepositoryError) return { code: error.code, message: error.message };
  const coded = error as { code?: unknown; name?: string; message?: string };
  if (typeof coded.code === 'string' && /^[A-Z][A-Z0-9_]{2,63}$/.test(coded.code)) {
    return { code: coded.code, message: coded.message ?? String(error) };
  }
  if (typeof (error as { statusCode?: unknown }).statusCode === 'number') {
    return { code: WorkErrorCode.EngineFailed, message: `docker engine: ${coded.message ?? String(error)}` };
  }
  return { code: WorkErrorCode.Internal, message: coded.message ?? String(error) };
}
