import { DATA_OPERATIONS } from './data-path.ts';
import { NOTIFY_CHANNELS_BUCKET } from './notification.ts';
import { GRANTS_BUCKET } from './restore-grant.ts';
import {
  commandSubjectFilter,
  dataSubject,
  eventSubject,
  eventSubjectFilter,
  heartbeatSubject,
  heartbeatSubjectFilter,
  HOST_SCOPED_AGGREGATES,
  inboxPrefix,
  progressSubjectFilter,
  STREAMS,
  SUBJECT_ROOTS,
  type NatsIdentity,
} from './streams.ts';
import { encodeSubjectToken } from './subject-token.ts';

/**
 * Who connects to NATS (SECURITY-PLAN §2): each service, each agent host and each external
 * subscriber is a user of its own (an nkey) with the permissions below; `admin` (the set-up step)
 * alone may change or delete streams.
 */
export type Identity = NatsIdentity;

/** The shared services with an identity (and a seed file) of their own. */
export const SERVICE_NAMES = ['scheduler', 'catalog', 'gateway'] as const;

/** Allowed (and explicitly denied) subjects of one direction, as the NATS server config takes them. */
export interface SubjectRules {
  readonly allow: readonly string[];
  readonly deny?: readonly string[];
}

/** A NATS user's permissions: what it may publish and subscribe to, and whether it may reply. */
export interface NatsPermissions {
  readonly publish: SubjectRules;
  readonly subscribe: SubjectRules;
  /**
   * May publish replies to the reply subject of each request it received (a responder): at most
   * `max` replies, within `expires` (a NATS duration such as `10m`).
   */
  readonly allowResponses?: { readonly max: number; readonly expires: string };
}

/** The scheduler's leader-election KV bucket. */
export const SCHEDULER_LEADER_BUCKET = 'volback-scheduler';

/**
 * The scheduler's state snapshots (KV): its state at a stream sequence, so a start reads only the
 * events after it. Only the scheduler reads or writes it.
 */
export const SCHEDULER_SNAPSHOT_BUCKET = 'volback-scheduler-state';

/** Durable consumer names of the shared services. */
export const SERVICE_CONSUMERS = {
  scheduler: 'scheduler',
  gatewayMaintenance: 'storage-gateway',
  /** The scheduler leader's notifier on the event log. */
  notifier: 'notifier',
} as const;

/** The identity's name: its nkey seed file is `<name>.nk` (`agent-<hostId>`, `subscriber-<name>`). */
export function identityName(identity: Identity): string {
  switch (identity.kind) {
    case 'admin':
      return 'admin';
    case 'service':
      return identity.service;
    case 'agent':
      return `agent-${encodeSubjectToken(identity.hostId)}`;
    case 'subscriber':
      return `subscriber-${encodeSubjectToken(identity.name)}`;
  }
}

/** Durable consumer name of a host's agent on the commands stream (no dots or wildcards). */
export function agentDurableName(hostId: string): string {
  return `agent-${hostId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** The one durable consumer a subscriber identity may create on the event stream. */
export function subscriberDurableName(name: string): string {
  return `subscriber-${encodeSubjectToken(name)}`;
}

const API = '$JS.API';
const EVENTS = STREAMS.events.name;
const COMMANDS = STREAMS.commands.name;
const HEARTBEATS = STREAMS.heartbeats.name;

/** Stream changes only the admin may make (belt and braces: no allow list names them either). */
const ADMIN_ONLY = [
  `${API}.STREAM.DELETE.>`,
  `${API}.STREAM.PURGE.>`,
  `${API}.STREAM.UPDATE.>`,
  `${API}.STREAM.MSG.DELETE.>`,
  `${API}.STREAM.SNAPSHOT.>`,
  `${API}.STREAM.RESTORE.>`,
  `${API}.STREAM.PEER.>`,
  `${API}.STREAM.LEADER.>`,
  `${API}.META.>`,
  `${API}.SERVER.>`,
  `${API}.ACCOUNT.>`,
];

/** Reading a stream's state and its messages without a consumer. */
function streamReader(stream: string): string[] {
  return [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
  ];
}

/** A named consumer: create or update it (with any filter), read its state, pull and acknowledge. */
function namedConsumer(stream: string, name: string): string[] {
  return [
    `${API}.CONSUMER.CREATE.${stream}.${name}`,
    `${API}.CONSUMER.CREATE.${stream}.${name}.>`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.${name}`,
    `${API}.CONSUMER.INFO.${stream}.${name}`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.${name}`,
    `$JS.ACK.${stream}.${name}.>`,
  ];
}

/** Any consumer of a stream: ordered consumers have random names (scheduler, catalog). */
function anyConsumer(stream: string): string[] {
  return [
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `${API}.CONSUMER.INFO.${stream}.*`,
    `${API}.CONSUMER.DELETE.${stream}.*`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.ACK.${stream}.>`,
  ];
}

/** Creating the volback streams when they are missing (never changing or deleting them). */
function streamCreator(): string[] {
  return [
    `${API}.STREAM.CREATE.${EVENTS}`,
    `${API}.STREAM.CREATE.${COMMANDS}`,
    `${API}.STREAM.CREATE.${HEARTBEATS}`,
  ];
}

