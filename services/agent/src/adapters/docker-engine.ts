import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import Dockerode from 'dockerode';
import type { DockerConnection } from '../config.ts';
import type { EngineIdentity } from '../domain/host.ts';
import {
  CONTAINER_STATES,
  DRILL_LABEL,
  inventoryOf,
  isAnonymousVolume,
  sortMounts,
  type ContainerMount,
  type ContainerState,
  type HostInventory,
  type ObservedContainer,
  type ObservedVolume,
} from '../domain/inventory.ts';
import { EngineUnavailableError } from '../errors.ts';

/** The engine events that can change what discovery reports. */
export const WATCHED_EVENTS = {
  container: ['create', 'start', 'die', 'stop', 'destroy', 'rename', 'pause', 'unpause', 'restart', 'update'],
  volume: ['create', 'destroy', 'mount', 'unmount'],
} as const;

/** One event from the engine's event stream, reduced to what tells discovery where to look. */
export interface EngineEvent {
  readonly type: 'container' | 'volume';
  readonly action: string;
  /** Container id, or volume name. */
  readonly actor: string;
  /** The container of a volume mount or unmount. */
  readonly containerId?: string;
  /** Unix time in seconds, as the engine stamped it. */
  readonly time: number;
  /** The same in nanoseconds, when the engine sends it: tells a replayed event from a new one. */
  readonly timeNano?: number;
}

/** A subscription to the engine's events. */
export interface EngineWatch {
  /** Settles when the stream ends: resolves when stopped or closed, rejects on a stream error. */
  readonly ended: Promise<void>;
  stop(): void;
}

/** What an engine says about itself. */
export interface EngineInfo {
  readonly engine: EngineIdentity;
  /** The engine's host name (`docker info` Name). */
  readonly hostName: string;
}

// The fields read from the engine's answers; anything else (environment, command, …) is never read.
interface RawVolume {
  Name: string;
  Driver: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  Scope?: string;
}
interface RawMount {
  Type: string;
  Name?: string;
  Source?: string;
  Destination: string;
  RW: boolean;
}
interface RawInspect {
  Id: string;
  Name: string;
  Created?: string;
  Image?: string;
  State: { Status: string; Running: boolean; StartedAt?: string; FinishedAt?: string; ExitCode?: number };
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  Mounts?: RawMount[] | null;
  /** `--tmpfs` mounts are only here (values are mount options, not read). */
  HostConfig?: { Tmpfs?: Record<string, string> | null };
}
interface RawEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/** Docker writes `0001-01-01T00:00:00Z` for a time that never happened. */
function realTime(value: string | undefined): string | undefined {
  return value && !value.startsWith('0001-01-01') ? value : undefined;
}

function stripped<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** A volume from `GET /volumes`. */
export function toObservedVolume(raw: RawVolume): ObservedVolume {
  const labels = raw.Labels ?? {};
  return stripped({
    name: raw.Name,
    driver: raw.Driver,
    driverOptions: raw.Options ?? {},
    labels,
    scope: raw.Scope === 'global' ? 'global' : 'local',
    anonymous: isAnonymousVolume(raw.Name, labels),
    mountpoint: raw.Mountpoint || undefined,
    createdAt: raw.CreatedAt || undefined,
  } satisfies ObservedVolume);
}

function toMount(raw: RawMount): ContainerMount | undefined {
  const readOnly = !raw.RW;
  if (raw.Type === 'volume' && raw.Name) {
    return { type: 'volume', volumeName: raw.Name, destination: raw.Destination, readOnly };
  }
  if (raw.Type === 'bind' && raw.Source) {
    return { type: 'bind', source: raw.Source, destination: raw.Destination, readOnly };
  }
  if (raw.Type === 'tmpfs') return { type: 'tmpfs', destination: raw.Destination };
  return undefined;
}

function mountsOf(raw: RawInspect): ContainerMount[] {
  const mounts = (raw.Mounts ?? []).map(toMount).filter((m) => m !== undefined);
  for (const destination of Object.keys(raw.HostConfig?.Tmpfs ?? {})) {
    if (!mounts.some((m) => m.destination === destination)) mounts.push({ type: 'tmpfs', destination });
  }
  return mounts;
}

