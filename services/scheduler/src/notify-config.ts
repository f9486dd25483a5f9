import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DEFAULT_NOTIFICATION_KINDS,
  notificationChannelName,
  notificationFilter,
  notificationKind,
  type NotificationKind,
} from '@volback/contracts';
import { parseChannelUrl } from '@volback/notify';
import type { EnvReader } from '@volback/runtime';
import { z } from 'zod';
import {
  DEFAULT_NOTIFIER_SETTINGS,
  type ConfiguredChannel,
  type NotifierSettings,
} from './adapters/notifier.ts';
import { ConfigError } from './errors.ts';

/** One entry of `VOLBACK_NOTIFY_FILE`: a JSON array of these. */
const fileChannel = z.object({
  name: notificationChannelName,
  url: z.string().min(1).max(4096),
  secret: z.string().min(16).max(1024).optional(),
  filter: notificationFilter.default({}),
});

/** Throws a {@link ConfigError} for a URL that cannot be used, naming the variable and entry, never the URL. */
function checkUrl(variable: string, where: string, url: string): void {
  try {
    parseChannelUrl(url);
  } catch (error) {
    throw new ConfigError(variable, `${where}: ${(error as Error).message}`);
  }
}

/**
 * `VOLBACK_NOTIFY_URLS`: URLs separated by spaces, new lines or commas (a comma inside a URL, as in
 * `to=a@x,b@x`, stays: only one before a scheme separates), each optionally `name=` first.
 */
export function splitNotifyUrls(raw: string): { name?: string; url: string }[] {
  return raw
    .split(/\s+|,(?=\s*(?:[a-z0-9][a-z0-9_-]*=)?[a-z][a-z0-9+.-]*:\/\/)/i)
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const named = /^([a-z0-9][a-z0-9_-]{0,62})=([a-z][a-z0-9+.-]*:\/\/.*)$/i.exec(entry);
      return named ? { name: named[1]!.toLowerCase(), url: named[2]! } : { url: entry };
    });
}

/** Reads the notifier's settings (scheduler README, "Notifications"); throws {@link ConfigError}. */
export function loadNotifierSettings(read: EnvReader, cwd: string): NotifierSettings {
  const kindsRaw = read.value('VOLBACK_NOTIFY_EVENTS');
  let kinds: NotificationKind[] = [...DEFAULT_NOTIFICATION_KINDS];
  if (kindsRaw !== undefined) {
    kinds = [];
    for (const word of kindsRaw
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean)) {
      const parsed = notificationKind.safeParse(word);
      if (!parsed.success || word === 'test') {
        throw new ConfigError(
          'VOLBACK_NOTIFY_EVENTS',
          `${JSON.stringify(word)} is not failure, at-risk, recovery or success`,
        );
      }
      kinds.push(parsed.data);
    }
    if (kinds.length === 0) throw new ConfigError('VOLBACK_NOTIFY_EVENTS', 'names no kind');
  }
  const webhookSecret = read.secret('VOLBACK_NOTIFY_WEBHOOK_SECRET');
  if (webhookSecret !== undefined && webhookSecret.length < 16) {
    throw new ConfigError('VOLBACK_NOTIFY_WEBHOOK_SECRET', 'at least 16 characters');
  }
  const channels: ConfiguredChannel[] = [];
  const urls = read.secret('VOLBACK_NOTIFY_URLS');
  splitNotifyUrls(urls ?? '').forEach((entry, i) => {
    const name = entry.name ?? `env-${i + 1}`;
    checkUrl('VOLBACK_NOTIFY_URLS', `entry ${i + 1} (${name})`, entry.url);
    channels.push({
      name,
      url: entry.url,
      ...(webhookSecret && entry.url.startsWith('generic') ? { secret: webhookSecret } : {}),
      filter: { kinds },
    });
  });
  const file = read.path('VOLBACK_NOTIFY_FILE');
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(resolve(cwd, file), 'utf8'));
    } catch (error) {
      throw new ConfigError('VOLBACK_NOTIFY_FILE', `cannot read it as JSON: ${(error as Error).message}`);
    }
    const list = z.array(fileChannel).max(100).safeParse(parsed);
    if (!list.success) {
      const issue = list.error.issues[0]!;
      throw new ConfigError('VOLBACK_NOTIFY_FILE', `[${issue.path.join('.')}]: ${issue.message}`);
    }
    list.data.forEach((c, i) => {
      checkUrl('VOLBACK_NOTIFY_FILE', `entry ${i + 1} (${c.name})`, c.url);
      channels.push({ ...c, filter: { kinds, ...c.filter } });
    });
  }
  const names = new Set<string>();
  for (const c of channels) {
    if (names.has(c.name))
      throw new ConfigError('VOLBACK_NOTIFY_URLS', `two channels are named ${JSON.stringify(c.name)}`);
    names.add(c.name);
  }
  const d = DEFAULT_NOTIFIER_SETTINGS;
  const initialDelayMs = read.integer(
    'VOLBACK_NOTIFY_RETRY_DELAY_MS',
    d.delivery.initialDelayMs,
    10,
    600_000,
  );
  return {
    channels,
    delivery: {
      attempts: read.integer('VOLBACK_NOTIFY_ATTEMPTS', d.delivery.attempts, 1, 20),
      initialDelayMs,
      maxDelayMs: Math.max(initialDelayMs, d.delivery.maxDelayMs),
      timeoutMs: read.integer('VOLBACK_NOTIFY_TIMEOUT_SECONDS', d.delivery.timeoutMs / 1000, 1, 300) * 1000,
    },
    maxAgeMs: read.integer('VOLBACK_NOTIFY_MAX_AGE_SECONDS', d.maxAgeMs / 1000, 60, 30 * 86_400) * 1000,
  };
}