/** Full use of one KV bucket: create it, read, write and watch its keys. */
function kvBucket(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$KV.${bucket}.>`,
    `${API}.STREAM.CREATE.${stream}`,
    ...streamReader(stream),
    ...anyConsumer(stream),
  ];
}

/** Reading one KV bucket's keys (direct get), never writing them. */
function kvReader(bucket: string): string[] {
  return streamReader(`KV_${bucket}`);
}

/**
 * Event subjects about one host: the only events an agent may publish (its discovery, its backups,
 * restores and restore drills: `HOST_SCOPED_AGGREGATES`).
 */
export function hostEventSubjects(hostId: string): string[] {
  return HOST_SCOPED_AGGREGATES.map((aggregate) => eventSubjectFilter(aggregate, hostId));
}

/** The data path as one requester: every operation, its own subject only. */
function dataRequests(requester: Parameters<typeof dataSubject>[0]): string[] {
  return Object.values(DATA_OPERATIONS).map((operation) => dataSubject(requester, operation));
}

/**
 * What the scheduler and the catalog share: any event, any command, creating the streams when
 * missing, reading the log with consumers of their own, the restore grants, and the notification
 * channels (they hold credentials: no other identity may read them).
 */
function controlPlane(): string[] {
  return [
    eventSubjectFilter(),
    `${SUBJECT_ROOTS.commands}.>`,
    ...streamCreator(),
    ...streamReader(EVENTS),
    `${API}.STREAM.INFO.${COMMANDS}`,
    ...anyConsumer(EVENTS),
    // Liveness: every host's last heartbeat, then the new ones (never publishing one).
    ...streamReader(HEARTBEATS),
    ...anyConsumer(HEARTBEATS),
    ...kvBucket(GRANTS_BUCKET),
    ...kvBucket(NOTIFY_CHANNELS_BUCKET),
  ];
}

function common(identity: Identity): { publish: string[]; subscribe: string[] } {
  return {
    publish: [`${API}.INFO`],
    subscribe: [`${inboxPrefix(identity)}.>`],
  };
}

/**
 * The permissions of an identity; `undefined` for the admin (everything). The set-up writes
 * these into the NATS server config (`volback init`); nothing else decides them.
 */
export function permissionsFor(identity: Identity): NatsPermissions | undefined {
  if (identity.kind === 'admin') return undefined;
  const base = common(identity);
  const deny = { deny: ADMIN_ONLY };
  switch (identity.kind) {
    case 'agent': {
      const durable = agentDurableName(identity.hostId);
      const commands = commandSubjectFilter({ kind: 'host', hostId: identity.hostId });
      return {
        publish: {
          allow: [
            ...base.publish,
            ...hostEventSubjects(identity.hostId),
            eventSubject('message', durable),
            heartbeatSubject(identity.hostId),
            progressSubjectFilter(identity.hostId),
            ...dataRequests({ kind: 'host', hostId: identity.hostId }),
            ...streamReader(EVENTS),
            `${API}.STREAM.INFO.${COMMANDS}`,
            `${API}.STREAM.INFO.${HEARTBEATS}`,
            // The create subject carries the filter (the server checks it against the config):
            // an agent's consumer can only ever hold its own host's commands.
            `${API}.CONSUMER.CREATE.${COMMANDS}.${durable}.${commands}`,
            `${API}.CONSUMER.INFO.${COMMANDS}.${durable}`,
            `${API}.CONSUMER.MSG.NEXT.${COMMANDS}.${durable}`,
            `$JS.ACK.${COMMANDS}.${durable}.>`,
          ],
          ...deny,
        },
        subscribe: { allow: base.subscribe },
      };
    }
    case 'subscriber': {
      const durable = subscriberDurableName(identity.name);
      return {
        publish: {
          allow: [
            ...base.publish,
            `${API}.STREAM.INFO.${EVENTS}`,
            ...namedConsumer(EVENTS, durable),
            `${API}.CONSUMER.DELETE.${EVENTS}.${durable}`,
            // Each host's last heartbeat (direct get by subject); the live ones by subscription.
            ...streamReader(HEARTBEATS),
          ],
          ...deny,
        },
        subscribe: { allow: [...base.subscribe, eventSubjectFilter(), heartbeatSubjectFilter()] },
      };
    }
    case 'service':
      switch (identity.service) {
        case 'cli':
          return { publish: { allow: base.publish, ...deny }, subscribe: { allow: base.subscribe } };
        case 'gateway':
          return {
            publish: {
              allow: [
                ...base.publish,
                eventSubjectFilter('snapshot'),
                eventSubjectFilter('repository'),
                eventSubjectFilter('message'),
                ...streamReader(EVENTS),
                `${API}.STREAM.INFO.${COMMANDS}`,
                `${API}.STREAM.INFO.${HEARTBEATS}`,
                ...anyConsumer(EVENTS),
                ...namedConsumer(COMMANDS, SERVICE_CONSUMERS.gatewayMaintenance),
                ...kvReader(GRANTS_BUCKET),
              ],
              ...deny,
            },
            subscribe: { allow: [...base.subscribe, `${SUBJECT_ROOTS.data}.>`] },
            // A flush is answered twice (started, then done), and may write packs for minutes.
            allowResponses: { max: 2, expires: '10m' },
          };
        case 'scheduler':
          return {
            publish: {
              allow: [
                ...base.publish,
                ...controlPlane(),
                ...namedConsumer(COMMANDS, SERVICE_CONSUMERS.scheduler),
                ...kvBucket(SCHEDULER_LEADER_BUCKET),
                ...kvBucket(SCHEDULER_SNAPSHOT_BUCKET),
              ],
              ...deny,
            },
            subscribe: { allow: base.subscribe },
          };
        case 'catalog':
          return {
            publish: {
              allow: [...base.publish, ...controlPlane(), ...dataRequests({ kind: 'catalog' })],
              ...deny,
            },
            subscribe: {
              allow: [
                ...base.subscribe,
                progressSubjectFilter(),
                eventSubjectFilter(),
                heartbeatSubjectFilter(),
              ],
            },
          };
      }
  }
}
