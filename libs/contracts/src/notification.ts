import { z } from 'zod';
import { hostId, timestamp, volumeName } from './fields.ts';

/** The KV bucket of notification channels: readable by the scheduler (the notifier) and the catalog only. */
export const NOTIFY_CHANNELS_BUCKET = 'volback-notify-channels';

/**
 * What a notification is about:
 * - `failure`: a backup failed (each attempt), partly failed, or was abandoned; a restore or a restore drill failed;
 * - `at-risk`: a volume's last successful backup is older than its policy's RPO;
 * - `recovery`: a backup succeeded after the volume's previous one failed, or a volume at risk is protected again;
 * - `success`: a backup, restore or restore drill completed (off unless a channel asks for it);
 * - `test`: `volback notify test` (always sent to the channels it names).
 */
export const NOTIFICATION_KINDS = ['failure', 'at-risk', 'recovery', 'success', 'test'] as const;
/** One of {@link NOTIFICATION_KINDS}. */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];
export const notificationKind = z.enum(NOTIFICATION_KINDS);

/** The kinds a channel gets when it names none. */
export const DEFAULT_NOTIFICATION_KINDS: readonly NotificationKind[] = ['failure', 'at-risk', 'recovery'];

/** A channel's name: lower-case letters, digits, `-` and `_` (a KV key and a subject token). */
export const notificationChannelName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$/,
    'lower-case letters, digits, - and _, at most 63, not starting with - or _',
  );

/** The services a channel URL can name (shoutrrr's schemes, as offen's users write them). */
export const NOTIFICATION_SERVICES = ['generic', 'ntfy', 'slack', 'mattermost', 'gotify', 'smtp'] as const;
/** One of {@link NOTIFICATION_SERVICES}. */
export type NotificationService = (typeof NOTIFICATION_SERVICES)[number];

/** Which notifications a channel gets; an absent list means any. */
export const notificationFilter = z.object({
  kinds: z.array(notificationKind).min(1).max(NOTIFICATION_KINDS.length).optional(),
  /** Host ids or names. */
  hosts: z.array(z.string().min(1).max(253)).min(1).max(100).optional(),
  /** Volume names; `*` matches any run of characters (`shop_*`). */
  volumes: z.array(z.string().min(1).max(255)).min(1).max(100).optional(),
});
/** {@link notificationFilter}'s type. */
export type NotificationFilter = z.infer<typeof notificationFilter>;

/**
 * A channel as stored in {@link NOTIFY_CHANNELS_BUCKET} (key: its name). It holds secrets (the URL's
 * credentials and tokens, the webhook signing secret): never put it into an event, a log line or an
 * API response; show {@link RedactedNotificationChannel} instead.
 */
export const notificationChannel = z.object({
  name: notificationChannelName,
  /** A shoutrrr-style URL: `generic+https://…`, `ntfy://…`, `slack://…`, `mattermost://…`, `gotify://…`, `smtp://…`. */
  url: z.string().min(1).max(4096),
  /** Key of the HMAC-SHA256 signature of generic webhooks (`X-Volback-Signature`). */
  secret: z.string().min(16).max(1024).optional(),
  filter: notificationFilter.default({}),
  /** `api`: defined through the catalog; `configuration`: from the scheduler's environment or file. */
  origin: z.enum(['api', 'configuration']),
  definedAt: timestamp,
  definedBy: z.string().min(1).max(200),
});
/** {@link notificationChannel}'s type. */
export type NotificationChannel = z.infer<typeof notificationChannel>;

/** A channel as the API shows it: the URL without credentials, tokens or query values, no secret. */
export interface RedactedNotificationChannel {
  readonly name: string;
  readonly service: NotificationService;
  readonly url: string;
  readonly signed: boolean;
  readonly filter: NotificationFilter;
  readonly origin: NotificationChannel['origin'];
  readonly definedAt: string;
  readonly definedBy: string;
}

/** What a notification says about: the volume (and host) it concerns, when it concerns one. */
export const notificationScope = z.object({ hostId: hostId.optional(), volumeName: volumeName.optional() });
