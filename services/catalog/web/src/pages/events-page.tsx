import { useState } from 'preact/hooks';
import { get, type Host } from '../api.ts';
import { when } from '../format.ts';
import { useData } from './use-data.ts';

type Page = Awaited<ReturnType<typeof get<'/v1/events'>>>;
type Item = Page['items'][number];

const TYPES = ['backup', 'restore', 'snapshot', 'volume', 'container', 'host', 'policy', 'repository'];
const PERIODS: Array<[string, number]> = [
  ['24 hours', 1],
  ['7 days', 7],
  ['30 days', 30],
];

/** The event log (`GET /v1/events`), newest first, filtered by host, volume and type; older pages on demand. */
export function EventsPage() {
  const hosts = useData(async () => (await get('/v1/hosts', { limit: 500 })).items);
  const [host, setHost] = useState('');
  const [volume, setVolume] = useState('');
  const [type, setType] = useState('');
  const [days, setDays] = useState(7);
  const [result, setResult] = useState<{ items: Item[]; matched: number; next: string | null } | undefined>(
    undefined,
  );
  const [query, setQuery] = useState<Record<string, string | number | undefined>>({});
  const [error, setError] = useState<string | undefined>(undefined);

  const load = async (q: Record<string, string | number | undefined>, older?: string) => {
    try {
      const page = await get('/v1/events', { ...q, before: older, limit: 100 });
      const items = [...page.items].reverse(); // the API answers oldest first
      setResult((old) => ({
        items: older && old ? [...old.items, ...items] : items,
        matched: older && old ? old.matched : page.matched,
        next: page.nextCursor,
      }));
      setError(undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const q = {
      since: new Date(Date.now() - days * 86_400_000).toISOString(),
      host: host || undefined,
      volume: volume.trim() || undefined,
      type: type ? `io.volback.${type}.` : undefined,
    };
    setQuery(q);
    void load(q);
  };
  const hostName = new Map((hosts.data ?? []).map((h: Host) => [h.hostId, h.name]));
  return (
    <>
      <h1>Event log</h1>
      <form class="inline-form filters" onSubmit={submit} aria-label="Filter events">
        <label for="events-host">Host</label>
        <select
          id="events-host"
          value={host}
          onChange={(e) => setHost((e.target as HTMLSelectElement).value)}
        >
          <option value="">all</option>
          {(hosts.data ?? []).map((h) => (
            <option key={h.hostId} value={h.hostId}>
              {h.name}
            </option>
          ))}
        </select>
        <label for="events-volume">Volume</label>
        <input
          id="events-volume"
          value={volume}
          onInput={(e) => setVolume((e.target as HTMLInputElement).value)}
        />
        <label for="events-type">Type</label>
        <select
          id="events-type"
          value={type}
          onChange={(e) => setType((e.target as HTMLSelectElement).value)}
        >
          <option value="">all</option>
          {TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <label for="events-period">Within</label>
        <select
          id="events-period"
          value={String(days)}
          onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))}
        >
          {PERIODS.map(([label, d]) => (
            <option key={d} value={String(d)}>
              {label}
            </option>
          ))}
        </select>
        <button type="submit">Show</button>
      </form>
      {error && <p role="alert">Could not read the event log: {error}</p>}
      {result && (
        <>
          <p role="status" class="message">
            {result.matched} matching events; showing the newest {result.items.length}.
          </p>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Events">
            <table data-testid="event-log">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Type</th>
                  <th scope="col">Host</th>
                  <th scope="col">Volume</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {result.items.map(({ seq, event }) => {
                  const data = (event['data'] ?? {}) as Record<string, unknown>;
                  const h = typeof data['hostId'] === 'string' ? data['hostId'] : '';
                  return (
                    <tr key={seq} data-type={String(event['type'])}>
                      <td>{when(event['time'] as string)}</td>
                      <td>
                        <code>{String(event['type']).replace(/^io\.volback\./, '')}</code>
                      </td>
                      <td>{hostName.get(h) ?? h}</td>
                      <td>{typeof data['volumeName'] === 'string' ? data['volumeName'] : ''}</td>
                      <td>{details(data)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {result.next && (
            <p>
              <button type="button" class="secondary" onClick={() => void load(query, result.next!)}>
                Older events
              </button>
            </p>
          )}
        </>
      )}
    </>
  );
}

/** The few fields of an event a person scans for: ids of work, reasons, error codes. */
function details(data: Record<string, unknown>): string {
  const keys = ['backupId', 'restoreId', 'snapshotId', 'policyId', 'code', 'reason', 'trigger'];
  return keys
    .filter((k) => typeof data[k] === 'string')
    .map((k) => `${k}: ${k === 'snapshotId' ? String(data[k]).slice(0, 8) : String(data[k])}`)
    .join(', ');
}