/** A container from `GET /containers/<id>/json`; its environment is not read. */
export function toObservedContainer(raw: RawInspect, imageDigest: string | undefined): ObservedContainer {
  const status = raw.State.Status as ContainerState;
  const state = CONTAINER_STATES.includes(status) ? status : raw.State.Running ? 'running' : 'exited';
  return stripped({
    id: raw.Id,
    name: raw.Name.replace(/^\//, ''),
    image: raw.Config?.Image || raw.Image || 'unknown',
    imageDigest,
    imageId: raw.Image || undefined,
    labels: raw.Config?.Labels ?? {},
    state,
    running: raw.State.Running,
    startedAt: realTime(raw.State.StartedAt),
    finishedAt: realTime(raw.State.FinishedAt),
    exitCode: raw.State.Running ? undefined : raw.State.ExitCode,
    mounts: sortMounts(mountsOf(raw)),
    createdAt: realTime(raw.Created),
  } satisfies ObservedContainer);
}

/** `postgres` of `postgres:16`, `registry:5000/team/app` of `registry:5000/team/app:1.2@sha256:…`. */
function repositoryOf(image: string): string {
  const withoutDigest = image.split('@')[0]!;
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The agent's door to its Docker Engine (dockerode): what the engine is, what it holds, and what
 * happens on it. Container inspections are cached and redone only for containers the engine's
 * events name, or whose listed state or name changed; {@link forget} drops the cache.
 */
export class DockerEngineClient {
  readonly #docker: Dockerode;
  readonly #local: boolean;
  readonly #inspected = new Map<string, { key: string; container: ObservedContainer }>();
  readonly #digests = new Map<string, string | undefined>();

  constructor(docker: Dockerode, options: { local: boolean }) {
    this.#docker = docker;
    this.#local = options.local;
  }

  /** The engine's API client, for the volume and container operations of backups and restores. */
  get docker(): Dockerode {
    return this.#docker;
  }

  /** True when the engine runs on this machine (reached through a unix socket). */
  get local(): boolean {
    return this.#local;
  }

  /** A client for the configured engine (reads the TLS files of a `tcp://` engine). */
  static async connect(connection: DockerConnection): Promise<DockerEngineClient> {
    if (connection.kind === 'unix') {
      return new DockerEngineClient(new Dockerode({ socketPath: connection.socketPath }), { local: true });
    }
    const tls = connection.tls
      ? {
          protocol: 'https' as const,
          ca: await readFile(connection.tls.caFile),
          cert: await readFile(connection.tls.certFile),
          key: await readFile(connection.tls.keyFile),
        }
      : { protocol: 'http' as const };
    return new DockerEngineClient(new Dockerode({ host: connection.host, port: connection.port, ...tls }), {
      local: false,
    });
  }

  /** Resolves when the engine answers `_ping`. */
  async ping(signal?: AbortSignal): Promise<void> {
    try {
      // dockerode passes `abortSignal` on to the request; its types do not declare the option.
      const ping = this.#docker.ping.bind(this.#docker) as unknown as (opts: object) => Promise<unknown>;
      await ping(signal ? { abortSignal: signal } : {});
    } catch (cause) {
      throw new EngineUnavailableError(`the Docker Engine does not answer: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  /** The engine's identity (`docker info` and `docker version`). */
  async info(): Promise<EngineInfo> {
    const [info, version] = await Promise.all([this.#docker.info(), this.#docker.version()]);
    const rootDir: string | undefined = info.DockerRootDir;
    return {
      hostName: String(info.Name || 'unknown'),
      engine: stripped({
        id: String(info.ID),
        version: String(info.ServerVersion),
        apiVersion: String(version.ApiVersion),
        os: String(info.OperatingSystem ?? ''),
        arch: String(info.Architecture ?? ''),
        storageDriver: info.Driver ? String(info.Driver) : undefined,
        // Only an engine on this machine has its volumes where the agent can read them.
        volumesRoot: this.#local && rootDir ? posix.join(rootDir, 'volumes') : undefined,
      }),
    };
  }

  /** Drops cached inspections: of these containers, or of all. */
  forget(containerIds?: Iterable<string>): void {
    if (!containerIds) {
      this.#inspected.clear();
      this.#digests.clear();
      return;
    }
    for (const id of containerIds) this.#inspected.delete(id);
  }

  /** Every volume and container the engine holds now. */
  async inventory(): Promise<HostInventory> {
    const [volumeList, summaries] = await Promise.all([
      this.#docker.listVolumes() as Promise<{ Volumes: RawVolume[] | null }>,
      this.#docker.listContainers({ all: true }),
    ]);
    // A drill's scratch volume and containers are the agent's own, not the host's: left out.
    const volumes = (volumeList.Volumes ?? []).map(toObservedVolume).filter((v) => !v.labels[DRILL_LABEL]);
    const listed = new Set(summaries.map((s) => s.Id));
    for (const id of this.#inspected.keys()) if (!listed.has(id)) this.#inspected.delete(id);
    const containers = await mapConcurrently(summaries, 8, async (summary) => {
      const key = `${summary.State}\n${summary.Names.join(',')}`;
      const cached = this.#inspected.get(summary.Id);
      if (cached?.key === key) return cached.container;
      const container = await this.#inspect(summary.Id);
      if (container) this.#inspected.set(summary.Id, { key, container });
      return container;
    });
    return inventoryOf(
      volumes,
      containers.filter((c): c is ObservedContainer => c !== undefined && !c.labels[DRILL_LABEL]),
    );
  }

  async #inspect(id: string): Promise<ObservedContainer | undefined> {
    let raw: RawInspect;
    try {
      raw = (await this.#docker.getContainer(id).inspect()) as unknown as RawInspect;
    } catch (error) {
      if (isNotFound(error)) return undefined; // removed since it was listed
      throw error;
    }
    return toObservedContainer(raw, await this.#imageDigest(raw));
  }

  async #imageDigest(raw: RawInspect): Promise<string | undefined> {
    const imageId = raw.Image;
    if (!imageId) return undefined;
    if (this.#digests.has(imageId)) return this.#digests.get(imageId);
    let digests: string[] = [];
    try {
      digests = (await this.#docker.getImage(imageId).inspect()).RepoDigests ?? [];
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const repository = raw.Config?.Image ? repositoryOf(raw.Config.Image) : undefined;
    const digest = digests.find((d) => repositoryOf(d) === repository) ?? digests[0];
    this.#digests.set(imageId, digest);
    return digest;
  }

  /**
   * Subscribes to the engine's volume and container events (from `since`, unix seconds, to
   * catch up on what happened while the agent was not listening). Resolves once the engine
   * has accepted the subscription, so a listing made afterwards misses nothing.
   */
  async watch(options: { since?: number; onEvent: (event: EngineEvent) => void }): Promise<EngineWatch> {
    const abort = new AbortController();
    const stream = (await this.#docker.getEvents({
      ...(options.since !== undefined ? { since: options.since } : {}),
      filters: { type: ['container', 'volume'], event: [...new Set(Object.values(WATCHED_EVENTS).flat())] },
      abortSignal: abort.signal,
    } as Dockerode.GetEventsOptions)) as NodeJS.ReadableStream & { destroy?: () => void };
    const ended = new Promise<void>((resolve, reject) => {
      let buffered = '';
      stream.on('data', (chunk: Buffer | string) => {
        buffered += chunk.toString();
        for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          const event = line ? parseEngineEvent(line) : undefined;
          if (event) options.onEvent(event);
        }
      });
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
      stream.once('error', (error: Error) => (abort.signal.aborted ? resolve() : reject(error)));
    });
    return {
      ended,
      stop() {
        abort.abort();
        stream.destroy?.();
      },
    };
  }
}

/** An engine event line, or undefined for anything discovery does not watch. */
export function parseEngineEvent(line: string): EngineEvent | undefined {
  let raw: RawEvent;
  try {
    raw = JSON.parse(line) as RawEvent;
  } catch {
    return undefined;
  }
  const type = raw.Type;
  const actor = raw.Actor?.ID;
  if ((type !== 'container' && type !== 'volume') || !actor || !raw.Action) return undefined;
  // Actions may carry a suffix (`exec_start: sh -c …`, `health_status: healthy`); keep only the verb.
  const action = raw.Action.split(':')[0]!.trim();
  const containerId = type === 'volume' ? raw.Actor?.Attributes?.['container'] : undefined;
  return {
    type,
    action,
    actor,
    ...(containerId ? { containerId } : {}),
    time: raw.time ?? 0,
    ...(typeof raw.timeNano === 'number' ? { timeNano: raw.timeNano } : {}),
  };
}
