import { initialState, type MaintenanceOperation, type SchedulerState } from './state.ts';

/**
 * The format of a state snapshot. Bump it whenever `SchedulerState` or what `evolve` makes of an
 * event changes: a snapshot of another format is ignored (the state is then replayed from the log).
 */
export const STATE_SNAPSHOT_FORMAT = 2;

/** The scheduler's state at a point of the event log, as it is stored. */
export interface StateSnapshot {
  readonly format: number;
  /** The event stream's creation time (`StreamInfo.created`): a snapshot of a replaced stream is useless. */
  readonly streamCreated: string;
  /** The stream sequence of the last event the state reflects. */
  readonly sequence: number;
  readonly state: SerializedState;
}

const MAPS = [
  'hosts',
  'volumes',
  'containers',
  'policies',
  'rejections',
  'inFlight',
  // Not in format 1: a scheduler started from a snapshot forgot the drills in flight.
  'drillsInFlight',
  'repositories',
  'pendingOperations',
] as const;
type MapName = (typeof MAPS)[number];

/** The state with its maps as entry lists (JSON). */
export type SerializedState = { [K in MapName]: [string, unknown][] } & { eventCount: number };

/** The state as plain JSON; undefined fields are dropped, as `evolve` never relies on them being set. */
export function serializeState(state: SchedulerState): SerializedState {
  const out = { eventCount: state.eventCount } as SerializedState;
  for (const name of MAPS) out[name] = [...(state[name] as Map<string, unknown>).entries()];
  return out;
}

/** Why a snapshot cannot be used. */
export class SnapshotUnusableError extends Error {
  override readonly name = 'SnapshotUnusableError';
}

/**
 * The state a snapshot holds. Throws {@link SnapshotUnusableError} for another format or a shape
 * that is not a serialized state. A pending maintenance operation is one object with the volume's
 * or repository's `last…` field that names it (`settle` completes both at once), as `evolve` made it.
 */
export function restoreState(snapshot: unknown): {
  state: SchedulerState;
  sequence: number;
  streamCreated: string;
} {
  const s = snapshot as Partial<StateSnapshot> | null;
  if (typeof s !== 'object' || s === null) throw new SnapshotUnusableError('not an object');
  if (s.format !== STATE_SNAPSHOT_FORMAT) {
    throw new SnapshotUnusableError(
      `format ${String(s.format)}, this scheduler reads ${STATE_SNAPSHOT_FORMAT}`,
    );
  }
  if (!Number.isSafeInteger(s.sequence) || (s.sequence ?? -1) < 0 || typeof s.streamCreated !== 'string') {
    throw new SnapshotUnusableError('no stream sequence or creation time');
  }
  const serialized = s.state as Partial<SerializedState> | undefined;
  if (typeof serialized !== 'object' || serialized === null || !Number.isSafeInteger(serialized.eventCount)) {
    throw new SnapshotUnusableError('no state');
  }
  const state = initialState();
  state.eventCount = serialized.eventCount!;
  for (const name of MAPS) {
    const entries = serialized[name];
    const valid =
      Array.isArray(entries) &&
      entries.every(
        (e) =>
          Array.isArray(e) &&
          e.length === 2 &&
          typeof e[0] === 'string' &&
          // Rejections are strings (`label\0value`); every other map holds objects. (Format 1
          // checked objects only: a state with a label rejection was replayed at every start.)
          (name === 'rejections' ? typeof e[1] === 'string' : typeof e[1] === 'object' && e[1] !== null),
      );
    if (!valid) throw new SnapshotUnusableError(`${name} is not a list of entries`);
    const map = state[name] as Map<string, unknown>;
    for (const [key, value] of entries) map.set(key, value);
  }
  const shared = (op: MaintenanceOperation | undefined) =>
    op && state.pendingOperations.get(op.operationId)?.requestedAt === op.requestedAt
      ? state.pendingOperations.get(op.operationId)
      : op;
  for (const volume of state.volumes.values()) {
    const op = shared(volume.lastForget);
    if (op) volume.lastForget = op;
  }
  for (const repo of state.repositories.values()) {
    const prune = shared(repo.lastPrune);
    if (prune) repo.lastPrune = prune;
    const check = shared(repo.lastCheck);
    if (check) repo.lastCheck = check;
  }
  return { state, sequence: s.sequence!, streamCreated: s.streamCreated };
}
