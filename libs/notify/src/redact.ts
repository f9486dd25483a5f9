import type {
  NotificationChannel,
  NotificationService,
  RedactedNotificationChannel,
} from '@volback/contracts';
import { channelService } from './channel-url.ts';

const MASK = '***';

/** Query parameters that never hold a secret, shown as they are. */
const PLAIN_PARAMS = new Set([
  'scheme',
  'disabletls',
  'priority',
  'tags',
  'channel',
  'encryption',
  'from',
  'fromaddress',
  'to',
  'toaddresses',
  'subject',
]);

/** A path segment that looks like a token (long, with digits), in URLs whose path is not all secret. */
function tokenLike(segment: string): boolean {
  return segment.length >= 12 && /\d/.test(segment);
}

/** Which path segments of a service's URL are secrets. */
function maskPath(service: NotificationService, parts: string[]): string[] {
  switch (service) {
    case 'slack':
      return parts.map(() => MASK);
    case 'mattermost':
      return parts.map((p, i) => (i === 0 ? MASK : p));
    case 'gotify':
      return parts.map((p, i) => (i === parts.length - 1 ? MASK : p));
    case 'ntfy':
      // On a public server a topic name is as good as a password.
      return parts.map(() => MASK);
    case 'generic':
      return parts.map((p) => (tokenLike(p) ? MASK : p));
    case 'smtp':
      return parts;
  }
}

/**
 * A channel URL fit to show (API, logs, events): no user or password, no token in the host or the
 * path, and only the values of harmless query parameters. Never throws.
 */
export function redactChannelUrl(raw: string): string {
  let service: NotificationService;
  try {
    service = channelService(raw);
  } catch {
    return MASK;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${raw.slice(0, raw.indexOf('://'))}://${MASK}`;
  }
  const scheme = url.protocol.slice(0, -1);
  const auth = url.username || url.password ? `${MASK}@` : '';
  const host = service === 'slack' && url.hostname !== 'webhook' ? MASK : url.hostname;
  const port = url.port ? `:${url.port}` : '';
  const parts = url.pathname.split('/').filter(Boolean);
  const path = maskPath(service, parts).join('/');
  const query = [...url.searchParams]
    .map(([key, value]) => `${key}=${PLAIN_PARAMS.has(key.toLowerCase()) ? value : MASK}`)
    .join('&');
  return `${scheme}://${auth}${host}${port}${path ? `/${path}` : url.pathname === '/' ? '/' : ''}${query ? `?${query}` : ''}`;
}

/**
 * The strings of a channel that must never appear in a text: what {@link redactChannelUrl} masks
 * (user, password, tokens in host and path, query values) and the signing secret. Used to scrub
 * error messages of receivers and libraries.
 */
export function channelSecrets(channel: Pick<NotificationChannel, 'url' | 'secret'>): string[] {
  const found = new Set<string>();
  if (channel.secret) found.add(channel.secret);
  try {
    const service = channelService(channel.url);
    const url = new URL(channel.url);
    const parts = url.pathname.split('/').filter(Boolean);
    const masked = maskPath(service, parts);
    const secret = [
      url.username,
      url.password,
      ...parts.filter((_, i) => masked[i] === MASK),
      ...[...url.searchParams].filter(([key]) => !PLAIN_PARAMS.has(key.toLowerCase())).map(([, v]) => v),
      ...(service === 'slack' && url.hostname !== 'webhook' ? [url.hostname] : []),
    ];
    for (const part of secret) {
      if (part.length >= 3) found.add(part);
      const decoded = safeDecode(part);
      if (decoded.length >= 3) found.add(decoded);
    }
  } catch {
    found.add(channel.url);
  }
  return [...found];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `text` with every secret of the channel replaced by `***` (longest first, so none is left in part). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join(MASK);
  return out;
}

/** A stored channel as the API and the CLI show it. */
export function redactChannel(channel: NotificationChannel): RedactedNotificationChannel {
  let service: NotificationService;
  try {
    service = channelService(channel.url);
  } catch {
    service = 'generic';
  }
  return {
    name: channel.name,
    service,
    url: redactChannelUrl(channel.url),
    signed: channel.secret !== undefined,
    filter: channel.filter,
    origin: channel.origin,
    definedAt: channel.definedAt,
    definedBy: channel.definedBy,
  };
}
