import { z } from 'zod';
import { defineEvent } from '../define.ts';
import { count, hostId, timestamp } from '../fields.ts';

/** The Docker Engine an agent talks to. */
export const engineInfo = z.object({
  /** The engine's own id (`docker info` ID). */
  id: z.string().min(1).max(200),
  version: z.string().min(1).max(100),
  apiVersion: z.string().min(1).max(20),
  os: z.string().max(200),
  arch: z.string().max(50),
  storageDriver: z.string().max(100).optional(),
  /** Where local volumes live on the host, when the agent can read them directly. */
  volumesRoot: z.string().max(4096).optional(),
});

export const HostRegistered = defineEvent({
  name: 'HostRegistered',
  aggregate: 'host',
  what: 'registered',
  description: 'An agent started on a Docker host and announced the host, its name and its engine.',
  schema: z.object({
    hostId,
    /** Display name (the engine's host name unless configured). */
    name: z.string().min(1).max(253),
    engine: engineInfo,
    agentVersion: z.string().min(1).max(100),
    registeredAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId],
});

export const HostSeen = defineEvent({
  name: 'HostSeen',
  aggregate: 'host',
  what: 'seen',
  description:
    'Heartbeat of an agent: the host is online, with counts of what it sees. Sent on volback.hb.<hostId> (stream VOLBACK_HEARTBEATS, the last per host), not on the event log.',
  schema: z.object({
    hostId,
    seenAt: timestamp,
    /** The next heartbeat is due within this many seconds; later means offline. */
    intervalSeconds: z.number().int().positive().max(86_400),
    containers: count,
    volumes: count,
    backupsRunning: count,
  }),
  aggregateId: (d) => [d.hostId],
});
