import { HostRegistered, HostSeen, type engineInfo } from '@volback/contracts';
import type { z } from 'zod';
import type { HostEvent } from './discovery-events.ts';
import { deterministicEventId } from './event-id.ts';
import type { HostInventory } from './inventory.ts';

/** The Docker Engine of a host, as `HostRegistered` announces it. */
export type EngineIdentity = z.output<typeof engineInfo>;

/** Who the agent is: the host it serves and the engine it talks to. */
export interface HostIdentity {
  /** Stable across restarts (persisted by the agent). */
  readonly hostId: string;
  /** Display name. */
  readonly name: string;
  readonly engine: EngineIdentity;
  readonly agentVersion: string;
}

/**
 * The announcement an agent makes when it starts (or finds a different engine behind its
 * socket). Each start is a fact of its own, so its id comes from the start time: a retried
 * publish of the same announcement is stored once, a later start is stored again.
 */
export function hostRegistered(
  identity: HostIdentity,
  now: Date,
): Extract<HostEvent, { type: typeof HostRegistered.type }> {
  const data = {
    hostId: identity.hostId,
    name: identity.name,
    engine: identity.engine,
    agentVersion: identity.agentVersion,
    registeredAt: now.toISOString(),
  };
  return {
    type: HostRegistered.type,
    id: deterministicEventId([identity.hostId, 'host', HostRegistered.type, data]),
    data,
  };
}

/** A heartbeat with what the agent sees; one id per host and time, so a retry is stored once. */
export function hostSeen(
  hostId: string,
  inventory: HostInventory,
  intervalSeconds: number,
  now: Date,
): Extract<HostEvent, { type: typeof HostSeen.type }> {
  const data = {
    hostId,
    seenAt: now.toISOString(),
    intervalSeconds,
    containers: inventory.containers.size,
    volumes: inventory.volumes.size,
    // Backups are not run by this agent yet.
    backupsRunning: 0,
  };
  return { type: HostSeen.type, id: deterministicEventId([hostId, 'host', HostSeen.type, data]), data };
}
