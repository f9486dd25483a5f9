import { useEffect, useState } from 'preact/hooks';
import { backUpNow, follow, get, type Volume } from '../api.ts';
import { bytes, snapshotHref, when } from '../format.ts';
import { PROTECTION_LABEL, protectionOf } from '../protection.ts';
import { DiffPanel } from './diff-panel.tsx';
import { FindPanel } from './find-panel.tsx';
import { useData } from './use-data.ts';

type Drill = Volume['lastDrill'];

/** The volume's last restore drill in a line: when, its outcome, its measured RTO. */
function drillText(drill: Drill): string {
  if (!drill) return 'never (volback drill, or a volback.drill.schedule label)';
  if (drill.phase === 'Requested') return `running since ${when(drill.requestedAt)}`;
  if (drill.phase === 'Passed') {
    return `passed ${when(drill.finishedAt)}: RTO ${((drill.rtoMs ?? 0) / 1000).toFixed(1)} s, ${drill.files ?? 0} files verified`;
  }
  return `FAILED ${when(drill.finishedAt)} (${drill.stage ?? '?'}): ${drill.error?.reason ?? ''}`;
}

/** One volume: protection, snapshots (with a size bar each), backups and restores; back up now. */
export function VolumePage(props: { hostId: string; volumeName: string; canWrite: boolean }) {
  const { hostId, volumeName, canWrite } = props;
  const fill = { hostId, volumeName };
  const { data, error, reload } = useData(async () => {
    const [volume, snapshots, backups, restores] = await Promise.all([
      get('/v1/hosts/{hostId}/volumes/{volumeName}', {}, fill),
      get('/v1/hosts/{hostId}/volumes/{volumeName}/snapshots', { limit: 100 }, fill),
      get('/v1/backups', { host: hostId, volume: volumeName, limit: 50 }),
      get('/v1/restores', { host: hostId, limit: 200 }),
    ]);
    const ids = new Set(snapshots.items.map((s) => s.snapshotId));
    return {
      volume,
      snapshots: snapshots.items,
      backups: backups.items,
      restores: restores.items.filter((r) => ids.has(r.snapshotId)),
    };
  }, [hostId, volumeName]);
  const [sent, setSent] = useState<string | undefined>(undefined);
  // Live: the volume's events (its backups' phases, new snapshots) reload the page, once a second at most.
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    void follow(
      { host: hostId, volume: volumeName },
      () => (timer ??= setTimeout(() => ((timer = undefined), reload()), 1000)),
      abort.signal,
    );
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [hostId, volumeName]);
  if (error) return <p role="alert">Could not load the volume: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const { volume, snapshots, backups, restores } = data;
  const p = protectionOf(volume);
  const largest = Math.max(1, ...snapshots.map((s) => s.stats?.totalBytes ?? 0));
  const start = async () => {
    try {
      const accepted = await backUpNow(hostId, volumeName);
      setSent(`Backup ${accepted.backupId} requested.`);
      reload();
    } catch (e) {
      setSent(`Could not start a backup: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return (
    <>
      <h1>
        {volumeName} <span class={`badge badge-${p}`}>{PROTECTION_LABEL[p]}</span>
      </h1>
      <dl class="facts">
        <dt>Host</dt>
        <dd>{hostId}</dd>
        <dt>Last success</dt>
        <dd>{when(volume.protection.lastSuccessAt)}</dd>
        <dt>Next due</dt>
        <dd>{when(volume.protection.nextDueAt)}</dd>
        <dt>Policy</dt>
        <dd>{volume.protection.policyId ?? 'none'}</dd>
        <dt>Last drill</dt>
        <dd>{drillText(volume.lastDrill)}</dd>
        <dt>Used by</dt>
        <dd>{volume.usedBy.map((u) => u.containerName).join(', ') || 'no container'}</dd>
      </dl>
      {volume.protection.atRisk && (
        <p class="alarm" role="alert">
          At risk since {when(volume.protection.atRisk.since)}: {volume.protection.atRisk.reason}
        </p>
      )}
      {canWrite && volume.removedAt === null && (
        <p>
          <button type="button" onClick={start}>
            Back up now
          </button>
        </p>
      )}
      {sent && (
        <p role="status" class="message">
          {sent}
        </p>
      )}

      <section aria-labelledby="snapshots-title">
        <h2 id="snapshots-title">Snapshots ({snapshots.length})</h2>
        <div class="table-wrap" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Snapshot</th>
                <th scope="col">Size</th>
                <th scope="col">Added</th>
              </tr>
            </thead>
            <tbody>
              {snapshots.map((s) => (
                <tr key={s.snapshotId}>
                  <td>{when(s.time)}</td>
                  <td>
                    <a href={snapshotHref(s.snapshotId)} aria-label={`Browse snapshot ${s.shortId}`}>
                      <code>{s.shortId}</code>
                    </a>
                    {s.partial && ' (partial)'}
                  </td>
                  <td>
                    <span class="bar" aria-hidden="true">
                      <span style={{ width: `${(100 * (s.stats?.totalBytes ?? 0)) / largest}%` }} />
                    </span>
                    {bytes(s.stats?.totalBytes)}
                  </td>
                  <td>{bytes(s.stats?.bytesAdded)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <FindPanel hostId={hostId} volumeName={volumeName} />
      <DiffPanel snapshots={snapshots} />

      <section aria-labelledby="backups-title">
        <h2 id="backups-title">Backups</h2>
        <div class="table-wrap" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Trigger</th>
                <th scope="col">Phase</th>
                <th scope="col">Duration</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {backups.map((b) => (
                <tr key={b.backupId} data-backup={b.backupId}>
                  <td>{when(b.createdAt)}</td>
                  <td>{b.trigger ?? '—'}</td>
                  <td>
                    <span class={`phase phase-${b.phase}`}>{b.phase}</span>
                  </td>
                  <td>{b.stats ? `${(b.stats.durationMs / 1000).toFixed(1)} s` : '—'}</td>
                  <td>{b.error ? `${b.error.code}: ${b.error.reason}` : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section aria-labelledby="restores-title">
        <h2 id="restores-title">Restores</h2>
        {restores.length === 0 ? (
          <p>No restore of this volume's snapshots.</p>
        ) : (
          <div class="table-wrap" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Requested</th>
                  <th scope="col">Snapshot</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Written</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {restores.map((r) => (
                  <tr key={r.restoreId}>
                    <td>{when(r.createdAt)}</td>
                    <td>
                      <code>{r.snapshotId.slice(0, 8)}</code>
                    </td>
                    <td>
                      <span class={`phase phase-${r.phase}`}>{r.phase}</span>
                    </td>
                    <td>{bytes(r.bytes)}</td>
                    <td>{r.error ? `${r.error.code}: ${r.error.reason}` : ''}</td>
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
