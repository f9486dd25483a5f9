import { useState } from 'preact/hooks';
import { get, type Snapshot, type SnapshotDiff } from '../api.ts';
import { bytes, snapshotHref, when } from '../format.ts';

/** Compare two snapshots of a volume (`GET /v1/snapshots/{id}/diff?to=`): added, removed, changed. */
export function DiffPanel({ snapshots }: { snapshots: Snapshot[] }) {
  // Newest first: by default the second newest against the newest.
  const [from, setFrom] = useState(snapshots[1]?.snapshotId ?? '');
  const [to, setTo] = useState(snapshots[0]?.snapshotId ?? '');
  const [diff, setDiff] = useState<SnapshotDiff | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  if (snapshots.length < 2) return null;
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      setDiff(await get('/v1/snapshots/{snapshotId}/diff', { to }, { snapshotId: from }));
      setError(undefined);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const option = (s: Snapshot) => (
    <option key={s.snapshotId} value={s.snapshotId}>
      {when(s.time)} ({s.shortId})
    </option>
  );
  return (
    <section aria-labelledby="diff-title">
      <h2 id="diff-title">Compare snapshots</h2>
      <form class="inline-form" onSubmit={submit}>
        <label for="diff-from">From</label>
        <select id="diff-from" value={from} onChange={(e) => setFrom((e.target as HTMLSelectElement).value)}>
          {snapshots.map(option)}
        </select>
        <label for="diff-to">to</label>
        <select id="diff-to" value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
          {snapshots.map(option)}
        </select>
        <button type="submit">Compare</button>
      </form>
      {error && <p role="alert">Could not compare: {error}</p>}
      {diff && (
        <div data-testid="diff">
          <p role="status" class="message">
            {diff.added.length} added, {diff.removed.length} removed, {diff.changed.length} changed
            {diff.truncated ? ' (stopped at the limit)' : ''}.
          </p>
          <ul class="diff">
            {diff.removed.map((e) => (
              <li key={`-${e.path}`} class="diff-removed">
                <span class="diff-mark">removed</span>{' '}
                <a href={snapshotHref(diff.from.snapshotId, e.path)}>{e.path}</a>{' '}
                {e.type === 'file' && bytes(e.size)}
              </li>
            ))}
            {diff.added.map((e) => (
              <li key={`+${e.path}`} class="diff-added">
                <span class="diff-mark">added</span> {e.path} {e.type === 'file' && bytes(e.size)}
              </li>
            ))}
            {diff.changed.map((c) => (
              <li key={`~${c.path}`} class="diff-changed">
                <span class="diff-mark">changed</span> {c.path} ({c.kind}
                {c.kind === 'content' && c.sizeBefore !== null && c.sizeAfter !== null
                  ? `: ${bytes(c.sizeBefore)} → ${bytes(c.sizeAfter)}`
                  : ''}
                )
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
