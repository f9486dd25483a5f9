/** Stable codes of the CLI's own failures to reach the catalog (the catalog's codes pass through). */
export const ClientErrorCode = {
  /** Nothing listens at the URL (connection refused or reset): the catalog is down or still starting. */
  NotAnswering: 'VOLBACK_CLI_CATALOG_NOT_ANSWERING',
  /** The catalog's host name does not resolve. */
  UnknownHost: 'VOLBACK_CLI_CATALOG_UNKNOWN_HOST',
  /** Connected (or connecting), but no answer within the timeout. */
  Timeout: 'VOLBACK_CLI_CATALOG_TIMEOUT',
  /** Something answered, but not as a volback catalog does. */
  NotACatalog: 'VOLBACK_CLI_NOT_A_CATALOG',
  EmptyAnswer: 'VOLBACK_CLI_EMPTY_ANSWER',
} as const;

/** A failed call to the catalog: the problem's code and status, and the fields it names. */
export class CatalogRequestError extends Error {
  override readonly name = 'CatalogRequestError';
  readonly code: string;
  /** HTTP status; 0 when no answer came. */
  readonly status: number;
  /** For bad input: the API fields at fault (`body.target.volumeName`). */
  readonly fields: ReadonlyArray<{ field: string; message: string }>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { cause?: unknown; fields?: ReadonlyArray<{ field: string; message: string }> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.fields = options.fields ?? [];
  }
}

/** Where the catalog is and how to authenticate. */
export interface CatalogTarget {
  /** `http://127.0.0.1:8080` */
  readonly url: string;
  readonly token?: string | undefined;
  /** Longest wait for an answer's headers, in ms (streams and downloads: only until they start). */
  readonly timeoutMs?: number | undefined;
}

/** One Server-Sent Event. */
export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string | undefined;
}

/** One page of a list, and whether the list goes on. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Items of a list up to a limit, and whether more exist. */
export interface Collected<T> {
  items: T[];
  /** More items exist than were collected. */
  more: boolean;
}

/** The lowest-level cause of a failed fetch (undici wraps it). */
function rootCause(error: unknown): Error & { code?: string } {
  let current = error as Error & { code?: string; cause?: unknown };
  while (current.cause instanceof Error) current = current.cause as typeof current;
  return current;
}

/**
 * Why a request got no answer, in words a person can act on: nothing listens (the catalog is down
 * or still starting), the name does not resolve, or it did not answer in time.
 */
export function unreachable(url: string, error: unknown, timeoutMs: number): CatalogRequestError {
  const cause = rootCause(error);
  const code = cause.code ?? '';
  if (cause.name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') {
    return new CatalogRequestError(
      ClientErrorCode.Timeout,
      0,
      `the catalog at ${url} did not answer within ${Math.round(timeoutMs / 1000)} s (it may be busy or the network slow; --timeout sets the wait)`,
      { cause: error },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new CatalogRequestError(
      ClientErrorCode.UnknownHost,
      0,
      `the catalog's host name in ${url} does not resolve (${code}); check --catalog or VOLBACK_CATALOG_URL`,
      { cause: error },
    );
  }
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') {
    return new CatalogRequestError(
      ClientErrorCode.NotAnswering,
      0,
      `the catalog at ${url} is not answering (${code === 'ECONNREFUSED' ? 'connection refused' : 'connection closed'}): it is not running or still starting; try again in a moment, or check --catalog / VOLBACK_CATALOG_URL`,
      { cause: error },
    );
  }
  return new CatalogRequestError(
    ClientErrorCode.NotAnswering,
    0,
    `the catalog at ${url} is not answering (${cause.message}); check --catalog or VOLBACK_CATALOG_URL`,
    { cause: error },
  );
}

/** The `volback` CLI's side of the catalog API: JSON calls, downloads, and the live stream. */
export class CatalogClient {
  readonly #target: CatalogTarget;
  readonly #timeoutMs: number;

  constructor(target: CatalogTarget) {
    this.#target = { ...target, url: target.url.replace(/\/+$/, '') };
    this.#timeoutMs = target.timeoutMs ?? 30_000;
  }

  get url(): string {
    return this.#target.url;
  }

