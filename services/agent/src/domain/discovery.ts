import {
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
  VolumeChanged,
  VolumeDiscovered,
  VolumeRemoved,
} from '@volback/contracts';
import type { DiscoveryEvent } from './discovery-events.ts';
import { canonicalJson, deterministicEventId } from './event-id.ts';
import {
  composeOf,
  type ContainerMount,
  type HostInventory,
  type ObservedContainer,
  type ObservedVolume,
} from './inventory.ts';
import {
  applyEvent,
  draftOf,
  type ContainerIdentity,
  type PublishedView,
  type ViewDraft,
} from './published-view.ts';

/** An event before its id is derived. */
type Undecided<E> = E extends DiscoveryEvent ? Omit<E, 'id'> : never;

/**
 * The field of each event that says when the agent noticed it. It is left out of the event id:
 * noticing the same fact again later is the same fact. Times that Docker reports (a container's
 * `startedAt`) are part of the fact and stay in.
 */
const OBSERVATION_TIME: Readonly<Record<DiscoveryEvent['type'], string | undefined>> = {
  [VolumeDiscovered.type]: 'discoveredAt',
  [VolumeChanged.type]: 'changedAt',
  [VolumeRemoved.type]: 'removedAt',
  [ContainerObserved.type]: 'observedAt',
  [ContainerStarted.type]: undefined,
  [ContainerStopped.type]: undefined,
  [ContainerRemoved.type]: 'removedAt',
};

/** The aggregate an event belongs to: its kind and its key within the host. */
function aggregateOf(event: Undecided<DiscoveryEvent>): ['volume' | 'container', string] {
  return 'volumeName' in event.data
    ? ['volume', event.data.volumeName]
    : ['container', event.data.containerId];
}

/**
 * The id of a discovery event: host, aggregate, the aggregate's version (how many discovery
 * events its subject already holds) and what the event says, without when it was noticed. The
 * version tells apart a fact that recurs (renamed back, re-created with the same labels); the
 * content tells apart two different decisions taken from the same version.
 */
export function discoveryEventId(hostId: string, version: number, event: Undecided<DiscoveryEvent>): string {
  const [aggregate, key] = aggregateOf(event);
  const timeField = OBSERVATION_TIME[event.type];
  const fact = Object.fromEntries(Object.entries(event.data).filter(([field]) => field !== timeField));
  return deterministicEventId([hostId, aggregate, key, version, event.type, fact]);
}

