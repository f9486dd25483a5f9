import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { backUpSetNow, follow, get, type BackupSet, type SetBackup } from '../api.ts';
import { bytes, setHref, setRestoreHref, snapshotHref, volumeHref, when } from '../format.ts';
import { useData } from './use-data.ts';

const DONE = new Set(['Completed', 'PartiallyFailed', 'Failed']);

/** `shop` for `compose:shop`, and what gathers it. */
function setLabel(setId: string): { name: string; source: string } {
  const [kind, ...rest] = setId.split(':');
  const name = rest.join(':') || setId;
  return { name, source: kind === 'compose' ? 'compose project' : 'volback.group' };
}

function duration(b: SetBackup): string {
  if (!b.startedAt || !b.finishedAt) return '—';
  return `${((Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000).toFixed(1)} s`;
}

/** The member snapshots of a set backup, each linked to its snapshot browser. */
function Members({ backup }: { backup: SetBackup }) {
  return (
    <ul class="members">
      {backup.members.map((m) => (
        <li key={m.volumeName}>
          {m.volumeName}:{' '}
          <a
            href={snapshotHref(m.snapshotId)}
            aria-label={`Browse snapshot ${m.snapshotId.slice(0, 8)} of ${m.volumeName}`}
          >
            <code>{m.snapshotId.slice(0, 8)}</code>
          </a>
        </li>
      ))}
      {backup.failed.map((f) => (
        <li key={f.volumeName} class="member-failed">
          {f.volumeName}: no snapshot ({f.code}: {f.reason})
        </li>
      ))}
    </ul>
  );
}

function VolumeLinks({ hostId, volumes }: { hostId: string; volumes: string[] }) {
  return (
    <>
      {volumes.map((v, i) => (
        <Fragment key={v}>
          {i > 0 && ', '}
          <a href={volumeHref(hostId, v)}>{v}</a>
        </Fragment>
      ))}
    </>
  );
}

/**
 * Applications: the backup sets (compose projects and `volback.group` labels) per host, their
 * member volumes and containers, and the last set backup with its member snapshots.
 */
