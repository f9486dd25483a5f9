import { performance } from 'node:perf_hooks';

/** Latency of one API query over its samples. */
export interface QueryLatency {
  name: string;
  samples: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Page {
  items: Array<Record<string, unknown>>;
  nextCursor?: string | null;
}

/** One list or search query: its URL for sample `i`, and what its answer must hold. */
interface Query {
  name: string;
  url: (i: number) => string | Promise<string>;
  check: (body: unknown, i: number) => void;
}

function check(query: Query, url: string, body: unknown, i: number): void {
  try {
    query.check(body, i);
  } catch (error) {
    throw new Error(`GET ${url}: ${(error as Error).message}`, { cause: error });
  }
}

function fail(query: string, message: string): never {
  throw new Error(`${query}: ${message}`);
}

const pageOf = (query: string, body: unknown, min = 1): Page => {
  const page = body as Page;
  if (!Array.isArray(page.items)) fail(query, `no items in ${JSON.stringify(body).slice(0, 200)}`);
  if (page.items.length < min) fail(query, `${page.items.length} items, expected at least ${min}`);
  return page;
};

const newestFirst = (query: string, items: Array<Record<string, unknown>>, field: string) => {
  for (let k = 1; k < items.length; k++)
    if (String(items[k - 1]![field]) < String(items[k]![field]))
      fail(query, `not newest first by ${field} at item ${k}`);
};

/**
 * Sends every list and search query of the API `samples` times (over real HTTP, keep-alive, one at
 * a time) against a catalog that holds a generated fleet, checks each answer, and returns the
 * latency percentiles per query.
 */
export async function measureQueries(options: {
  baseUrl: string;
  samples: number;
  hostIds: string[];
  volumeNames: string[];
  snapshots: number;
  /**
   * Where `GET /v1/events` starts: the log's recent past (a generated log is stored within
   * minutes, not over the year its events describe, so "since an hour ago" would be all of it).
   */
  eventsSince: Date;
  headers?: Record<string, string>;
}): Promise<QueryLatency[]> {
  const { hostIds, volumeNames } = options;
  const host = (i: number) => hostIds[(i * 7919) % hostIds.length]!;
  const volume = (i: number) => volumeNames[(i * 104_729) % volumeNames.length]!;
  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${options.baseUrl}${path}`, { headers: options.headers ?? {} });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  // Deep pages: a cursor taken from the first page (following it is what a client does).
  const deepCursor = async (path: string): Promise<string> => {
    let cursor: string | null | undefined;
    let url = path;
    for (let k = 0; k < 5; k++) {
      const page = (await get(url)) as Page;
      cursor = page.nextCursor;
      if (!cursor) break;
      url = `${path}&cursor=${encodeURIComponent(cursor)}`;
    }
    return url;
  };
  const perVolume = Math.floor(options.snapshots / (hostIds.length * volumeNames.length));
  const queries: Query[] = [
    {
      name: 'status',
      url: () => '/v1/status',
      check: (b) => {
        if (typeof b !== 'object' || b === null) fail('status', 'not an object');
      },
    },
    { name: 'hosts', url: () => '/v1/hosts?limit=100', check: (b) => void pageOf('hosts', b) },
    {
      name: 'volumes',
      url: () => '/v1/volumes?limit=100',
      check: (b) => void pageOf('volumes', b, Math.min(100, hostIds.length * volumeNames.length)),
    },
    {
      name: 'volumes of a host',
      url: (i) => `/v1/volumes?host=${host(i)}&limit=100`,
      check: (b) => void pageOf('volumes of a host', b, volumeNames.length),
    },
    {
      name: 'volumes at risk',
      url: () => '/v1/volumes?status=at-risk&limit=100',
      check: (b) => void pageOf('volumes at risk', b, 0),
    },
    {
      name: 'volume search',
      url: (i) => `/v1/volumes?search=${volume(i).slice(-2)}&limit=100`,
      check: (b) => void pageOf('volume search', b),
    },
    {
      name: 'volume',
      url: (i) => `/v1/hosts/${host(i)}/volumes/${volume(i)}`,
      check: (b, i) => {
        if ((b as { volumeName?: string }).volumeName !== volume(i)) fail('volume', 'another volume');
      },
    },
    {
      name: 'snapshots of a volume',
      url: (i) => `/v1/hosts/${host(i)}/volumes/${volume(i)}/snapshots?limit=50`,
      check: (b) => {
        // One backup in `failEvery` failed: a volume has at least its share less those.
        const page = pageOf('snapshots of a volume', b, Math.min(50, Math.ceil(perVolume / 2)));
        newestFirst('snapshots of a volume', page.items, 'time');
      },
    },
    {
      name: 'snapshots',
      url: () => '/v1/snapshots?limit=100',
      check: (b) => newestFirst('snapshots', pageOf('snapshots', b, 100).items, 'time'),
    },
    {
      name: 'snapshots of a host',
      url: (i) => `/v1/snapshots?host=${host(i)}&limit=100`,
      check: (b) => newestFirst('snapshots of a host', pageOf('snapshots of a host', b, 100).items, 'time'),
    },
    {
      name: 'snapshots, page 6',
      url: () => deepCursor('/v1/snapshots?limit=100'),
      check: (b) => void pageOf('snapshots, page 6', b, 100),
    },
    {
      name: 'backups',
      url: () => '/v1/backups?limit=100',
      check: (b) => void pageOf('backups', b, 100),
    },
    {
      name: 'backups of a volume',
      url: (i) => `/v1/backups?host=${host(i)}&volume=${volume(i)}&limit=50`,
      check: (b) => void pageOf('backups of a volume', b, 1),
    },
    {
      name: 'failed backups',
      url: () => '/v1/backups?phase=Failed&limit=100',
      check: (b) => void pageOf('failed backups', b, 1),
    },
    {
      name: 'backups since a day',
      url: () => `/v1/backups?since=${new Date(Date.now() - 2 * 86_400_000).toISOString()}&limit=100`,
      check: (b) => void pageOf('backups since a day', b, 0),
    },
    { name: 'restores', url: () => '/v1/restores?limit=100', check: (b) => void pageOf('restores', b, 0) },
    {
      name: 'containers',
      url: () => '/v1/containers?limit=100',
      check: (b) => void pageOf('containers', b, 0),
    },
    { name: 'policies', url: () => '/v1/policies?limit=100', check: (b) => void pageOf('policies', b, 0) },
    {
      name: 'repository operations',
      url: () => '/v1/repository/operations?limit=100',
      check: (b) => void pageOf('repository operations', b, 0),
    },
    {
      name: 'recent events of a host',
      url: (i) => `/v1/events?since=${options.eventsSince.toISOString()}&host=${host(i)}&limit=100`,
      check: (b) => void pageOf('recent events of a host', b, 1),
    },
  ];
  const results: QueryLatency[] = [];
  for (const query of queries) {
    const times: number[] = [];
    // One unmeasured request first: the first use of a statement plans it.
    const warm = await query.url(0);
    check(query, warm, await get(warm), 0);
    for (let i = 0; i < options.samples; i++) {
      const url = await query.url(i);
      const t = performance.now();
      const body = await get(url);
      times.push(performance.now() - t);
      check(query, url, body, i);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
    results.push({
      name: query.name,
      samples: times.length,
      p50Ms: at(0.5),
      p95Ms: at(0.95),
      p99Ms: at(0.99),
      maxMs: times[times.length - 1]!,
    });
  }
  return results;
}
