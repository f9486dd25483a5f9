import type { paths } from './api-types.ts';

/** The JSON a GET route answers with 200, from the catalog's OpenAPI document. */
export type Answer<P extends keyof paths> = paths[P] extends {
  get: { responses: { 200: { content: { 'application/json': infer T } } } };
}
  ? T
  : never;

export type Status = Answer<'/v1/status'>;
export type Host = Answer<'/v1/hosts'>['items'][number];
export type Volume = Answer<'/v1/volumes'>['items'][number];
export type Snapshot = Answer<'/v1/snapshots'>['items'][number];
export type Backup = Answer<'/v1/backups'>['items'][number];
export type Restore = Answer<'/v1/restores'>['items'][number];
export type Access = Answer<'/v1/access'>;
export type Policy = Answer<'/v1/policies'>['items'][number];
export type PolicyRequest = NonNullable<
  paths['/v1/policies/{policyId}']['put']['requestBody']
>['content']['application/json'];
export type TreeEntry = Answer<'/v1/snapshots/{snapshotId}/tree'>['entries'][number];
export type SnapshotDiff = Answer<'/v1/snapshots/{snapshotId}/diff'>;
export type FoundFile = Answer<'/v1/hosts/{hostId}/volumes/{volumeName}/find'>['items'][number];
export type BackupAccepted =
  paths['/v1/hosts/{hostId}/volumes/{volumeName}/backups']['post']['responses'][202]['content']['application/json'];

const TOKEN_KEY = 'volback.token';

/** The token the Access page stored (this browser only); null when none. */
export function storedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token === null) localStorage.removeItem(TOKEN_KEY);
  else localStorage.setItem(TOKEN_KEY, token);
}

