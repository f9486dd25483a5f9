import type { NotificationService } from '@volback/contracts';
import { NotifyUrlError } from './errors.ts';

/** A POST to an HTTP(S) endpoint, with the headers that authenticate it. */
interface HttpEndpoint {
  readonly endpoint: URL;
  readonly headers: Readonly<Record<string, string>>;
}

/** Where and how a channel delivers, parsed from its shoutrrr-style URL. */
export type ChannelTarget =
  | ({ readonly service: 'generic' } & HttpEndpoint)
  | ({ readonly service: 'ntfy'; readonly priority?: string; readonly tags?: string } & HttpEndpoint)
  | ({
      readonly service: 'slack' | 'mattermost';
      readonly username?: string;
      readonly channel?: string;
    } & HttpEndpoint)
  | ({ readonly service: 'gotify'; readonly priority?: number } & HttpEndpoint)
  | {
      readonly service: 'smtp';
      readonly host: string;
      readonly port: number;
      readonly user?: string;
      readonly password?: string;
      readonly from: string;
      readonly to: readonly string[];
      /** `none`: plain; `starttls`: STARTTLS required; `tls`: TLS from the start; `auto`: STARTTLS when offered (465: TLS). */
      readonly encryption: 'none' | 'starttls' | 'tls' | 'auto';
      readonly subjectPrefix?: string;
    };

/** Query parameters by lower-case name (shoutrrr's are case-insensitive). */
function params(url: URL): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of url.searchParams) out.set(key.toLowerCase(), value);
  return out;
}

function yes(value: string | undefined): boolean {
  return value !== undefined && ['yes', 'true', '1'].includes(value.toLowerCase());
}

function segments(url: URL): string[] {
  return url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new NotifyUrlError(what);
  return value;
}

function httpBase(url: URL, scheme: 'http' | 'https', defaultHost?: string): string {
  const host = url.hostname || need(defaultHost, 'the URL names no host');
  return `${scheme}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}${url.port ? `:${url.port}` : ''}`;
}

function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

const SERVICE_OF: Record<string, NotificationService> = {
  generic: 'generic',
  'generic+http': 'generic',
  'generic+https': 'generic',
  ntfy: 'ntfy',
  slack: 'slack',
  mattermost: 'mattermost',
  gotify: 'gotify',
  smtp: 'smtp',
};

/** The service a URL's scheme names; throws {@link NotifyUrlError} for any other scheme. */
export function channelService(raw: string): NotificationService {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  const service = scheme ? SERVICE_OF[scheme] : undefined;
  if (!service) {
    throw new NotifyUrlError(
      `unknown scheme ${scheme ? JSON.stringify(`${scheme}://`) : '(none)'}: use generic+https://, generic+http://, ntfy://, slack://, mattermost://, gotify:// or smtp://`,
    );
  }
  return service;
}

/**
 * Parses a channel URL the way shoutrrr (and so offen's `NOTIFICATION_URLS`) writes them:
 * - `generic+https://host/path?query` (or `generic+http://`; `generic://host/path` is HTTPS unless `?disabletls=yes`): POST the CloudEvent;
 * - `ntfy://[user:password@]host[:port]/topic[?scheme=http&priority=high&tags=warning]` (host `ntfy.sh` when empty; `:token@` sends a bearer token);
 * - `slack://hook:<A>-<B>-<C>@webhook` (or `slack://<A>/<B>/<C>`): an incoming webhook of hooks.slack.com;
 * - `mattermost://[username@]host[:port]/<token>[/channel][?disabletls=yes]`: Mattermost (or any Slack-compatible) incoming webhook;
 * - `gotify://host[:port][/path]/<app token>[?disabletls=yes&priority=5]`;
 * - `smtp://[user:password@]host[:port]/?from=a@example.com&to=b@example.com,c@example.com[&encryption=none|explicittls|implicittls|auto]`.
 * Throws {@link NotifyUrlError}, whose message never repeats the URL.
 */
