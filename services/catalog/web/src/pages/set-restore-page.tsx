import { useEffect, useState } from 'preact/hooks';
import {
  follow,
  get,
  startSetRestore,
  type SetBackup,
  type SetRestore,
  type SetRestoreRequest,
} from '../api.ts';
import { bytes, setHref, when } from '../format.ts';
import { useData } from './use-data.ts';

const RESTORABLE = new Set(['Completed', 'PartiallyFailed']);

function describeBackup(b: SetBackup): string {
  return `${when(b.finishedAt ?? b.startedAt)} — ${b.phase}, ${b.members.length} snapshot${b.members.length === 1 ? '' : 's'}`;
}

/**
 * Polls a set restore until it ends (a dry run ends as soon as the agent has planned it). Each
 * read waits a second first: the catalog projects the request it just published a moment later,
 * and a read before that is a 404 (which the browser logs as an error).
 */
async function settled(restoreId: string, signal?: AbortSignal): Promise<SetRestore> {
  for (;;) {
    await new Promise((done) => setTimeout(done, 1000));
    if (signal?.aborted) throw new Error('aborted');
    const r = await get('/v1/set-restores/{restoreId}', {}, { restoreId }).catch(() => undefined);
    if (r && r.phase !== 'Queued') return r;
  }
}

/**
 * The restore wizard of an application: which set backup, on which host, under new names or in
 * place, whether to recreate its containers; then a dry run that lists every volume and container
 * that would be created or replaced, a confirmation naming them, and the restore's live progress.
 */
