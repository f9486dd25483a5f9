import { useEffect, useState } from 'preact/hooks';
import { follow, get, getAll } from '../api.ts';
import { bytes, volumeHref, when } from '../format.ts';
import { PROTECTION_LABEL, PROTECTION_ORDER, protectionOf } from '../protection.ts';
import { useData } from './use-data.ts';

/** Hosts, volumes by protection (worst first), totals and recent failures. */
export function OverviewPage() {
  const { data, error, reload } = useData(async () => {
    const [status, hosts, volumes, failures] = await Promise.all([
      get('/v1/status'),
      getAll((cursor) => get('/v1/hosts', { limit: 500, cursor })),
      getAll((cursor) => get('/v1/volumes', { limit: 500, cursor })),
      get('/v1/backups', { phase: 'Failed', limit: 10 }),
    ]);
    return { status, hosts, volumes, failures: failures.items };
  });
  // Live: what changes a volume's row or the totals reloads the page's data (once a second at most).
  const [live, setLive] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    void follow(
      { type: 'io.volback.volume.,io.volback.backup.,io.volback.snapshot.,io.volback.host.registered' },
      () => (timer ??= setTimeout(() => ((timer = undefined), reload()), 1000)),
      abort.signal,
      setLive,
    );
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, []);
  if (error) return <p role="alert">Could not load the overview: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const { status, hosts, failures } = data;
  const volumes = data.volumes
    .map((v) => ({ v, p: protectionOf(v) }))
    .filter((x) => x.p !== 'removed')
    .sort((a, b) => PROTECTION_ORDER.indexOf(a.p) - PROTECTION_ORDER.indexOf(b.p));
  const atRisk = volumes.filter((x) => x.p === 'at-risk');
  const hostName = new Map(hosts.map((h) => [h.hostId, h.name]));
  return (
    <>
      <h1>Overview</h1>
      <p class="message" role="status">
        {live ? 'Live: this page follows the event stream.' : 'Connecting to the event stream…'}
      </p>
      {atRisk.length > 0 && (
        <section class="alarm" role="alert" data-testid="at-risk-banner" aria-labelledby="risk-title">
          <h2 id="risk-title">
            {atRisk.length} {atRisk.length === 1 ? 'volume is' : 'volumes are'} at risk
          </h2>
          <ul>
            {atRisk.map(({ v }) => (
              <li key={`${v.hostId}/${v.volumeName}`}>
                <a href={volumeHref(v.hostId, v.volumeName)}>
                  {v.volumeName} on {hostName.get(v.hostId) ?? v.hostId}
                </a>
                : {v.protection.atRisk?.reason ?? 'no recent backup'} (
                {v.protection.lastSuccessAt
                  ? `last success ${when(v.protection.lastSuccessAt)}`
                  : 'never backed up successfully'}
                )
              </li>
            ))}
          </ul>
        </section>
      )}
      <dl class="totals">
        <div>
          <dt>Hosts online</dt>
          <dd>
            {status.hosts.online} / {status.hosts.total}
          </dd>
        </div>
        <div>
          <dt>Volumes</dt>
          <dd data-testid="volumes-total">{status.volumes.total}</dd>
        </div>
        <div>
          <dt>Protected</dt>
          <dd>{status.volumes.protected}</dd>
        </div>
        <div>
          <dt>At risk</dt>
          <dd>{status.volumes.atRisk}</dd>
        </div>
        <div>
          <dt>Snapshots</dt>
          <dd>{status.snapshots}</dd>
        </div>
        <div>
          <dt>Repository size</dt>
          <dd data-testid="repository-size">{bytes(status.repository.sizeBytes)}</dd>
        </div>
        <div>
          <dt>Added (24 h)</dt>
          <dd data-testid="added-24h">{bytes(status.repository.addedLast24hBytes)}</dd>
        </div>
        <div>
          <dt>Failed backups (24 h)</dt>
          <dd>{status.backups.failedLast24h}</dd>
        </div>
      </dl>

      {failures.length > 0 && (
        <section aria-labelledby="failures-title">
          <h2 id="failures-title">Recent failures</h2>
          <ul class="failures">
            {failures.map((b) => (
              <li key={b.backupId}>
                <a href={volumeHref(b.hostId, b.volumeName)}>{b.volumeName}</a> on{' '}
                {hostName.get(b.hostId) ?? b.hostId}, {when(b.finishedAt ?? b.createdAt)}:{' '}
                <code>{b.error?.code ?? 'failed'}</code> {b.error?.reason}
              </li>
            ))}
          </ul>
        </section>
      )}

      <section aria-labelledby="volumes-title">
        <h2 id="volumes-title">Volumes</h2>
        <div class="table-wrap" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Volume</th>
                <th scope="col">Host</th>
                <th scope="col">Protection</th>
                <th scope="col">Last success</th>
                <th scope="col">Next due</th>
                <th scope="col">Size</th>
              </tr>
            </thead>
            <tbody>
              {volumes.map(({ v, p }) => (
                <tr key={`${v.hostId}/${v.volumeName}`} class={`row-${p}`} data-protection={p}>
                  <th scope="row">
                    <a href={volumeHref(v.hostId, v.volumeName)}>{v.volumeName}</a>
                  </th>
                  <td>{hostName.get(v.hostId) ?? v.hostId}</td>
                  <td>
                    <span class={`badge badge-${p}`}>{PROTECTION_LABEL[p]}</span>
                  </td>
                  <td>{when(v.protection.lastSuccessAt)}</td>
                  <td>{when(v.protection.nextDueAt)}</td>
                  <td>{bytes(v.sizeBytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section aria-labelledby="hosts-title">
        <h2 id="hosts-title">Hosts</h2>
        <div class="table-wrap" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Host</th>
                <th scope="col">Status</th>
                <th scope="col">Agent</th>
                <th scope="col">Last seen</th>
                <th scope="col">Volumes</th>
              </tr>
            </thead>
            <tbody>
              {hosts.map((h) => (
                <tr key={h.hostId}>
                  <th scope="row">{h.name}</th>
                  <td>
                    <span class={`badge badge-host-${h.status}`}>{h.status}</span>
                  </td>
                  <td>{h.agentVersion ?? '—'}</td>
                  <td>{when(h.lastSeenAt)}</td>
                  <td>{h.volumes ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
