import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, storedToken, type Access } from './api.ts';
import { AccessPage } from './pages/access-page.tsx';
import { LivePage } from './pages/live-page.tsx';
import { NotificationsPage } from './pages/notifications-page.tsx';
import { OverviewPage } from './pages/overview-page.tsx';
import { EventsPage } from './pages/events-page.tsx';
import { PoliciesPage } from './pages/policies-page.tsx';
import { RestorePage } from './pages/restore-page.tsx';
import { SetRestorePage } from './pages/set-restore-page.tsx';
import { SetPage, SetsPage } from './pages/sets-page.tsx';
import { SnapshotPage } from './pages/snapshot-page.tsx';
import { VolumePage } from './pages/volume-page.tsx';
import './style.css';

/**
 * The hash route: `#/`, `#/volumes/<host>/<volume>`, `#/snapshots/<id>[/<path>]`,
 * `#/restore/<id>[/<path>]`, `#/sets`, `#/sets/<host>/<set>`, `#/restore-set/<host>/<set>`, `#/live`,
 * `#/policies`, `#/notifications`, `#/events`, `#/access` (a path is one encoded segment).
 */
function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener('hashchange', on);
    on(); // the hash may have changed between the first render and this effect
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function App() {
  const route = useRoute();
  // undefined: not asked yet; null: no access (the Access page asks for a token).
  const [access, setAccess] = useState<Access | null | undefined>(undefined);
  const refreshAccess = () =>
    get('/v1/access', {}, {}, storedToken())
      .then((a) => setAccess(a.scope === null ? null : a))
      .catch(() => setAccess(null));
  useEffect(() => void refreshAccess(), []);

  const page = route[0] ?? '';
  const nav = [
    ['', 'Overview'],
    ['sets', 'Applications'],
    ['live', 'Live activity'],
    ['events', 'Event log'],
    ['policies', 'Policies'],
    ['notifications', 'Notifications'],
    ['access', 'Access'],
  ] as const;
  let body;
  if (access === undefined) body = <p>Loading…</p>;
  else if (access === null || page === 'access')
    body = <AccessPage access={access} onChange={refreshAccess} />;
  else if (page === 'volumes' && route[1] && route[2])
    body = <VolumePage hostId={route[1]} volumeName={route[2]} canWrite={access.scope === 'write'} />;
  else if (page === 'snapshots' && route[1])
    body = <SnapshotPage snapshotId={route[1]} path={route[2] ?? '/'} canWrite={access.scope === 'write'} />;
  else if (page === 'restore' && route[1] && access.scope === 'write')
    body = <RestorePage snapshotId={route[1]} path={route[2] ?? '/'} />;
  else if (page === 'sets' && route[1] && route[2])
    body = <SetPage hostId={route[1]} setId={route[2]} canWrite={access.scope === 'write'} />;
  else if (page === 'sets') body = <SetsPage />;
  else if (page === 'restore-set' && route[1] && route[2] && access.scope === 'write')
    body = <SetRestorePage hostId={route[1]} setId={route[2]} />;
  else if (page === 'notifications') body = <NotificationsPage canWrite={access.scope === 'write'} />;
  else if (page === 'live') body = <LivePage />;
  else if (page === 'events') body = <EventsPage />;
  else if (page === 'policies') body = <PoliciesPage canWrite={access.scope === 'write'} />;
  else body = <OverviewPage />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <strong class="brand">volback</strong>
        <nav aria-label="Main">
          {nav.map(([to, label]) => (
            <a key={to} href={`#/${to}`} aria-current={page === to ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="scope" data-testid="scope">
          {access ? `${access.scope} access` : 'signed out'}
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
