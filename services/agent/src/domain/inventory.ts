/** What a Docker Engine holds, as the agent observed it: the input of discovery. */

/** A volume as the engine reports it. */
export interface ObservedVolume {
  readonly name: string;
  readonly driver: string;
  readonly driverOptions: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly scope: 'local' | 'global';
  /** Named by Docker itself (a container's `VOLUME` or `-v /path`), not by a person. */
  readonly anonymous: boolean;
  /** Where the data lives on the host, when the driver has a mountpoint. */
  readonly mountpoint?: string;
  /**
   * RFC 3339, as the engine reports it. Informational only: the local driver derives it from the
   * volume directory's ctime, which moves when a container first uses the volume or data is
   * written into it, so it does not tell a re-created volume apart from the same one.
   */
  readonly createdAt?: string;
}

/** One mount of a container (other mount types, such as named pipes, are not kept). */
export type ContainerMount =
  | {
      readonly type: 'volume';
      readonly volumeName: string;
      readonly destination: string;
      readonly readOnly: boolean;
    }
  | {
      readonly type: 'bind';
      readonly source: string;
      readonly destination: string;
      readonly readOnly: boolean;
    }
  | { readonly type: 'tmpfs'; readonly destination: string };

/** Docker's `State.Status` of a container. */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** The states Docker accepts, for the adapter to check what the engine sends. */
export const CONTAINER_STATES: readonly ContainerState[] = [
  'created',
  'running',
  'paused',
  'restarting',
  'removing',
  'exited',
  'dead',
];

/**
 * A container as the engine reports it. Deliberately without its environment, command or
 * anything else that may hold a secret: what is not here cannot leak into an event.
 */
export interface ObservedContainer {
  /** Full id, 64 hex digits. */
  readonly id: string;
  /** Without Docker's leading `/`. */
  readonly name: string;
  /** The image as the container was created from it (`Config.Image`). */
  readonly image: string;
  /** `repo@sha256:…` when the image has a registry digest. */
  readonly imageDigest?: string;
  /** `sha256:…` of the local image. */
  readonly imageId?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: ContainerState;
  /** Docker's `State.Running`: true while running, paused or restarting. */
  readonly running: boolean;
  /** Start of the current (or last) run; absent when the container never ran. */
  readonly startedAt?: string;
  /** End of the last run; absent when no run has ended. */
  readonly finishedAt?: string;
  /** Exit code of the last run, when it is not running. */
  readonly exitCode?: number;
  /** Sorted by destination (see {@link sortMounts}). */
  readonly mounts: readonly ContainerMount[];
  readonly createdAt?: string;
}

/** Everything an engine holds at one moment: volumes by name, containers by id. */
export interface HostInventory {
  readonly volumes: ReadonlyMap<string, ObservedVolume>;
  readonly containers: ReadonlyMap<string, ObservedContainer>;
  /**
   * Names of volumes the engine reported destroyed (a `volume destroy` event) since the previous
   * look. Docker volumes have no id, so this is the only sign that a volume present now under a
   * known name is a new one (`volume create` is no sign: moby emits it on every `docker create`
   * that names an existing volume).
   */
  readonly destroyedVolumes?: ReadonlySet<string>;
  /**
   * Runs of containers that volback itself stopped (a consistency `stop` for a backup or a
   * restore): by container id, the `startedAt` of each such run. The stop that ends one of these
   * runs is published with `byVolback`; any other stop is someone else's.
   */
  readonly stoppedByVolback?: ReadonlyMap<string, ReadonlySet<string>>;
}

/** An inventory from lists of volumes and containers (and the volumes destroyed since the last look). */
export function inventoryOf(
  volumes: Iterable<ObservedVolume>,
  containers: Iterable<ObservedContainer>,
  destroyedVolumes: Iterable<string> = [],
): HostInventory {
  const destroyed = new Set(destroyedVolumes);
  return {
    volumes: new Map([...volumes].map((v) => [v.name, v])),
    containers: new Map([...containers].map((c) => [c.id, c])),
    ...(destroyed.size > 0 ? { destroyedVolumes: destroyed } : {}),
  };
}

/** Labels Docker Compose puts on the containers it creates. */
export const COMPOSE_LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
} as const;

/** The Compose project and service of a container, from its labels (both must be present). */
export function composeOf(
  labels: Readonly<Record<string, string>>,
): { project: string; service: string } | undefined {
  const project = labels[COMPOSE_LABELS.project];
  const service = labels[COMPOSE_LABELS.service];
  return project && service ? { project, service } : undefined;
}

/** Label Docker ≥ 23 puts on anonymous volumes. */
export const ANONYMOUS_VOLUME_LABEL = 'com.docker.volume.anonymous';

/** Anonymous: labelled so by Docker ≥ 23, or named by Docker (64 hex digits) on older engines. */
export function isAnonymousVolume(name: string, labels: Readonly<Record<string, string>>): boolean {
  return ANONYMOUS_VOLUME_LABEL in labels || /^[0-9a-f]{64}$/.test(name);
}

/** Mounts in a stable order (by destination), so that the same container always compares equal. */
export function sortMounts(mounts: readonly ContainerMount[]): ContainerMount[] {
  return [...mounts].sort((a, b) =>
    a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0,
  );
}

/** True when one of the container's mounts is this volume. */
export function mountsVolume(container: ObservedContainer, volumeName: string): boolean {
  return container.mounts.some((m) => m.type === 'volume' && m.volumeName === volumeName);
}

/**
 * On a restore drill's scratch volume and containers (value: the drill id): the agent's discovery
 * leaves them out, so they are never announced, protected or backed up.
 */
export const DRILL_LABEL = 'io.volback.drill-id';
