import { useState } from 'preact/hooks';
import { download, get, type TreeEntry } from '../api.ts';
import { bytes, snapshotHref, volumeHref, when } from '../format.ts';
import { useData } from './use-data.ts';

/** One directory of a snapshot: its entries with sizes and times, downloads (a file as itself, a directory as tar). */
export function SnapshotPage(props: { snapshotId: string; path: string; canWrite: boolean }) {
  const { snapshotId, path } = props;
  const { data, error } = useData(async () => {
    const [snapshot, tree] = await Promise.all([
      get('/v1/snapshots/{snapshotId}', {}, { snapshotId }),
      get('/v1/snapshots/{snapshotId}/tree', { path }, { snapshotId }),
    ]);
    return { snapshot, entries: tree.entries };
  }, [snapshotId, path]);
  const [message, setMessage] = useState<string | undefined>(undefined);
  if (error) return <p role="alert">Could not load the snapshot: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const { snapshot, entries } = data;
  const save = async (entry: { path: string; type: string }) => {
    try {
      const file = entry.type === 'file';
      await download(`/v1/snapshots/${snapshotId}/${file ? 'file' : 'tar'}`, { path: entry.path });
      setMessage(`Downloading ${entry.path}${file ? '' : ' as tar'}.`);
    } catch (e) {
      setMessage(`Could not download ${entry.path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const parts = path.split('/').filter(Boolean);
  const sorted = [...entries].sort(
    (a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name),
  );
  return (
    <>
      <h1>
        Snapshot <code>{snapshot.shortId}</code> of{' '}
        <a href={volumeHref(snapshot.hostId, snapshot.volumeName)}>{snapshot.volumeName}</a>
      </h1>
      <p>
        Taken {when(snapshot.time)}
        {snapshot.stats
          ? `, ${bytes(snapshot.stats.totalBytes)} in ${snapshot.stats.filesNew + snapshot.stats.filesChanged + snapshot.stats.filesUnmodified} files`
          : ''}
        {snapshot.partial ? ' (partial: some files could not be read)' : ''}.
      </p>
      {props.canWrite && (
        <p>
          <a
            class="button"
            href={`#/restore/${snapshot.snapshotId}${path === '/' ? '' : `/${encodeURIComponent(path)}`}`}
          >
            Restore {path === '/' ? 'this snapshot' : path}…
          </a>
        </p>
      )}
      <nav aria-label="Path" class="crumbs">
        <a href={snapshotHref(snapshotId)}>{snapshot.volumeName}</a>
        {parts.map((p, i) => {
          const to = `/${parts.slice(0, i + 1).join('/')}`;
          return (
            <span key={to}>
              {' / '}
              {i === parts.length - 1 ? (
                <span aria-current="location">{p}</span>
              ) : (
                <a href={snapshotHref(snapshotId, to)}>{p}</a>
              )}
            </span>
          );
        })}
      </nav>
      <p>
        <button type="button" class="secondary" onClick={() => void save({ path, type: 'dir' })}>
          Download {path === '/' ? 'the volume' : 'this directory'} as tar
        </button>
      </p>
      {message && (
        <p role="status" class="message">
          {message}
        </p>
      )}
      <div class="table-wrap" tabIndex={0} role="region" aria-label={`Contents of ${path}`}>
        <table data-testid="tree">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">Mode</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sorted.length === 0 && (
              <tr>
                <td colSpan={5}>This directory is empty.</td>
              </tr>
            )}
            {sorted.map((e) => (
              <tr key={e.path} data-path={e.path}>
                <th scope="row">
                  <EntryName entry={e} snapshotId={snapshotId} />
                </th>
                <td>{e.type === 'file' ? bytes(e.size) : e.type === 'dir' ? '' : e.type}</td>
                <td>{when(e.mtime)}</td>
                <td>
                  <code>{e.mode === null ? '' : (e.mode & 0o7777).toString(8).padStart(4, '0')}</code>
                </td>
                <td>
                  {(e.type === 'file' || e.type === 'dir') && (
                    <button
                      type="button"
                      class="secondary"
                      aria-label={`Download ${e.name}${e.type === 'dir' ? ' as tar' : ''}`}
                      onClick={() => void save(e)}
                    >
                      {e.type === 'dir' ? 'tar' : 'Download'}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function EntryName({ entry, snapshotId }: { entry: TreeEntry; snapshotId: string }) {
  if (entry.type === 'dir') return <a href={snapshotHref(snapshotId, entry.path)}>{entry.name}/</a>;
  if (entry.type === 'symlink')
    return (
      <>
        {entry.name} → <code>{entry.linkTarget}</code>
      </>
    );
  return <>{entry.name}</>;
}
