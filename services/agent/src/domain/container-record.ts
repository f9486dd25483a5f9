/** The container label that decides whether a snapshot records its env values (README). */
export const CONTAINERS_JSON_ENV_LABEL = 'volback.containers-json.env';

/** `include`: env as the engine reports it; `exclude`: the variables' names only. */
export type ContainersJsonEnv = 'include' | 'exclude';

/** The parts of a container's inspect that the decision reads and changes. */
interface InspectWithEnv {
  readonly Config?: {
    readonly Env?: readonly string[] | null;
    readonly Labels?: Readonly<Record<string, string>> | null;
  } | null;
}

/** A container's inspect as `.volback/containers.json` records it, and whether its env values were left out. */
export interface RecordedContainer<T> {
  readonly record: T;
  readonly envExcluded: boolean;
  /** Set when the label had a value that is neither `include` nor `exclude` (then excluded). */
  readonly warning?: string;
}

/**
 * The inspect a snapshot records of a container that used the volume: everything the engine
 * reports, but with `Config.Env` cut to the variables' names (`DB_PASSWORD=…` → `DB_PASSWORD`)
 * when the container's `volback.containers-json.env` label says `exclude`, or when it has no
 * such label and the agent's default (`VOLBACK_AGENT_CONTAINERS_JSON_ENV`) is `exclude`. A label
 * value that is neither excludes too: a typo must not publish a secret.
 */
export function recordedContainer<T extends InspectWithEnv>(
  inspect: T,
  byDefault: ContainersJsonEnv,
): RecordedContainer<T> {
  const raw = inspect.Config?.Labels?.[CONTAINERS_JSON_ENV_LABEL];
  const value = raw?.trim().toLowerCase();
  const known = value === 'include' || value === 'exclude';
  const choice = value === undefined ? byDefault : known ? value : 'exclude';
  const warning =
    value !== undefined && !known
      ? `label ${CONTAINERS_JSON_ENV_LABEL} is ${JSON.stringify(raw)}: expected include or exclude; env values left out`
      : undefined;
  const env = inspect.Config?.Env;
  if (choice === 'include' || !inspect.Config || !env) {
    return { record: inspect, envExcluded: choice === 'exclude', ...(warning ? { warning } : {}) };
  }
  const names = env.map((entry) => entry.split('=', 1)[0]!);
  return {
    record: { ...inspect, Config: { ...inspect.Config, Env: names } },
    envExcluded: true,
    ...(warning ? { warning } : {}),
  };
}