function byKey<T>(map: ReadonlyMap<string, T>): [string, T][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * What `VolumeDiscovered` announces about a volume, but its labels (they have an event of their
 * own) and its `createdAt` (it moves on the same volume: see {@link ObservedVolume.createdAt}).
 */
function configurationOf(volume: ObservedVolume): string {
  return canonicalJson({ ...volume, labels: undefined, createdAt: undefined });
}

/**
 * A volume of the same name that is not the same volume: the engine said it was destroyed since
 * the last look, or its driver changed (which only a new volume can do).
 */
function isRecreated(known: ObservedVolume, now: ObservedVolume, current: HostInventory): boolean {
  return known.driver !== now.driver || (current.destroyedVolumes?.has(now.name) ?? false);
}

/** The part of an observed container that `ContainerObserved` announces (not its run state). */
export function identityOf(container: ObservedContainer): ContainerIdentity {
  const { id, name, image, imageDigest, imageId, labels, mounts, createdAt } = container;
  return { id, name, image, imageDigest, imageId, labels, mounts, createdAt };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function time(iso: string | undefined): number {
  return iso === undefined ? Number.NaN : Date.parse(iso);
}

/** Records decisions against a draft of the view, so each event's id sees the version before it. */
class Decisions {
  readonly events: DiscoveryEvent[] = [];
  readonly draft: ViewDraft;

  constructor(view: PublishedView) {
    this.draft = draftOf(view);
  }

  emit(undecided: Undecided<DiscoveryEvent>): void {
    const [aggregate, key] = aggregateOf(undecided);
    const version =
      (aggregate === 'volume'
        ? this.draft.volumes.get(key)?.version
        : this.draft.containers.get(key)?.version) ?? 0;
    const event = {
      ...undecided,
      id: discoveryEventId(this.draft.hostId, version, undecided),
    } as DiscoveryEvent;
    applyEvent(this.draft, event);
    this.events.push(event);
  }
}

function mountsForEvent(mounts: readonly ContainerMount[]): ContainerMount[] {
  return mounts.map((m) => ({ ...m }));
}

/**
 * What to publish so that the event log says what the engine holds: compares what was published
 * about a host (`previous`) with what its engine holds now (`current`). Nothing changed, nothing
 * to publish; the same difference always gives the same events with the same ids. `now` is when
 * the engine was looked at.
 *
 * Order: volumes appearing, containers (observed, started, stopped), volumes mounted and
 * unmounted, containers removed, volumes removed. A container run that began and ended between
 * two looks is not seen: the agent reports states, not every transition.
 */
export function decideDiscoveryEvents(
  previous: PublishedView,
  current: HostInventory,
  now: Date,
): DiscoveryEvent[] {
  const at = now.toISOString();
  const hostId = previous.hostId;
  const decisions = new Decisions(previous);
  const { draft } = decisions;

  const discovered = (v: ObservedVolume): Undecided<DiscoveryEvent> => ({
    type: VolumeDiscovered.type,
    data: {
      hostId,
      volumeName: v.name,
      driver: v.driver,
      driverOptions: { ...v.driverOptions },
      labels: { ...v.labels },
      scope: v.scope,
      anonymous: v.anonymous,
      ...optional('mountpoint', v.mountpoint),
      ...optional('createdAt', v.createdAt),
      discoveredAt: at,
    },
  });
  const volumeRemoved = (volumeName: string): Undecided<DiscoveryEvent> => ({
    type: VolumeRemoved.type,
    data: { hostId, volumeName, removedAt: at },
  });
  const volumeChanged = (
    volumeName: string,
    change: 'mounted' | 'unmounted' | 'labels',
    detail: { containerId?: string; labels?: Record<string, string> },
  ): Undecided<DiscoveryEvent> => ({
    type: VolumeChanged.type,
    data: { hostId, volumeName, change, ...detail, changedAt: at },
  });
  // The run that ended is the one published as started: volback ended it if the quiescer says so.
  const stopped = (
    c: ContainerIdentity,
    run: string | undefined,
    stoppedAt: string,
    exitCode?: number,
  ): Undecided<DiscoveryEvent> => ({
    type: ContainerStopped.type,
    data: {
      hostId,
      containerId: c.id,
      name: c.name,
      ...optional('exitCode', exitCode),
      byVolback: run !== undefined && (current.stoppedByVolback?.get(c.id)?.has(run) ?? false),
      stoppedAt,
    },
  });

  // Volumes that appeared, were re-created, or changed.
  for (const [name, volume] of byKey(current.volumes)) {
    const known = draft.volumes.get(name)?.volume;
    if (!known) {
      decisions.emit(discovered(volume));
    } else if (isRecreated(known, volume, current)) {
      decisions.emit(volumeRemoved(name));
      decisions.emit(discovered(volume));
    } else if (configurationOf(known) !== configurationOf(volume)) {
      decisions.emit(discovered(volume));
    } else if (canonicalJson(known.labels) !== canonicalJson(volume.labels)) {
      decisions.emit(volumeChanged(name, 'labels', { labels: { ...volume.labels } }));
    }
  }

  // Containers: configuration, then run state.
  for (const [id, container] of byKey(current.containers)) {
    const identity = identityOf(container);
    const known = draft.containers.get(id);
    if (!known || canonicalJson(known.container) !== canonicalJson(identity)) {
      decisions.emit({
        type: ContainerObserved.type,
        data: {
          hostId,
          containerId: id,
          name: container.name,
          image: container.image,
          ...optional('imageDigest', container.imageDigest),
          ...optional('imageId', container.imageId),
          labels: { ...container.labels },
          state: container.state,
          ...optional('compose', composeOf(container.labels)),
          mounts: mountsForEvent(container.mounts),
          ...optional('createdAt', container.createdAt),
          observedAt: at,
        },
      });
    }
    const published = draft.containers.get(id)!;
    if (container.running) {
      const newRun = container.startedAt !== undefined && container.startedAt !== published.startedAt;
      if (!published.running || published.startedAt === undefined || newRun) {
        if (published.running && published.startedAt !== undefined) {
          // It stopped and started again since the last look; the stop in between was not published.
          const ended = time(container.finishedAt) >= time(published.startedAt) ? container.finishedAt! : at;
          decisions.emit(stopped(identity, published.startedAt, ended));
        }
        decisions.emit({
          type: ContainerStarted.type,
          data: { hostId, containerId: id, name: container.name, startedAt: container.startedAt ?? at },
        });
      }
    } else if (published.running) {
      decisions.emit(stopped(identity, published.startedAt, container.finishedAt ?? at, container.exitCode));
    }
  }

  // Mounts: a volume is mounted while a running container uses it.
  const usedBy = new Map<string, Set<string>>();
  for (const [id, container] of current.containers) {
    if (!container.running) continue;
    for (const mount of container.mounts) {
      if (mount.type !== 'volume') continue;
      const users = usedBy.get(mount.volumeName) ?? new Set();
      users.add(id);
      usedBy.set(mount.volumeName, users);
    }
  }
  for (const [name] of byKey(current.volumes)) {
    const wanted = [...(usedBy.get(name) ?? [])].sort();
    const published = draft.volumes.get(name)!.mountedBy;
    for (const id of wanted) {
      if (!published.has(id)) decisions.emit(volumeChanged(name, 'mounted', { containerId: id }));
    }
    for (const id of [...published].sort()) {
      if (!wanted.includes(id)) decisions.emit(volumeChanged(name, 'unmounted', { containerId: id }));
    }
  }

  // Containers that are gone (a running one was stopped first, as Docker does).
  for (const [id, published] of byKey(draft.containers)) {
    if (current.containers.has(id)) continue;
    if (published.running) decisions.emit(stopped(published.container, published.startedAt, at));
    decisions.emit({
      type: ContainerRemoved.type,
      data: { hostId, containerId: id, name: published.container.name, removedAt: at },
    });
  }

  // Volumes that are gone.
  for (const [name, published] of byKey(draft.volumes)) {
    if (published.volume && !current.volumes.has(name)) decisions.emit(volumeRemoved(name));
  }

  return decisions.events;
}
