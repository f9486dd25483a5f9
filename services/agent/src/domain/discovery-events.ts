import {
  ContainerObserved,
  ContainerRemoved,
  ContainerStarted,
  ContainerStopped,
  VolumeChanged,
  VolumeDiscovered,
  VolumeRemoved,
  type EventDefinition,
  type HostRegistered,
  type HostSeen,
} from '@volback/contracts';
import type { z } from 'zod';

/** An event as the domain decides it: its contract type, its id and its data (schema output). */
export interface DomainEvent<D extends EventDefinition> {
  readonly type: D['type'];
  /** Deterministic: also the `Nats-Msg-Id` (see event-id.ts). */
  readonly id: string;
  readonly data: z.output<D['schema']>;
}

/** Events about the volumes of a host. */
export type VolumeEvent =
  | DomainEvent<typeof VolumeDiscovered>
  | DomainEvent<typeof VolumeChanged>
  | DomainEvent<typeof VolumeRemoved>;

/** Events about the containers of a host. */
export type ContainerEvent =
  | DomainEvent<typeof ContainerObserved>
  | DomainEvent<typeof ContainerStarted>
  | DomainEvent<typeof ContainerStopped>
  | DomainEvent<typeof ContainerRemoved>;

/** What discovery publishes: the facts the published view is built from. */
export type DiscoveryEvent = VolumeEvent | ContainerEvent;

/** What the agent says about its host itself. */
export type HostEvent = DomainEvent<typeof HostRegistered> | DomainEvent<typeof HostSeen>;

/** The contract of every event type the agent's discovery publishes, by `type`. */
export const DISCOVERY_EVENTS = {
  [VolumeDiscovered.type]: VolumeDiscovered,
  [VolumeChanged.type]: VolumeChanged,
  [VolumeRemoved.type]: VolumeRemoved,
  [ContainerObserved.type]: ContainerObserved,
  [ContainerStarted.type]: ContainerStarted,
  [ContainerStopped.type]: ContainerStopped,
  [ContainerRemoved.type]: ContainerRemoved,
} as const;

/** True for the types the published view is built from (others on the same subjects are skipped). */
export function isDiscoveryEventType(type: string): type is DiscoveryEvent['type'] {
  return Object.hasOwn(DISCOVERY_EVENTS, type);
}
