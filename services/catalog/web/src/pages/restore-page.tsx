import { useEffect, useState } from 'preact/hooks';
import { download, follow, get, startRestore, type LiveMessage, type Volume } from '../api.ts';
import { bytes, snapshotHref, volumeHref, when } from '../format.ts';
import { useData } from './use-data.ts';

type Target = 'new-volume' | 'existing-volume' | 'tar';

const BUSY_STATES = new Set(['running', 'paused', 'restarting']);

/**
 * The restore wizard: what (the snapshot or a path in it), where (a new volume, an existing one —
 * naming the containers that would be stopped — or a tar download), a confirmation that names
 * what will change, then the restore's live progress from the event stream.
 */
export function RestorePage(props: { snapshotId: string; path: string }) {
  const { data, error } = useData(async () => {
    const snapshot = await get('/v1/snapshots/{snapshotId}', {}, { snapshotId: props.snapshotId });
    const [host, volumes] = await Promise.all([
      get('/v1/hosts/{hostId}', {}, { hostId: snapshot.hostId }),
      get('/v1/volumes', { host: snapshot.hostId, limit: 500 }),
    ]);
    return { snapshot, hostName: host.name, volumes: volumes.items.filter((v) => v.removedAt === null) };
  }, [props.snapshotId]);
  const [step, setStep] = useState<'choose' | 'confirm' | 'running'>('choose');
  const [path, setPath] = useState(props.path);
  const [target, setTarget] = useState<Target>('new-volume');
  const [newName, setNewName] = useState('');
  const [existingName, setExistingName] = useState('');
  const [targetPath, setTargetPath] = useState('');
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [restoreId, setRestoreId] = useState<string | undefined>(undefined);

  if (error) return <p role="alert">Could not load the snapshot: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const { snapshot, hostName, volumes } = data;
  const newVolume = newName || `${snapshot.volumeName}-restored-${snapshot.shortId}`;
  const existing: Volume | undefined = volumes.find(
    (v) => v.volumeName === (existingName || snapshot.volumeName),
  );
  const stopped = existing?.usedBy.filter((u) => BUSY_STATES.has(u.containerState)) ?? [];
  const what = path === '/' || path === '' ? 'the whole snapshot' : path;
  const into = target === 'new-volume' ? newVolume : existing?.volumeName;

  const next = (e: Event) => {
    e.preventDefault();
    setProblem(undefined);
    if (target === 'existing-volume' && !existing) return setProblem('Choose the volume to restore into.');
    if (target === 'new-volume' && volumes.some((v) => v.volumeName === newVolume))
      return setProblem(
        `The host already has a volume ${newVolume}: choose another name, or restore into it.`,
      );
    setStep('confirm');
  };
  const request = (dryRun: boolean) => ({
    snapshotId: snapshot.snapshotId,
    target:
      target === 'new-volume'
        ? { kind: 'new-volume' as const, volumeName: newVolume }
        : {
            kind: 'existing-volume' as const,
            volumeName: existing!.volumeName,
            stopContainers: stopped.length > 0,
          },
    ...(path && path !== '/' ? { path } : {}),
    ...(targetPath && targetPath !== '/' ? { targetPath } : {}),
    dryRun,
    requestedBy: 'dashboard',
  });
  const run = async () => {
    setProblem(undefined);
    try {
      if (target === 'tar') {
        await download(`/v1/snapshots/${snapshot.snapshotId}/tar`, { path: path || '/' });
        setProblem(undefined);
        setStep('choose');
        return;
      }
      const accepted = await startRestore(request(false));
      setRestoreId(accepted.restoreId);
      setStep('running');
    } catch (err) {
      setProblem(`The catalog refused the restore: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  return (
    <>
      <h1>Restore</h1>
      <p>
        From snapshot <a href={snapshotHref(snapshot.snapshotId)}>{snapshot.shortId}</a> of{' '}
        <a href={volumeHref(snapshot.hostId, snapshot.volumeName)}>{snapshot.volumeName}</a>, taken{' '}
        {when(snapshot.time)}
        {snapshot.stats ? ` (${bytes(snapshot.stats.totalBytes)})` : ''}.
      </p>
      {step === 'choose' && (
        <form class="wizard" onSubmit={next}>
          <fieldset>
            <legend>What</legend>
            <label for="restore-path">Path in the volume (/ for everything)</label>
            <input
              id="restore-path"
              value={path}
              onInput={(e) => setPath((e.target as HTMLInputElement).value)}
            />
          </fieldset>
          <fieldset>
            <legend>Where</legend>
            {(
              [
                ['new-volume', 'Into a new volume'],
                ['existing-volume', 'Into an existing volume (replacing what the snapshot holds)'],
                ['tar', 'Download as a tar file'],
              ] as const
            ).map(([value, label]) => (
              <div key={value}>
                <input
                  type="radio"
                  id={`target-${value}`}
                  name="target"
                  value={value}
                  checked={target === value}
                  onChange={() => setTarget(value)}
                />{' '}
                <label for={`target-${value}`}>{label}</label>
              </div>
            ))}
            {target === 'new-volume' && (
              <>
                <label for="new-volume">Name of the new volume</label>
                <input
                  id="new-volume"
                  value={newVolume}
                  onInput={(e) => setNewName((e.target as HTMLInputElement).value)}
                />
              </>
            )}
            {target === 'existing-volume' && (
              <>
                <label for="existing-volume">Volume on this host</label>
                <select
                  id="existing-volume"
                  value={existing?.volumeName ?? ''}
                  onChange={(e) => setExistingName((e.target as HTMLSelectElement).value)}
                >
                  {volumes.map((v) => (
                    <option key={v.volumeName} value={v.volumeName}>
                      {v.volumeName}
                    </option>
                  ))}
                </select>
                <p data-testid="containers-stopped">
                  {stopped.length
                    ? `Containers that will be stopped during the restore and started again after: ${stopped.map((u) => u.containerName).join(', ')}.`
                    : 'No running container uses this volume: none will be stopped.'}
                </p>
              </>
            )}
            {target !== 'tar' && (
              <>
                <label for="target-path">Directory in the volume to restore into (optional)</label>
                <input
                  id="target-path"
                  placeholder="/"
                  value={targetPath}
                  onInput={(e) => setTargetPath((e.target as HTMLInputElement).value)}
                />
              </>
            )}
          </fieldset>
          <button type="submit">Review</button>
        </form>
      )}
      {step === 'confirm' && (
        <section aria-labelledby="confirm-title" class="confirm">
          <h2 id="confirm-title">Confirm</h2>
          <p data-testid="confirmation">
            {target === 'tar'
              ? `Download ${what} of snapshot ${snapshot.shortId} as a tar file. Nothing on the host changes.`
              : `Restore ${what} of snapshot ${snapshot.shortId} into ${
                  target === 'new-volume' ? `the new volume ${into}` : `the existing volume ${into}`
                }${targetPath && targetPath !== '/' ? `, below ${targetPath}` : ''} on host ${hostName}. ${
                  target === 'new-volume'
                    ? 'The volume is created; nothing else changes.'
                    : `Files the snapshot holds replace those of the same name there; other files stay. ${
                        stopped.length
                          ? `Stopped during the restore, then started again: ${stopped.map((u) => u.containerName).join(', ')}.`
                          : 'No container is stopped.'
                      }`
                }`}
          </p>
          {target === 'existing-volume' && <DryRun request={() => request(true)} />}
          <p>
            <button type="button" onClick={() => void run()}>
              {target === 'tar' ? 'Download' : 'Restore now'}
            </button>{' '}
            <button type="button" class="secondary" onClick={() => setStep('choose')}>
              Back
            </button>
          </p>
        </section>
      )}
      {problem && <p role="alert">{problem}</p>}
      {step === 'running' && restoreId && <RestoreProgress restoreId={restoreId} />}
    </>
  );
}

type Plan = NonNullable<Awaited<ReturnType<typeof get<'/v1/restores/{restoreId}'>>>['plan']>;

/** A dry run of the restore (nothing written): the files it would write, replace and leave alone. */
function DryRun({ request }: { request: () => Parameters<typeof startRestore>[0] }) {
  const [state, setState] = useState<{ busy?: boolean; plan?: Plan; error?: string }>({});
  const preview = async () => {
    setState({ busy: true });
    try {
      const { restoreId } = await startRestore(request());
      for (;;) {
        const r = await get('/v1/restores/{restoreId}', {}, { restoreId }).catch(() => undefined);
        if (r?.phase === 'Completed' && r.plan) return setState({ plan: r.plan });
        if (r?.phase === 'Failed') return setState({ error: `${r.error?.code}: ${r.error?.reason}` });
        await new Promise((done) => setTimeout(done, 1000));
      }
    } catch (e) {
      setState({ error: e instanceof Error ? e.message : String(e) });
    }
  };
  const part = (label: string, entries: Plan['written']) => (
    <li>
      {label}: {entries.count} ({bytes(entries.bytes)})
      {entries.paths.length > 0 && (
        <>
          {' '}
          — <code>{entries.paths.slice(0, 20).join(', ')}</code>
          {entries.count > 20 ? ', …' : ''}
        </>
      )}
    </li>
  );
  return (
    <div data-testid="dry-run" aria-live="polite">
      <p>
        <button type="button" class="secondary" disabled={state.busy} onClick={() => void preview()}>
          {state.busy ? 'Asking the agent…' : 'Preview the changes (dry run)'}
        </button>
      </p>
      {state.error && <p role="alert">The dry run failed: {state.error}</p>}
      {state.plan && (
        <ul>
          {part('Written new', state.plan.written)}
          {part('Replaced', state.plan.replaced)}
          {part('Left alone (the restore never removes)', state.plan.leftAlone)}
        </ul>
      )}
    </div>
  );
}

/** A restore's phase and progress, from `GET /v1/events/stream?work=<restoreId>`. */
function RestoreProgress({ restoreId }: { restoreId: string }) {
  const [phase, setPhase] = useState('Queued');
  const [progress, setProgress] = useState<{ files: number; bytes: number } | undefined>(undefined);
  const [outcome, setOutcome] = useState<string | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    // The record is the catalog's: read it after each event, and every 2 s until it ends (the
    // live stream can deliver an event before this catalog has projected it, or before it connected).
    const settle = async () => {
      const r = await get('/v1/restores/{restoreId}', {}, { restoreId }).catch(() => undefined);
      if (!r || abort.signal.aborted) return;
      setPhase(r.phase);
      if (r.phase === 'Completed')
        setOutcome(
          `Restored ${r.files ?? 0} files, ${bytes(r.bytes)} in ${((r.durationMs ?? 0) / 1000).toFixed(1)} s.`,
        );
      if (r.phase === 'Failed') setOutcome(`The restore failed: ${r.error?.code}: ${r.error?.reason}`);
      if (r.phase === 'Completed' || r.phase === 'Failed') abort.abort();
    };
    const poll = setInterval(() => void settle(), 2000);
    abort.signal.addEventListener('abort', () => clearInterval(poll));
    void follow(
      { work: restoreId },
      (m: LiveMessage) => {
        if (m.event === 'progress') setProgress(m.data as unknown as { files: number; bytes: number });
        else void settle();
      },
      abort.signal,
      (up) => up && void settle(),
    );
    return () => abort.abort();
  }, [restoreId]);
  return (
    <section aria-labelledby="progress-title" data-restore={restoreId}>
      <h2 id="progress-title">Progress</h2>
      <p>
        Restore <code>{restoreId}</code>: <span class={`phase phase-${phase}`}>{phase}</span>
      </p>
      {progress && !outcome && (
        <p data-testid="restore-progress">
          <progress aria-label="restore progress" /> {progress.files} files, {bytes(progress.bytes)}
        </p>
      )}
      {outcome && (
        <p role="status" class="message" data-testid="restore-outcome">
          {outcome}
        </p>
      )}
    </section>
  );
}
