import { useState } from 'preact/hooks';
import { get, type FoundFile } from '../api.ts';
import { bytes, snapshotHref, when } from '../format.ts';

/** Find files by name or glob across the volume's newest snapshots (`GET …/find`). */
export function FindPanel({ hostId, volumeName }: { hostId: string; volumeName: string }) {
  const [glob, setGlob] = useState('');
  const [found, setFound] = useState<
    { items: FoundFile[]; truncated: boolean; searched: number } | undefined
  >(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const answer = await get(
        '/v1/hosts/{hostId}/volumes/{volumeName}/find',
        { glob: glob.trim(), limit: 200 },
        { hostId, volumeName },
      );
      setFound({ items: answer.items, truncated: answer.truncated, searched: answer.snapshotsSearched });
      setError(undefined);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const parent = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';
  return (
    <section aria-labelledby="find-title">
      <h2 id="find-title">Find files</h2>
      <form class="inline-form" onSubmit={submit}>
        <label for="find-glob">Name or glob</label>
        <input
          id="find-glob"
          required
          placeholder="*.sql or app/**/config.*"
          value={glob}
          onInput={(e) => setGlob((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          Find
        </button>
      </form>
      {error && <p role="alert">Could not search: {error}</p>}
      {found && (
        <>
          <p role="status" class="message">
            {found.items.length} {found.items.length === 1 ? 'match' : 'matches'} in the newest{' '}
            {found.searched} snapshots{found.truncated ? ' (more exist: narrow the pattern)' : ''}.
          </p>
          {found.items.length > 0 && (
            <div class="table-wrap" tabIndex={0} role="region" aria-label="Files found">
              <table data-testid="found">
                <thead>
                  <tr>
                    <th scope="col">Path</th>
                    <th scope="col">Snapshot</th>
                    <th scope="col">Size</th>
                    <th scope="col">Modified</th>
                  </tr>
                </thead>
                <tbody>
                  {found.items.map((f) => (
                    <tr key={`${f.snapshotId}${f.path}`}>
                      <th scope="row">
                        <a href={snapshotHref(f.snapshotId, parent(f.path))}>{f.path}</a>
                      </th>
                      <td>
                        <code>{f.snapshotId.slice(0, 8)}</code> {when(f.snapshotTime)}
                      </td>
                      <td>{f.type === 'file' ? bytes(f.size) : f.type}</td>
                      <td>{when(f.mtime)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
