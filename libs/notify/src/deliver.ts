import { createHmac } from 'node:crypto';
import type { NotificationChannel, NotificationKind } from '@volback/contracts';
import nodemailer from 'nodemailer';
import { parseChannelUrl, type ChannelTarget } from './channel-url.ts';
import { NotifyErrorCode, NotifyUrlError } from './errors.ts';
import type { Notification } from './notification.ts';
import { channelSecrets, redactChannelUrl, scrub } from './redact.ts';

/** The header of a generic webhook's signature: `sha256=<hex HMAC-SHA256 of the body>`. */
export const SIGNATURE_HEADER = 'x-volback-signature';
/** The header naming the notification's kind (`failure`, `at-risk`, …). */
export const KIND_HEADER = 'x-volback-notification';
/** The content type of a CloudEvent in structured mode (CloudEvents HTTP binding). */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

/** Options of {@link deliverNotification}. */
export interface DeliveryOptions {
  /** Requests in all, the first included (default 5). */
  readonly attempts?: number;
  /** Wait before the second request, doubled for each further one (default 2 s) … */
  readonly initialDelayMs?: number;
  /** … up to this (default 60 s). */
  readonly maxDelayMs?: number;
  /** Time limit of one request (default 10 s). */
  readonly timeoutMs?: number;
  /** Called before each request: a consumer keeps its message alive with it. */
  readonly onAttempt?: (attempt: number) => void;
  /** Stops waiting between attempts (shutdown); the result so far is returned. */
  readonly signal?: AbortSignal;
}

/** How a delivery ended; `reason` names no credential of the channel. */
export interface DeliveryResult {
  readonly ok: boolean;
  readonly attempts: number;
  readonly status?: number;
  readonly code?: NotifyErrorCode;
  readonly reason?: string;
}

interface AttemptResult {
  readonly ok: boolean;
  readonly retryable: boolean;
  readonly status?: number;
  readonly code?: NotifyErrorCode;
  readonly reason?: string;
}

/** The HMAC-SHA256 signature of `body` under `secret`, as {@link SIGNATURE_HEADER} carries it. */
export function signBody(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const NTFY_PRIORITY: Record<NotificationKind, string> = {
  failure: 'high',
  'at-risk': 'high',
  recovery: 'default',
  success: 'low',
  test: 'default',
};
const NTFY_TAGS: Record<NotificationKind, string> = {
  failure: 'rotating_light',
  'at-risk': 'warning',
  recovery: 'white_check_mark',
  success: 'floppy_disk',
  test: 'test_tube',
};
const GOTIFY_PRIORITY: Record<NotificationKind, number> = {
  failure: 8,
  'at-risk': 8,
  recovery: 5,
  success: 2,
  test: 5,
};

/** HTTP header values are Latin-1: anything else becomes `?`. */
const headerText = (text: string): string => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 250);

/** The request a channel makes for a notification. */
function httpRequest(
  target: Exclude<ChannelTarget, { service: 'smtp' }>,
  channel: NotificationChannel,
  notification: Notification,
): { body: string; headers: Record<string, string> } {
  const { kind, title, text } = notification;
  switch (target.service) {
    case 'generic': {
      const body = JSON.stringify(notification.event);
      return {
        body,
        headers: {
          'content-type': CLOUDEVENTS_CONTENT_TYPE,
          [KIND_HEADER]: kind,
          ...(channel.secret ? { [SIGNATURE_HEADER]: signBody(body, channel.secret) } : {}),
        },
      };
    }
    case 'ntfy':
      return {
        body: text,
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          title: headerText(title),
          priority: target.priority ?? NTFY_PRIORITY[kind],
          tags: target.tags ?? NTFY_TAGS[kind],
        },
      };
    case 'slack':
    case 'mattermost':
      return {
        body: JSON.stringify({
          text: `*${title}*\n${text}`,
          ...(target.username ? { username: target.username } : {}),
          ...(target.channel ? { channel: target.channel } : {}),
        }),
        headers: { 'content-type': 'application/json' },
      };
    case 'gotify':
      return {
        body: JSON.stringify({ title, message: text, priority: target.priority ?? GOTIFY_PRIORITY[kind] }),
        headers: { 'content-type': 'application/json' },
      };
  }
}

