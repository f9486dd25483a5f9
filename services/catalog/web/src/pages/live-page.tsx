import { useEffect, useState } from 'preact/hooks';
import { follow, get, type Backup, type LiveMessage, type Restore } from '../api.ts';
import { bytes, volumeHref, when } from '../format.ts';

interface Progress {
  phase: string;
  files: number;
  bytes: number;
  bytesAdded: number;
  at: string;
  /** Bytes per second since the previous progress message. */
  rate: number | undefined;
}

const WORK_TYPES = 'io.volback.backup.,io.volback.restore.';

/** Running and queued backups and restores, with live progress from the event stream. */
export function LivePage() {
  const [work, setWork] = useState<{ backups: Backup[]; restores: Restore[] } | undefined>(undefined);
  const [progress, setProgress] = useState<Record<string, Progress>>({});
  const [recent, setRecent] = useState<LiveMessage[]>([]);
  const [connected, setConnected] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  useEffect(() => {
    const load = async () => {
      try {
        const [running, queued, restoring, waiting] = await Promise.all([
          get('/v1/backups', { phase: 'Running', limit: 100 }),
          get('/v1/backups', { phase: 'Queued', limit: 100 }),
          get('/v1/restores', { phase: 'Running', limit: 100 }),
          get('/v1/restores', { phase: 'Queued', limit: 100 }),
        ]);
        setWork({
          backups: [...running.items, ...queued.items],
          restores: [...restoring.items, ...waiting.items],
        });
        setError(undefined);
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      }
    };
    const abort = new AbortController();
    // The stream first, then the lists: a change between the two is seen by the stream.
    void follow(
      { type: WORK_TYPES, progress: 'true' },
      (m) => {
        if (m.event === 'progress') {
          const d = m.data as unknown as Progress & { workId: string };
          setProgress((old) => {
            const before = old[d.workId];
            const seconds = before ? (Date.parse(d.at) - Date.parse(before.at)) / 1000 : 0;
            const rate = before && seconds > 0 ? (d.bytes - before.bytes) / seconds : before?.rate;
            return { ...old, [d.workId]: { ...d, rate } };
          });
          return;
        }
        setRecent((old) => [m, ...old].slice(0, 20));
        void load();
      },
      abort.signal,
      (up) => {
        setConnected(up);
        if (up) void load();
      },
    );
    return () => abort.abort();
  }, []);

  return (
    <>
      <h1>Live activity</h1>
      <p role="status" class={connected ? 'live-on' : 'live-off'}>
        {connected ? 'Following the live event stream.' : 'Connecting to the live event stream…'}
      </p>
      {error && <p role="alert">Could not load the work in progress: {error}</p>}
      <section aria-labelledby="running-title">
        <h2 id="running-title">Backups and restores in progress</h2>
        {work && work.backups.length + work.restores.length === 0 && <p>Nothing is running.</p>}
        <ul class="work">
          {work?.backups.map((b) => (
            <WorkItem
              key={b.backupId}
              id={b.backupId}
              title={
                <>
                  Backup of <a href={volumeHref(b.hostId, b.volumeName)}>{b.volumeName}</a>
                </>
              }
              phase={b.phase}
              since={b.startedAt ?? b.createdAt}
              progress={progress[b.backupId]}
            />
          ))}
          {work?.restores.map((r) => (
            <WorkItem
              key={r.restoreId}
              id={r.restoreId}
              title={<>Restore of snapshot {r.snapshotId.slice(0, 8)}</>}
              phase={r.phase}
              since={r.startedAt ?? r.createdAt}
              progress={progress[r.restoreId]}
            />
          ))}
        </ul>
      </section>
      <section aria-labelledby="recent-title">
        <h2 id="recent-title">Latest events</h2>
        <ol class="events" data-testid="live-events">
          {recent.map((m, i) => (
            <li key={i}>
              <code>{m.event.replace(/^io\.volback\./, '')}</code>{' '}
              {String((m.data['data'] as Record<string, unknown> | undefined)?.['volumeName'] ?? '')}{' '}
              {when(m.data['time'] as string | undefined)}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}

function WorkItem(props: {
  id: string;
  title: preact.ComponentChildren;
  phase: string;
  since: string;
  progress: Progress | undefined;
}) {
  const p = props.progress;
  return (
    <li class="work-item" data-work={props.id}>
      <div>
        <strong>{props.title}</strong> <span class={`phase phase-${props.phase}`}>{props.phase}</span> since{' '}
        {when(props.since)}
      </div>
      {p ? (
        <div>
          <progress aria-label={`progress of ${props.id}`} />{' '}
          <span data-testid="progress-text">
            {p.phase}: {p.files} files, {bytes(p.bytes)}
            {p.bytesAdded ? `, ${bytes(p.bytesAdded)} new` : ''}
            {p.rate !== undefined ? `, ${bytes(p.rate)}/s` : ''}
          </span>
        </div>
      ) : (
        <div>waiting for progress…</div>
      )}
    </li>
  );
}