export function SetsPage() {
  const { data, error, reload } = useData(async () => {
    const [sets, hosts] = await Promise.all([get('/v1/sets'), get('/v1/hosts', { limit: 500 })]);
    return { sets: sets.items, hostName: new Map(hosts.items.map((h) => [h.hostId, h.name])) };
  });
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    void follow(
      { type: 'io.volback.backup.set-,io.volback.container.,io.volback.volume.' },
      () => (timer ??= setTimeout(() => ((timer = undefined), reload()), 1000)),
      abort.signal,
    );
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, []);
  if (error) return <p role="alert">Could not load the applications: {error}</p>;
  if (!data) return <p>Loading…</p>;
  return (
    <>
      <h1>Applications</h1>
      <p class="message">
        Volumes of one compose project (<code>com.docker.compose.project</code>) or one{' '}
        <code>volback.group</code> label are backed up together: their containers are quiesced once and every
        volume is snapshotted at the same point in time.
      </p>
      {data.sets.length === 0 ? (
        <p>No application: no container or volume carries a compose project or volback.group label.</p>
      ) : (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Applications">
          <table data-testid="sets">
            <thead>
              <tr>
                <th scope="col">Application</th>
                <th scope="col">Host</th>
                <th scope="col">Containers</th>
                <th scope="col">Volumes</th>
                <th scope="col">Last set backup</th>
                <th scope="col">Member snapshots</th>
              </tr>
            </thead>
            <tbody>
              {data.sets.map((s: BackupSet) => {
                const label = setLabel(s.setId);
                return (
                  <tr key={`${s.hostId}/${s.setId}`} data-set={s.setId}>
                    <th scope="row">
                      <a href={setHref(s.hostId, s.setId)}>{label.name}</a>{' '}
                      <span class="message">({label.source})</span>
                    </th>
                    <td>{data.hostName.get(s.hostId) ?? s.hostId}</td>
                    <td>{s.containers.join(', ') || '—'}</td>
                    <td>
                      <VolumeLinks hostId={s.hostId} volumes={s.volumes} />
                    </td>
                    <td>
                      {s.lastBackup ? (
                        <>
                          <span class={`phase phase-${s.lastBackup.phase}`}>{s.lastBackup.phase}</span>{' '}
                          {when(s.lastBackup.finishedAt ?? s.lastBackup.startedAt)}
                        </>
                      ) : (
                        'never'
                      )}
                    </td>
                    <td>{s.lastBackup ? <Members backup={s.lastBackup} /> : '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** One set: its members, back it up now, its backups with their member snapshots, restore it. */
export function SetPage(props: { hostId: string; setId: string; canWrite: boolean }) {
  const { hostId, setId, canWrite } = props;
  const { data, error, reload } = useData(async () => {
    const [set, host] = await Promise.all([
      get('/v1/sets/{setId}', { hostId }, { setId }),
      get('/v1/hosts/{hostId}', {}, { hostId }),
    ]);
    return { ...set, hostName: host.name };
  }, [hostId, setId]);
  const [sent, setSent] = useState<{ backupId?: string; problem?: string } | undefined>(undefined);
  if (error) return <p role="alert">Could not load the application: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const label = setLabel(setId);
  const start = async () => {
    try {
      const accepted = await backUpSetNow(hostId, setId);
      setSent({ backupId: accepted.backupId });
    } catch (e) {
      setSent({ problem: `Could not start the set backup: ${e instanceof Error ? e.message : String(e)}` });
    }
  };
  return (
    <>
      <h1>
        {label.name}{' '}
        {data.lastBackup && (
          <span class={`phase phase-${data.lastBackup.phase}`}>{data.lastBackup.phase}</span>
        )}
      </h1>
      <dl class="facts">
        <dt>Gathered by</dt>
        <dd>
          {label.source} <code>{setId}</code>
        </dd>
        <dt>Host</dt>
        <dd>{data.hostName}</dd>
        <dt>Containers</dt>
        <dd>{data.containers.join(', ') || 'none now'}</dd>
        <dt>Volumes</dt>
        <dd>{data.volumes.length ? <VolumeLinks hostId={hostId} volumes={data.volumes} /> : 'none now'}</dd>
        <dt>Last restorable</dt>
        <dd>{data.lastRestorable ? when(data.lastRestorable.finishedAt) : 'none yet'}</dd>
      </dl>
      {canWrite && (
        <p class="actions">
          {data.volumes.length > 0 && (
            <button type="button" onClick={() => void start()}>
              Back up this set now
            </button>
          )}{' '}
          {data.lastRestorable && (
            <a class="button" href={setRestoreHref(hostId, setId)}>
              Restore this set…
            </a>
          )}
        </p>
      )}
      {sent?.problem && <p role="alert">{sent.problem}</p>}
      {sent?.backupId && (
        <SetBackupProgress
          key={sent.backupId}
          hostId={hostId}
          setId={setId}
          backupId={sent.backupId}
          volumes={data.volumes}
          onDone={reload}
        />
      )}
      <section aria-labelledby="set-backups-title">
        <h2 id="set-backups-title">Set backups</h2>
        {data.backups.length === 0 ? (
          <p>No backup of this set yet.</p>
        ) : (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Set backups">
            <table data-testid="set-backups">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Quiesced</th>
                  <th scope="col">Member snapshots</th>
                </tr>
              </thead>
              <tbody>
                {data.backups.map((b) => (
                  <tr key={b.backupId} data-set-backup={b.backupId}>
                    <td>{when(b.startedAt)}</td>
                    <td>
                      <span class={`phase phase-${b.phase}`}>{b.phase}</span>
                    </td>
                    <td>{duration(b)}</td>
                    <td>{b.quiescedContainers.join(', ') || 'none'}</td>
                    <td>
                      <Members backup={b} />
                      {b.error && `${b.error.code}: ${b.error.reason}`}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

interface MemberState {
  state: string;
  files?: number;
  bytes?: number;
}

/**
 * A set backup as it runs: each volume waiting, backing up (files and bytes from the progress
 * stream) or done, from the host's backup events; the outcome from `GET /v1/set-backups/{id}`.
 */
function SetBackupProgress(props: {
  hostId: string;
  setId: string;
  backupId: string;
  volumes: string[];
  onDone: () => void;
}) {
  const { hostId, setId, backupId } = props;
  const [phase, setPhase] = useState('Requested');
  const [members, setMembers] = useState<Record<string, MemberState>>({});
  const [outcome, setOutcome] = useState<SetBackup | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    // Member backups have ids `<set backup id>.<volume>`: their events and progress are this set's.
    const volumeOf = new Map<string, string>();
    const settle = async () => {
      // The set's backups, not `/v1/set-backups/{id}`: that is a 404 until the agent has started it.
      const set = await get('/v1/sets/{setId}', { hostId }, { setId }).catch(() => undefined);
      const b = set?.backups.find((x) => x.backupId === backupId);
      if (!b || abort.signal.aborted) return;
      setPhase(b.phase);
      if (DONE.has(b.phase)) {
        setOutcome(b);
        abort.abort();
        props.onDone();
      }
    };
    const poll = setInterval(() => void settle(), 2000);
    abort.signal.addEventListener('abort', () => clearInterval(poll));
    void follow(
      { host: hostId, type: 'io.volback.backup.', progress: 'true' },
      (m) => {
        const d = m.data as Record<string, unknown>;
        if (m.event === 'progress') {
          const volume = volumeOf.get(String(d['workId']));
          if (volume)
            setMembers((old) => ({
              ...old,
              [volume]: { state: 'backing up', files: Number(d['files']), bytes: Number(d['bytes']) },
            }));
          return;
        }
        const event = (m.data as { data?: Record<string, unknown> }).data ?? {};
        const id = String(event['backupId'] ?? '');
        if (id === backupId) return void settle();
        if (!id.startsWith(`${backupId}.`) || typeof event['volumeName'] !== 'string') return;
        const volume = event['volumeName'];
        volumeOf.set(id, volume);
        const what = m.event.split('.')[3] ?? '';
        const state = what === 'completed' ? 'done' : what === 'failed' ? 'failed' : 'backing up';
        setMembers((old) => ({ ...old, [volume]: { ...old[volume], state } }));
      },
      abort.signal,
      (up) => up && void settle(),
    );
    return () => abort.abort();
  }, [hostId, setId, backupId]);
  return (
    <section aria-labelledby="set-progress-title" data-set-backup-live={backupId}>
      <h2 id="set-progress-title">Backing up the set</h2>
      <p>
        Set backup <code>{backupId}</code>: <span class={`phase phase-${phase}`}>{phase}</span>
      </p>
      {!outcome && (
        <ul class="work" data-testid="set-backup-members">
          {props.volumes.map((v) => {
            const s = members[v];
            return (
              <li key={v} class="work-item">
                <strong>{v}</strong>: {s?.state ?? 'waiting'}
                {s?.state === 'backing up' && (
                  <>
                    {' '}
                    <progress aria-label={`backup progress of ${v}`} /> {s.files ?? 0} files, {bytes(s.bytes)}
                  </>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {outcome && (
        <div role="status" class="message" data-testid="set-backup-outcome">
          <p>
            {outcome.phase === 'Completed'
              ? `Every volume has a snapshot of the same point in time (${duration(outcome)}).`
              : outcome.phase === 'PartiallyFailed'
                ? 'Some volumes have no snapshot of this point in time:'
                : `The set backup failed: ${outcome.error?.code}: ${outcome.error?.reason}`}
          </p>
          <Members backup={outcome} />
        </div>
      )}
    </section>
  );
}