export function parseChannelUrl(raw: string): ChannelTarget {
  const service = channelService(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new NotifyUrlError(`not a valid ${service} URL`);
  }
  const query = params(url);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const tls = !yes(query.get('disabletls'));
  switch (service) {
    case 'generic': {
      const scheme = url.protocol.startsWith('generic+http:')
        ? 'http'
        : url.protocol.startsWith('generic+https:') || tls
          ? 'https'
          : 'http';
      const endpoint = new URL(`${httpBase(url, scheme)}${url.pathname}`);
      for (const [key, value] of url.searchParams)
        if (key.toLowerCase() !== 'disabletls') endpoint.searchParams.append(key, value);
      const headers: Record<string, string> =
        user || password ? { authorization: basicAuth(user, password) } : {};
      return { service, endpoint, headers };
    }
    case 'ntfy': {
      const topic = need(segments(url)[0], 'an ntfy URL needs a topic: ntfy://host/topic');
      const scheme = query.get('scheme') === 'http' ? 'http' : 'https';
      const headers: Record<string, string> = password
        ? { authorization: user ? basicAuth(user, password) : `Bearer ${password}` }
        : {};
      return {
        service,
        endpoint: new URL(`${httpBase(url, scheme, 'ntfy.sh')}/${encodeURIComponent(topic)}`),
        headers,
        ...(query.get('priority') ? { priority: query.get('priority')! } : {}),
        ...(query.get('tags') ? { tags: query.get('tags')! } : {}),
      };
    }
    case 'slack': {
      const tokens =
        url.hostname === 'webhook'
          ? need(password, 'a Slack webhook URL is slack://hook:<A>-<B>-<C>@webhook').split(/[-/]/)
          : [url.hostname, ...segments(url)];
      if (tokens.length !== 3 || tokens.some((t) => !/^[A-Za-z0-9]+$/.test(t))) {
        throw new NotifyUrlError('a Slack webhook token has three parts: slack://hook:<A>-<B>-<C>@webhook');
      }
      return {
        service,
        endpoint: new URL(`https://hooks.slack.com/services/${tokens.join('/')}`),
        headers: {},
        ...(query.get('channel') ? { channel: query.get('channel')! } : {}),
        ...(url.hostname !== 'webhook' && user ? { username: user } : {}),
      };
    }
    case 'mattermost': {
      const [token, channel] = segments(url);
      need(token, 'a Mattermost URL needs the webhook token: mattermost://host/<token>[/channel]');
      return {
        service,
        endpoint: new URL(`${httpBase(url, tls ? 'https' : 'http')}/hooks/${encodeURIComponent(token!)}`),
        headers: {},
        ...(user ? { username: user } : {}),
        ...(channel ? { channel } : {}),
      };
    }
    case 'gotify': {
      const parts = segments(url);
      const token = need(parts.pop(), 'a Gotify URL needs the application token: gotify://host/<token>');
      const path = parts.map(encodeURIComponent).join('/');
      const priority = query.get('priority');
      if (priority !== undefined && !/^\d{1,2}$/.test(priority))
        throw new NotifyUrlError('gotify priority is a number 0–10');
      return {
        service,
        endpoint: new URL(`${httpBase(url, tls ? 'https' : 'http')}/${path ? `${path}/` : ''}message`),
        headers: { 'x-gotify-key': token },
        ...(priority !== undefined ? { priority: Number(priority) } : {}),
      };
    }
    case 'smtp': {
      const from = need(query.get('from') ?? query.get('fromaddress'), 'an smtp URL needs ?from=<address>');
      const to = need(
        query.get('to') ?? query.get('toaddresses'),
        'an smtp URL needs ?to=<address>[,<address>]',
      )
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      const mode = (query.get('encryption') ?? 'auto').toLowerCase();
      const encryption = (
        {
          none: 'none',
          explicittls: 'starttls',
          starttls: 'starttls',
          implicittls: 'tls',
          tls: 'tls',
          auto: 'auto',
        } as const
      )[mode];
      if (!encryption)
        throw new NotifyUrlError('smtp encryption is one of none, explicittls, implicittls, auto');
      const port = url.port ? Number(url.port) : encryption === 'tls' ? 465 : 25;
      return {
        service,
        host: need(url.hostname, 'an smtp URL needs a host'),
        port,
        ...(user ? { user } : {}),
        ...(password ? { password } : {}),
        from,
        to,
        encryption,
        ...(query.get('subject') ? { subjectPrefix: query.get('subject')! } : {}),
      };
    }
  }
}
