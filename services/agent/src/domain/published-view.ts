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
import type { ContainerState, ObservedContainer, ObservedVolume } from './inventory.ts';

/** What identifies a container's configuration in events: everything observed but its run state. */
export type ContainerIdentity = Pick<
  ObservedContainer,
  'id' | 'name' | 'image' | 'imageDigest' | 'imageId' | 'labels' | 'mounts' | 'createdAt'
>;

/** A volume as the event log tells it. */
export interface PublishedVolume {
  /** How many discovery events its subject holds; part of the next event's id. */
  readonly version: number;
  /** As last announced; absent once it was removed (the version goes on if the name comes back). */
  readonly volume?: ObservedVolume;
  /** Containers published as having it mounted (running ones). */
  readonly mountedBy: ReadonlySet<string>;
}

/** A container as the event log tells it; removed containers are forgotten (ids never come back). */
export interface PublishedContainer {
  /** How many discovery events its subject holds; part of the next event's id. */
  readonly version: number;
  readonly container: ContainerIdentity;
  /** State in its last `ContainerObserved`. */
  readonly state: ContainerState;
  /** Running as far as published (observed running, or started and not stopped since). */
  readonly running: boolean;
  /** Start time of the last published `ContainerStarted`. */
  readonly startedAt?: string;
}

/**
 * Everything an agent has published about its host's volumes and containers: the fold of its
 * discovery events. Discovery compares the engine against it and publishes only the difference;
 * on start it is rebuilt from the event stream, so a restart publishes nothing already said.
 */
export interface PublishedView {
  readonly hostId: string;
  readonly volumes: ReadonlyMap<string, PublishedVolume>;
  readonly containers: ReadonlyMap<string, PublishedContainer>;
}

/** The view of a host nothing was published about yet. */
export function emptyView(hostId: string): PublishedView {
  return { hostId, volumes: new Map(), containers: new Map() };
}

/** True in the states where Docker reports `State.Running`. */
export function isRunningState(state: ContainerState): boolean {
  return state === 'running' || state === 'paused' || state === 'restarting';
}

const NO_MOUNTS: ReadonlySet<string> = new Set();

function applyVolumeEvent(volumes: Map<string, PublishedVolume>, event: DiscoveryEvent): void {
  if (!('volumeName' in event.data)) return;
  const name = event.data.volumeName;
  const previous = volumes.get(name);
  const version = (previous?.version ?? 0) + 1;
  switch (event.type) {
    case VolumeDiscovered.type: {
      const d = event.data;
      volumes.set(name, {
        version,
        volume: {
          name,
          driver: d.driver,
          driverOptions: d.driverOptions,
          labels: d.labels,
          scope: d.scope,
          anonymous: d.anonymous,
          ...(d.mountpoint !== undefined ? { mountpoint: d.mountpoint } : {}),
          ...(d.createdAt !== undefined ? { createdAt: d.createdAt } : {}),
        },
        // Announcing a known volume again keeps its mounts; a new or re-created one has none.
        mountedBy: previous?.volume ? previous.mountedBy : NO_MOUNTS,
      });
      return;
    }
    case VolumeChanged.type: {
      const d = event.data;
      let { volume, mountedBy } = previous ?? { mountedBy: NO_MOUNTS };
      if (d.change === 'labels' && volume && d.labels) volume = { ...volume, labels: d.labels };
      if (d.change === 'mounted' && d.containerId) mountedBy = new Set([...mountedBy, d.containerId]);
      if (d.change === 'unmounted' && d.containerId) {
        const remaining = new Set(mountedBy);
        remaining.delete(d.containerId);
        mountedBy = remaining;
      }
      volumes.set(name, { version, ...(volume ? { volume } : {}), mountedBy });
      return;
    }
    case VolumeRemoved.type:
      volumes.set(name, { version, mountedBy: NO_MOUNTS });
      return;
  }
}

function applyContainerEvent(containers: Map<string, PublishedContainer>, event: DiscoveryEvent): void {
  if (!('containerId' in event.data) || 'volumeName' in event.data) return;
  const id = event.data.containerId;
  const previous = containers.get(id);
  switch (event.type) {
    case ContainerObserved.type: {
      const d = event.data;
      // Run state changes have events of their own; the state observed counts only for a new container.
      const running = previous ? previous.running : isRunningState(d.state);
      containers.set(id, {
        version: (previous?.version ?? 0) + 1,
        container: {
          id,
          name: d.name,
          image: d.image,
          ...(d.imageDigest !== undefined ? { imageDigest: d.imageDigest } : {}),
          ...(d.imageId !== undefined ? { imageId: d.imageId } : {}),
          labels: d.labels,
          mounts: d.mounts,
          ...(d.createdAt !== undefined ? { createdAt: d.createdAt } : {}),
        },
        state: d.state,
        running,
        ...(previous?.startedAt !== undefined ? { startedAt: previous.startedAt } : {}),
      });
      return;
    }
    case ContainerStarted.type:
      if (previous) {
        containers.set(id, {
          ...previous,
          version: previous.version + 1,
          running: true,
          startedAt: event.data.startedAt,
        });
      }
      return;
    case ContainerStopped.type:
      if (previous) containers.set(id, { ...previous, version: previous.version + 1, running: false });
      return;
    case ContainerRemoved.type:
      containers.delete(id);
      return;
  }
}

/** A mutable copy of a view, for code that applies many events (see {@link draftOf}). */
export interface ViewDraft {
  readonly hostId: string;
  readonly volumes: Map<string, PublishedVolume>;
  readonly containers: Map<string, PublishedContainer>;
}

/** A copy of `view` that {@link applyEvent} changes in place. */
export function draftOf(view: PublishedView): ViewDraft {
  return { hostId: view.hostId, volumes: new Map(view.volumes), containers: new Map(view.containers) };
}

/** Applies one event to a draft; events about another host are ignored. */
export function applyEvent(draft: ViewDraft, event: DiscoveryEvent): void {
  if (event.data.hostId !== draft.hostId) return;
  applyVolumeEvent(draft.volumes, event);
  applyContainerEvent(draft.containers, event);
}

/** The view after `events`, in order; events about another host are ignored. */
export function evolveAll(view: PublishedView, events: readonly DiscoveryEvent[]): PublishedView {
  if (events.length === 0) return view;
  const draft = draftOf(view);
  for (const event of events) applyEvent(draft, event);
  return draft;
}

/** The view after one event. */
export function evolve(view: PublishedView, event: DiscoveryEvent): PublishedView {
  return evolveAll(view, [event]);
}