async function postOnce(
  target: Exclude<ChannelTarget, { service: 'smtp' }>,
  channel: NotificationChannel,
  notification: Notification,
  timeoutMs: number,
): Promise<AttemptResult> {
  const { body, headers } = httpRequest(target, channel, notification);
  let response: Response;
  try {
    response = await fetch(target.endpoint, {
      method: 'POST',
      body,
      headers: { 'user-agent': 'volback-notifier', ...target.headers, ...headers },
      // A redirect could carry the signed body (and auth) elsewhere: a receiver must answer itself.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      retryable: true,
      code: NotifyErrorCode.Unreachable,
      reason: `could not reach ${redactChannelUrl(channel.url)}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    };
  }
  await response.arrayBuffer().catch(() => undefined);
  if (response.status >= 200 && response.status < 300)
    return { ok: true, retryable: false, status: response.status };
  return {
    ok: false,
    // Server trouble and rate limits pass; a refusal (bad token, unknown topic) does not.
    retryable: response.status >= 500 || response.status === 429 || response.status === 408,
    status: response.status,
    code: NotifyErrorCode.HttpStatus,
    reason: `${redactChannelUrl(channel.url)} answered ${response.status} ${response.statusText}`.trim(),
  };
}

async function mailOnce(
  target: Extract<ChannelTarget, { service: 'smtp' }>,
  channel: NotificationChannel,
  notification: Notification,
  timeoutMs: number,
): Promise<AttemptResult> {
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: target.encryption === 'tls',
    requireTLS: target.encryption === 'starttls',
    ignoreTLS: target.encryption === 'none',
    ...(target.user ? { auth: { user: target.user, pass: target.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  try {
    await transport.sendMail({
      from: target.from,
      to: [...target.to],
      subject: target.subjectPrefix ? `${target.subjectPrefix} ${notification.title}` : notification.title,
      text: notification.text,
      headers: { [KIND_HEADER]: notification.kind, 'x-volback-event-id': notification.event.id },
    });
    return { ok: true, retryable: false, status: 250 };
  } catch (error) {
    const err = error as Error & { responseCode?: number; code?: string };
    const permanent = err.responseCode !== undefined && err.responseCode >= 500;
    return {
      ok: false,
      retryable: !permanent,
      ...(err.responseCode !== undefined ? { status: err.responseCode } : {}),
      code: err.responseCode !== undefined ? NotifyErrorCode.SmtpRefused : NotifyErrorCode.Unreachable,
      reason: `smtp ${target.host}:${target.port}: ${err.message}`,
    };
  } finally {
    transport.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Sends one notification to one channel, retrying with exponential backoff while the failure may
 * pass (no answer, 5xx, 429; SMTP 4xx). Never throws: the result says how it ended, and its reason
 * is scrubbed of the channel's credentials.
 */
export async function deliverNotification(
  channel: NotificationChannel,
  notification: Notification,
  options: DeliveryOptions = {},
): Promise<DeliveryResult> {
  let target: ChannelTarget;
  try {
    target = parseChannelUrl(channel.url);
  } catch (error) {
    const reason = error instanceof NotifyUrlError ? error.message : 'not a usable URL';
    return { ok: false, attempts: 0, code: NotifyErrorCode.UrlInvalid, reason };
  }
  const attempts = Math.max(1, options.attempts ?? 5);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const secrets = channelSecrets(channel);
  let delay = options.initialDelayMs ?? 2_000;
  let last: AttemptResult | undefined;
  let made = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    options.onAttempt?.(attempt);
    made = attempt;
    last =
      target.service === 'smtp'
        ? await mailOnce(target, channel, notification, timeoutMs)
        : await postOnce(target, channel, notification, timeoutMs);
    if (last.ok || !last.retryable || attempt === attempts || options.signal?.aborted) break;
    await sleep(delay, options.signal);
    if (options.signal?.aborted) break;
    delay = Math.min(delay * 2, options.maxDelayMs ?? 60_000);
  }
  const result = last!;
  return {
    ok: result.ok,
    attempts: made,
    ...(result.status !== undefined ? { status: result.status } : {}),
    ...(result.code ? { code: result.code } : {}),
    ...(result.reason ? { reason: scrub(result.reason, secrets).slice(0, 4000) } : {}),
  };
}