export function SetRestorePage(props: { hostId: string; setId: string }) {
  const { hostId, setId } = props;
  const { data, error } = useData(async () => {
    const [set, hosts] = await Promise.all([
      get('/v1/sets/{setId}', { hostId }, { setId }),
      get('/v1/hosts', { limit: 500 }),
    ]);
    return { set, hosts: hosts.items };
  }, [hostId, setId]);
  const [step, setStep] = useState<'choose' | 'planning' | 'confirm' | 'running'>('choose');
  const [backupId, setBackupId] = useState('');
  const [toHostId, setToHostId] = useState(hostId);
  const [inPlace, setInPlace] = useState(false);
  const [volumeSuffix, setVolumeSuffix] = useState('-restored');
  const [recreate, setRecreate] = useState(false);
  const [containerSuffix, setContainerSuffix] = useState('-restored');
  const [start, setStart] = useState(true);
  const [plan, setPlan] = useState<SetRestore | undefined>(undefined);
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [restoreId, setRestoreId] = useState<string | undefined>(undefined);

  if (error) return <p role="alert">Could not load the application: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const backups = data.set.backups.filter((b) => RESTORABLE.has(b.phase) && b.members.length > 0);
  const chosen = backups.find((b) => b.backupId === backupId) ?? backups[0];
  if (!chosen) return <p>This application has no backup with snapshots yet: back it up first.</p>;
  const hostName = (id: string) => data.hosts.find((h) => h.hostId === id)?.name ?? id;

  const request = (dryRun: boolean): SetRestoreRequest => ({
    hostId,
    setBackupId: chosen.backupId,
    toHostId,
    inPlace,
    volumeSuffix: inPlace ? '' : volumeSuffix,
    recreateContainers: recreate,
    containerSuffix: recreate ? containerSuffix : '',
    startContainers: start,
    dryRun,
    requestedBy: 'dashboard',
  });
  const review = async (e: Event) => {
    e.preventDefault();
    setProblem(undefined);
    setPlan(undefined);
    setStep('planning');
    try {
      const accepted = await startSetRestore(setId, request(true));
      const answer = await settled(accepted.restoreId);
      if (answer.phase === 'Failed') {
        setStep('choose');
        return setProblem(`The dry run failed: ${answer.error?.code}: ${answer.error?.reason}`);
      }
      setPlan(answer);
      setStep('confirm');
    } catch (err) {
      setStep('choose');
      setProblem(`The catalog refused the restore: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const run = async () => {
    setProblem(undefined);
    try {
      const accepted = await startSetRestore(setId, request(false));
      setRestoreId(accepted.restoreId);
      setStep('running');
    } catch (err) {
      setProblem(`The catalog refused the restore: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const created =
    plan?.members.filter((m) => m.target.kind === 'new-volume').map((m) => m.target.volumeName) ?? [];
  const replaced =
    plan?.members.filter((m) => m.target.kind !== 'new-volume').map((m) => m.target.volumeName) ?? [];
  const creatable = plan?.containers.filter((c) => c.imagePresent) ?? [];

  return (
    <>
      <h1>Restore an application</h1>
      <p>
        Application <a href={setHref(hostId, setId)}>{setId}</a> on host {hostName(hostId)}: every volume of
        one set backup, at the same point in time.
      </p>
      {step === 'choose' || step === 'planning' ? (
        <form class="wizard" onSubmit={(e) => void review(e)}>
          <fieldset>
            <legend>What</legend>
            <label for="set-backup">Set backup</label>
            <select
              id="set-backup"
              value={chosen.backupId}
              onChange={(e) => setBackupId((e.target as HTMLSelectElement).value)}
            >
              {backups.map((b) => (
                <option key={b.backupId} value={b.backupId}>
                  {describeBackup(b)}
                </option>
              ))}
            </select>
            <p class="message">Volumes: {chosen.members.map((m) => m.volumeName).join(', ')}.</p>
          </fieldset>
          <fieldset>
            <legend>Where</legend>
            <label for="to-host">Restore on host</label>
            <select
              id="to-host"
              value={toHostId}
              onChange={(e) => setToHostId((e.target as HTMLSelectElement).value)}
            >
              {data.hosts.map((h) => (
                <option key={h.hostId} value={h.hostId}>
                  {h.name}
                  {h.hostId === hostId ? ' (the application’s host)' : ''}
                </option>
              ))}
            </select>
            {(
              [
                [false, 'Under new names'],
                [
                  true,
                  'In place (replacing what the snapshots hold; containers using them are stopped meanwhile)',
                ],
              ] as const
            ).map(([value, label]) => (
              <div key={String(value)}>
                <input
                  type="radio"
                  id={`in-place-${value}`}
                  name="in-place"
                  checked={inPlace === value}
                  onChange={() => setInPlace(value)}
                />{' '}
                <label for={`in-place-${value}`}>{label}</label>
              </div>
            ))}
            {!inPlace && (
              <>
                <label for="volume-suffix">Suffix added to each volume name</label>
                <input
                  id="volume-suffix"
                  value={volumeSuffix}
                  onInput={(e) => setVolumeSuffix((e.target as HTMLInputElement).value)}
                />
                <p class="message">
                  New volumes: {chosen.members.map((m) => `${m.volumeName}${volumeSuffix}`).join(', ')}.
                </p>
              </>
            )}
          </fieldset>
          <fieldset>
            <legend>Containers</legend>
            <div>
              <input
                type="checkbox"
                id="recreate"
                checked={recreate}
                onChange={(e) => setRecreate((e.target as HTMLInputElement).checked)}
              />{' '}
              <label for="recreate">
                Recreate the containers from the configuration the snapshots recorded
              </label>
            </div>
            {recreate && (
              <>
                <label for="container-suffix">Suffix added to each container name</label>
                <input
                  id="container-suffix"
                  value={containerSuffix}
                  onInput={(e) => setContainerSuffix((e.target as HTMLInputElement).value)}
                />
                <div>
                  <input
                    type="checkbox"
                    id="start-containers"
                    checked={start}
                    onChange={(e) => setStart((e.target as HTMLInputElement).checked)}
                  />{' '}
                  <label for="start-containers">Start those that were running</label>
                </div>
              </>
            )}
          </fieldset>
          <button type="submit" disabled={step === 'planning'}>
            {step === 'planning' ? 'Asking the agent for a dry run…' : 'Review (dry run first)'}
          </button>
        </form>
      ) : null}
      {step === 'confirm' && plan && (
        <section aria-labelledby="confirm-title" class="confirm">
          <h2 id="confirm-title">Confirm</h2>
          <p>The dry run created nothing. The restore would:</p>
          <ul data-testid="set-plan">
            {created.length > 0 && <li>create the volumes {created.join(', ')}</li>}
            {replaced.length > 0 && (
              <li>
                replace the files the snapshots hold in {replaced.join(', ')} (other files stay; their
                containers are stopped meanwhile and started again)
              </li>
            )}
            {plan.containers.map((c) => (
              <li key={c.name} data-container={c.name}>
                {c.imagePresent ? `create the container ${c.name}` : `not create ${c.name}`} ({c.image}
                {c.imagePresent ? '' : ': the image is missing on the target engine'}); mounts{' '}
                {c.mounts.join(', ') || 'none'}
                {c.networks.length ? `; networks ${c.networks.join(', ')}` : ''}
                {c.ports.length ? `; ports ${c.ports.join(', ')}` : ''}
                {c.warnings.length > 0 && <span class="field-error"> Warnings: {c.warnings.join('; ')}</span>}
              </li>
            ))}
          </ul>
          <p data-testid="set-confirmation">
            {`Restore ${plan.members.length} volumes of ${setId} from the set backup of ${when(chosen.finishedAt)} on host ${hostName(toHostId)}${
              recreate
                ? creatable.length
                  ? `, then create the containers ${creatable.map((c) => c.name).join(', ')}${start ? ' and start those that were running' : ''}`
                  : ', creating no container (no image is on the target engine)'
                : ''
            }.`}
          </p>
          <p>
            <button type="button" onClick={() => void run()}>
              Restore now
            </button>{' '}
            <button type="button" class="secondary" onClick={() => setStep('choose')}>
              Back
            </button>
          </p>
        </section>
      )}
      {problem && <p role="alert">{problem}</p>}
      {step === 'running' && restoreId && <SetRestoreProgress restoreId={restoreId} hostId={toHostId} />}
    </>
  );
}

/** A set restore's members as they are restored (progress from the stream), then its outcome. */
function SetRestoreProgress({ restoreId, hostId }: { restoreId: string; hostId: string }) {
  const [progress, setProgress] = useState<Record<string, { files: number; bytes: number }>>({});
  const [outcome, setOutcome] = useState<SetRestore | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    void follow(
      { host: hostId, type: 'io.volback.restore.', progress: 'true' },
      (m) => {
        const d = m.data as { workId?: string; files?: number; bytes?: number };
        if (m.event === 'progress' && d.workId?.startsWith(`${restoreId}.`))
          setProgress((old) => ({ ...old, [d.workId!]: { files: d.files ?? 0, bytes: d.bytes ?? 0 } }));
      },
      abort.signal,
    );
    settled(restoreId, abort.signal)
      .then((r) => {
        setOutcome(r);
        abort.abort();
      })
      .catch(() => undefined);
    return () => abort.abort();
  }, [restoreId, hostId]);
  const running = Object.entries(progress);
  return (
    <section aria-labelledby="progress-title" data-set-restore={restoreId}>
      <h2 id="progress-title">Progress</h2>
      <p>
        Restore <code>{restoreId}</code>:{' '}
        <span class={`phase phase-${outcome?.phase ?? 'Running'}`}>{outcome?.phase ?? 'Running'}</span>
      </p>
      {!outcome && running.length > 0 && (
        <ul class="work">
          {running.map(([id, p]) => (
            <li key={id} class="work-item">
              <progress aria-label={`restore progress of ${id}`} /> {p.files} files, {bytes(p.bytes)}
            </li>
          ))}
        </ul>
      )}
      {outcome && (
        <div role="status" class="message" data-testid="set-restore-outcome">
          {outcome.phase === 'Completed'
            ? `Restored ${outcome.members.map((m) => m.target.volumeName).join(', ')}${
                outcome.containers.length
                  ? `; containers: ${outcome.containers.map((c) => `${c.name} (${c.outcome})`).join(', ')}`
                  : ''
              }.`
            : `The restore failed: ${outcome.error?.code}: ${outcome.error?.reason}`}
        </div>
      )}
    </section>
  );
}
