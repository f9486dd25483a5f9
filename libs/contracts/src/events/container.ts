import { z } from 'zod';
import { defineEvent } from '../define.ts';
import { containerId, containerName, hostId, labels, timestamp, volumeName } from '../fields.ts';

/** A mount of a container, as inspect shows it. */
export const containerMount = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('volume'),
    volumeName,
    destination: z.string().min(1).max(4096),
    readOnly: z.boolean(),
  }),
  z.object({
    type: z.literal('bind'),
    /** Host path of the bind mount. */
    source: z.string().min(1).max(4096),
    destination: z.string().min(1).max(4096),
    readOnly: z.boolean(),
  }),
  z.object({ type: z.literal('tmpfs'), destination: z.string().min(1).max(4096) }),
]);

const containerKey = { hostId, containerId };
const containerState = z.enum(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']);

export const ContainerObserved = defineEvent({
  name: 'ContainerObserved',
  aggregate: 'container',
  what: 'observed',
  description:
    'An agent saw a container (at start, on create or rename): name, image, labels and mounts. Never its environment.',
  schema: z.object({
    ...containerKey,
    name: containerName,
    image: z.string().min(1).max(1000),
    /** `repo@sha256:…` when the image has a registry digest. */
    imageDigest: z.string().max(1000).optional(),
    imageId: z.string().max(200).optional(),
    labels: labels.default({}),
    state: containerState,
    compose: z.object({ project: z.string().max(255), service: z.string().max(255) }).optional(),
    mounts: z.array(containerMount).default([]),
    createdAt: timestamp.optional(),
    observedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.containerId],
});

export const ContainerStarted = defineEvent({
  name: 'ContainerStarted',
  aggregate: 'container',
  what: 'started',
  description: 'A container started (or was unpaused).',
  schema: z.object({ ...containerKey, name: containerName, startedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.containerId],
});

export const ContainerStopped = defineEvent({
  name: 'ContainerStopped',
  aggregate: 'container',
  what: 'stopped',
  description:
    'A container stopped or died; `byVolback` when an agent stopped it itself (consistency `stop` for a backup or a restore).',
  schema: z.object({
    ...containerKey,
    name: containerName,
    exitCode: z.number().int().optional(),
    byVolback: z.boolean().default(false),
    stoppedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.containerId],
});

export const ContainerRemoved = defineEvent({
  name: 'ContainerRemoved',
  aggregate: 'container',
  what: 'removed',
  description: 'A container was destroyed.',
  schema: z.object({ ...containerKey, name: containerName.optional(), removedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.containerId],
});