  async #fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#target.token) headers.set('authorization', `Bearer ${this.#target.token}`);
    // The timeout covers the wait for the answer's headers; a stream or download then runs on.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException('no answer in time', 'TimeoutError')),
      this.#timeoutMs,
    );
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    let res: Response;
    try {
      res = await fetch(`${this.#target.url}${path}`, { ...init, headers, signal });
    } catch (cause) {
      if (init.signal?.aborted) throw cause;
      throw unreachable(
        this.#target.url,
        timeout.signal.aborted ? timeout.signal.reason : cause,
        this.#timeoutMs,
      );
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      let problem: { code?: string; detail?: string; errors?: Array<{ field: string; message: string }> } =
        {};
      try {
        problem = (await res.json()) as typeof problem;
      } catch {
        // not a problem document
      }
      if (!problem.code && res.status !== 401 && res.status !== 403) {
        throw new CatalogRequestError(
          res.status === 503 ? ClientErrorCode.NotAnswering : ClientErrorCode.NotACatalog,
          res.status,
          res.status === 503
            ? `the server at ${this.#target.url} answered 503 Service Unavailable: the catalog is starting or cannot serve yet`
            : `the server at ${this.#target.url} answered ${res.status} ${res.statusText} to ${path.split('?')[0]}: is it a volback catalog? (check --catalog)`,
        );
      }
      // A person at the CLI sets a token, not a header: say how.
      const hint = res.status === 401 ? ' (set --token, VOLBACK_TOKEN or VOLBACK_TOKEN_FILE)' : '';
      throw new CatalogRequestError(
        problem.code ?? `HTTP_${res.status}`,
        res.status,
        problem.detail !== undefined
          ? `${problem.detail}${hint}`
          : `the catalog at ${this.#target.url} refused the request: ${res.status} ${res.statusText}${hint}`,
        { fields: problem.errors ?? [] },
      );
    }
    return res;
  }

  async get<T>(path: string): Promise<T> {
    const res = await this.#fetch(path);
    try {
      return (await res.json()) as T;
    } catch (cause) {
      throw new CatalogRequestError(
        ClientErrorCode.NotACatalog,
        res.status,
        `the server at ${this.#target.url} did not answer with JSON: is it a volback catalog? (check --catalog)`,
        { cause },
      );
    }
  }

  /**
   * Items of a paginated list, page after page, up to `limit` (`Infinity`: all of them); `more`
   * says whether the list goes on past what was collected.
   */
  async collect<T>(path: string, limit: number): Promise<Collected<T>> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const want = Math.min(500, Math.max(1, limit - items.length));
      const page: Page<T> = await this.get(
        `${path}${sep}limit=${want}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor && items.length < limit);
    const more = items.length > limit || cursor !== null;
    if (items.length > limit) items.length = limit;
    return { items, more };
  }

  /** Every item of a paginated list. */
  async all<T>(path: string): Promise<T[]> {
    return (await this.collect<T>(path, Number.POSITIVE_INFINITY)).items;
  }

  async send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const res = await this.#fetch(path, {
      method,
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
        : {}),
    });
    return (await res.json()) as T;
  }

  /** The body of a download as a stream. */
  async download(path: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#fetch(path);
    if (!res.body)
      throw new CatalogRequestError(ClientErrorCode.EmptyAnswer, res.status, 'the catalog sent no body');
    return res.body;
  }

  /**
   * Follows the live stream; `onEvent` returning true ends it. `onOpen` runs once the catalog
   * has subscribed this client (nothing after that moment is missed). Resolves when the stream
   * ends or `signal` aborts.
   */
  async stream(
    path: string,
    onEvent: (event: ServerSentEvent) => boolean | void,
    signal?: AbortSignal,
    onOpen?: () => Promise<void> | void,
  ): Promise<void> {
    const res = await this.#fetch(path, {
      ...(signal ? { signal } : {}),
      headers: { accept: 'text/event-stream' },
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      await onOpen?.();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let id: string | undefined;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length && onEvent({ event, data: data.join('\n'), id })) return;
        }
      }
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    } finally {
      reader.releaseLock();
      void res.body?.cancel().catch(() => undefined);
    }
  }
}
