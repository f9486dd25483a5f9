/** A failed call to the catalog: the problem's code and status, and the exit code they map to. */
export class CatalogRequestError extends Error {
  override readonly name = 'CatalogRequestError';
  readonly code: string;
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = status;
  }
}

/** Where the catalog is and how to authenticate. */
export interface CatalogTarget {
  /** `http://127.0.0.1:8080` */
  readonly url: string;
  readonly token?: string | undefined;
}

/** One Server-Sent Event. */
export interface ServerSentEvent {
  event: string;
  data: string;
}

/** The `volback` CLI's side of the catalog API: JSON calls, downloads, and the live stream. */
export class CatalogClient {
  readonly #target: CatalogTarget;

  constructor(target: CatalogTarget) {
    this.#target = { ...target, url: target.url.replace(/\/+$/, '') };
  }

  async #fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#target.token) headers.set('authorization', `Bearer ${this.#target.token}`);
    let res: Response;
    try {
      res = await fetch(`${this.#target.url}${path}`, { ...init, headers });
    } catch (cause) {
      throw new CatalogRequestError(
        'VOLBACK_CLI_CATALOG_UNREACHABLE',
        0,
        `the catalog at ${this.#target.url} does not answer (${(cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message}); set --catalog or VOLBACK_CATALOG_URL`,
        { cause },
      );
    }
    if (!res.ok) {
      let problem: { code?: string; detail?: string; errors?: Array<{ field: string; message: string }> } =
        {};
      try {
        problem = (await res.json()) as typeof problem;
      } catch {
        // not a problem document
      }
      throw new CatalogRequestError(
        problem.code ?? `HTTP_${res.status}`,
        res.status,
        problem.detail ?? `${res.status} ${res.statusText}`,
      );
    }
    return res;
  }

  async get<T>(path: string): Promise<T> {
    return (await (await this.#fetch(path)).json()) as T;
  }

  /** Every item of a paginated list. */
  async all<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page: { items: T[]; nextCursor: string | null } = await this.get(
        `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
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
      throw new CatalogRequestError('VOLBACK_CLI_EMPTY_ANSWER', res.status, 'the catalog sent no body');
    return res.body;
  }

  /** Follows the live stream; `onEvent` returning true ends it. Resolves when it ends or `signal` aborts. */
  async stream(
    path: string,
    onEvent: (event: ServerSentEvent) => boolean | void,
    signal?: AbortSignal,
  ): Promise<void> {
    const res = await this.#fetch(path, {
      ...(signal ? { signal } : {}),
      headers: { accept: 'text/event-stream' },
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length && onEvent({ event, data: data.join('\n') })) return;
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