/** An answer other than 2xx: the problem's `code` and `detail` when the API sent one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly code: string | undefined;
  /** A 400's fields at fault (`body.policy.schedule.cron`) with the API's message for each. */
  readonly issues: ReadonlyArray<{ field: string; message: string }>;
  constructor(
    status: number,
    code: string | undefined,
    detail: string,
    issues: ReadonlyArray<{ field: string; message: string }> = [],
  ) {
    super(detail);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

function headers(token: string | null, extra: Record<string, string> = {}): Record<string, string> {
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function problemOf(res: Response): Promise<ApiError> {
  let body: {
    code?: string;
    detail?: string;
    title?: string;
    errors?: Array<{ field: string; message: string }>;
  } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not problem+json: the status says it
  }
  return new ApiError(
    res.status,
    body.code,
    body.detail ?? body.title ?? `HTTP ${res.status}`,
    body.errors ?? [],
  );
}

/** GET a `/v1` route with the stored token (or `token`). */
export async function get<P extends keyof paths>(
  path: P,
  query: Record<string, string | number | undefined> = {},
  fill: Record<string, string> = {},
  token: string | null = storedToken(),
): Promise<Answer<P>> {
  let url: string = path;
  for (const [k, v] of Object.entries(fill)) url = url.replace(`{${k}}`, encodeURIComponent(v));
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const res = await fetch(q.size ? `${url}?${q}` : url, { headers: headers(token) });
  if (!res.ok) throw await problemOf(res);
  return (await res.json()) as Answer<P>;
}

/** Every item of a list route, page after page (500 at a time) until `nextCursor` is null. */
export async function getAll<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const answer = await page(cursor);
    items.push(...answer.items);
    cursor = answer.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

/** Sends a write (write scope) with the stored token; the answer's JSON, or the problem as ApiError. */
async function send<T>(method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: headers(storedToken(), body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw await problemOf(res);
  return (await res.json()) as T;
}

/** Back up a volume now (write scope). */
export function backUpNow(hostId: string, volumeName: string): Promise<BackupAccepted> {
  const url = `/v1/hosts/${encodeURIComponent(hostId)}/volumes/${encodeURIComponent(volumeName)}/backups`;
  return send('POST', url, { requestedBy: 'dashboard' });
}

export type RestoreRequest = NonNullable<
  paths['/v1/restores']['post']['requestBody']
>['content']['application/json'];
export type RestoreAccepted = paths['/v1/restores']['post']['responses'][202]['content']['application/json'];

/** Start a restore (write scope); the catalog checks the target and answers with its id. */
export function startRestore(body: RestoreRequest): Promise<RestoreAccepted> {
  return send('POST', '/v1/restores', body);
}

/** Define or replace an API policy (write scope); the scheduler records it (`PolicyDefined`). */
export async function definePolicy(policyId: string, body: PolicyRequest): Promise<void> {
  await send('PUT', `/v1/policies/${encodeURIComponent(policyId)}`, body);
}

export type BackupSet = Answer<'/v1/sets'>['items'][number];
export type SetBackup = Answer<'/v1/set-backups/{backupId}'>;
export type SetRestore = Answer<'/v1/set-restores/{restoreId}'>;
export type SetRestoreRequest =
  paths['/v1/sets/{setId}/restores']['post']['requestBody']['content']['application/json'];
export type SetRestoreAccepted =
  paths['/v1/sets/{setId}/restores']['post']['responses'][202]['content']['application/json'];
export type SetBackupAccepted =
  paths['/v1/sets/{setId}/backups']['post']['responses'][202]['content']['application/json'];

/** Back up every volume of a set now, at one point in time (write scope). */
export function backUpSetNow(hostId: string, setId: string): Promise<SetBackupAccepted> {
  return send('POST', `/v1/sets/${encodeURIComponent(setId)}/backups`, { hostId, requestedBy: 'dashboard' });
}

/** Restore a set backup (write scope): new names or in place, containers recreated when asked, or a dry run. */
export function startSetRestore(setId: string, body: SetRestoreRequest): Promise<SetRestoreAccepted> {
  return send('POST', `/v1/sets/${encodeURIComponent(setId)}/restores`, body);
}

export type Channel = Answer<'/v1/notifications/channels'>['items'][number];
export type ChannelRequest = NonNullable<
  paths['/v1/notifications/channels/{name}']['put']['requestBody']
>['content']['application/json'];
export type NotificationTest =
  paths['/v1/notifications/test']['post']['responses'][200]['content']['application/json'];

/** Define or replace a notification channel (write scope); the answer is redacted. */
export function defineChannel(name: string, body: ChannelRequest): Promise<Channel> {
  return send('PUT', `/v1/notifications/channels/${encodeURIComponent(name)}`, body);
}

/** Remove a notification channel of the API (write scope). */
export async function removeChannel(name: string): Promise<void> {
  await send('DELETE', `/v1/notifications/channels/${encodeURIComponent(name)}`);
}

/** Send a test notification to one channel and wait for its outcome (write scope). */
export function testChannel(channel: string): Promise<NotificationTest> {
  return send('POST', '/v1/notifications/test', { channel, waitSeconds: 30, requestedBy: 'dashboard' });
}

/** One item of the live stream: an event (its CloudEvents type) or `progress`. */
export interface LiveMessage {
  event: string;
  data: Record<string, unknown>;
}

/**
 * Follows `GET /v1/events/stream` with fetch (an EventSource cannot send the bearer token) and
 * calls `onMessage` per item; reconnects after a pause until `signal` aborts, with the last event's
 * id as `Last-Event-ID`, so the events of the break come first (as an EventSource would).
 */
export async function follow(
  query: Record<string, string>,
  onMessage: (m: LiveMessage) => void,
  signal: AbortSignal,
  onState: (connected: boolean) => void = () => undefined,
): Promise<void> {
  let lastId: string | undefined;
  while (!signal.aborted) {
    try {
      const res = await fetch(`/v1/events/stream?${new URLSearchParams(query)}`, {
        headers: { ...headers(storedToken()), ...(lastId ? { 'last-event-id': lastId } : {}) },
        signal,
      });
      if (!res.ok || !res.body) throw await problemOf(res);
      onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) lastId = line.slice(4);
          }
          if (data) onMessage({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      }
    } catch (error) {
      // A token that is no longer valid is not retried: each try would count towards the 429.
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        onState(false);
        return;
      }
      // else a dropped stream or a restarting catalog: retried below unless aborted
    }
    onState(false);
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Saves what a GET route answers as a file: fetched with the token (a plain link cannot send it),
 * then handed to the browser as a download named by the answer's `content-disposition`.
 */
export async function download(path: string, query: Record<string, string>): Promise<void> {
  const res = await fetch(`${path}?${new URLSearchParams(query)}`, { headers: headers(storedToken()) });
  if (!res.ok) throw await problemOf(res);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download';
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
