import { useEffect, useState } from 'preact/hooks';
import { ApiError, definePolicy, follow, get, type Policy, type PolicyRequest } from '../api.ts';
import { volumeHref, when } from '../format.ts';
import { useData } from './use-data.ts';

type Spec = PolicyRequest['policy'];
const KEEP = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;

function retentionText(r: Spec['retention'] | undefined): string {
  if (!r) return '—';
  const parts = KEEP.filter((k) => r[k] !== undefined).map((k) => `${k.slice(4).toLowerCase()} ${r[k]}`);
  if (r.keepWithin) parts.push(`within ${r.keepWithin}`);
  return parts.join(', ') || '—';
}

function scopeText(p: Policy) {
  return p.scope.kind === 'default' ? (
    'every volume (default)'
  ) : (
    <a href={volumeHref(p.scope.hostId, p.scope.volumeName)}>
      {p.scope.volumeName} on {p.scope.hostId}
    </a>
  );
}

/** API policies (editable with a write token) and label and configuration policies (read-only). */
export function PoliciesPage({ canWrite }: { canWrite: boolean }) {
  const { data, error, reload } = useData(async () => (await get('/v1/policies', { limit: 500 })).items);
  const [editing, setEditing] = useState<{ id: string; policy?: Policy } | undefined>(undefined);
  // The scheduler records what the API sends: its policy events reload the lists.
  useEffect(() => {
    const abort = new AbortController();
    void follow({ type: 'io.volback.policy.' }, () => reload(), abort.signal);
    return () => abort.abort();
  }, []);
  if (error) return <p role="alert">Could not load the policies: {error}</p>;
  if (!data) return <p>Loading…</p>;
  const api = data.filter((p) => p.origin === 'api');
  const other = data.filter((p) => p.origin !== 'api');
  return (
    <>
      <h1>Policies</h1>
      <section aria-labelledby="api-policies-title">
        <h2 id="api-policies-title">API policies</h2>
        {api.length === 0 && <p>No policy defined through the API.</p>}
        {api.length > 0 && (
          <PolicyTable
            policies={api}
            onEdit={canWrite ? (p) => setEditing({ id: p.policyId, policy: p }) : undefined}
          />
        )}
        {canWrite && !editing && (
          <p>
            <button type="button" onClick={() => setEditing({ id: '' })}>
              New policy
            </button>
          </p>
        )}
        {canWrite && editing && (
          <PolicyEditor key={editing.id} start={editing} onClose={() => setEditing(undefined)} />
        )}
      </section>
      <section aria-labelledby="label-policies-title">
        <h2 id="label-policies-title">Label and configuration policies (read-only)</h2>
        <p class="message">
          These come from <code>volback.*</code> labels on containers and volumes, and from the scheduler's
          settings; change them there.
        </p>
        {other.length === 0 ? <p>None.</p> : <PolicyTable policies={other} />}
      </section>
    </>
  );
}

function PolicyTable({
  policies,
  onEdit,
}: {
  policies: Policy[];
  onEdit?: ((p: Policy) => void) | undefined;
}) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Policies">
      <table>
        <thead>
          <tr>
            <th scope="col">Policy</th>
            <th scope="col">Applies to</th>
            <th scope="col">Schedule</th>
            <th scope="col">Keeps</th>
            <th scope="col">Defined</th>
            {onEdit && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {policies.map((p) => {
            const spec = p.policy as unknown as Spec;
            return (
              <tr key={p.policyId} data-policy={p.policyId}>
                <th scope="row">
                  <code>{p.policyId}</code>
                  {spec.enabled === false && ' (disabled)'}
                </th>
                <td>{scopeText(p)}</td>
                <td>
                  <code>{spec.schedule.cron}</code> {spec.schedule.timezone}
                </td>
                <td>{retentionText(spec.retention)}</td>
                <td>
                  {when(p.definedAt)}
                  {p.definedBy ? ` by ${p.definedBy}` : ''}
                </td>
                {onEdit && (
                  <td>
                    <button
                      type="button"
                      class="secondary"
                      aria-label={`Edit ${p.policyId}`}
                      onClick={() => onEdit(p)}
                    >
                      Edit
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Where the API's message for a field is shown: next to its input, or in the list above the form. */
function fieldOf(apiField: string): string {
  if (apiField === 'params.policyId') return 'id';
  if (apiField.startsWith('body.policy.schedule.cron')) return 'cron';
  if (apiField.startsWith('body.policy.schedule.timezone')) return 'timezone';
  if (apiField.startsWith('body.policy.retention')) return 'retention';
  if (apiField.startsWith('body.scope')) return 'scope';
  return 'other';
}

function PolicyEditor({ start, onClose }: { start: { id: string; policy?: Policy }; onClose: () => void }) {
  const old = start.policy?.policy as unknown as Spec | undefined;
  const [id, setId] = useState(start.id);
  const [scopeKind, setScopeKind] = useState<'default' | 'volume'>(start.policy?.scope.kind ?? 'volume');
  const oldScope = start.policy?.scope.kind === 'volume' ? start.policy.scope : undefined;
  const [hostId, setHostId] = useState(oldScope?.hostId ?? '');
  const [volumeName, setVolumeName] = useState(oldScope?.volumeName ?? '');
  const [enabled, setEnabled] = useState(old?.enabled ?? true);
  const [cron, setCron] = useState(old?.schedule.cron ?? '0 3 * * *');
  const [timezone, setTimezone] = useState(old?.schedule.timezone ?? 'UTC');
  const [keep, setKeep] = useState<Record<string, string>>(
    Object.fromEntries(KEEP.map((k) => [k, old?.retention[k] === undefined ? '' : String(old.retention[k])])),
  );
  const [issues, setIssues] = useState<Record<string, string[]>>({});
  const [message, setMessage] = useState<string | undefined>(undefined);
  const preview = useCronPreview(cron, timezone);

  const save = async (e: Event) => {
    e.preventDefault();
    setIssues({});
    const retention: Spec['retention'] = { ...(old?.retention ?? {}) };
    for (const k of KEEP) {
      if (keep[k] === '') delete retention[k];
      else retention[k] = Number(keep[k]);
    }
    try {
      await definePolicy(id.trim(), {
        scope: scopeKind === 'default' ? { kind: 'default' } : { kind: 'volume', hostId, volumeName },
        policy: { ...(old ?? {}), enabled, schedule: { cron, timezone }, retention },
        requestedBy: 'dashboard',
      });
      setMessage(
        `Sent policy ${id.trim()} to the scheduler; it shows in the list once the scheduler records it.`,
      );
    } catch (err) {
      if (err instanceof ApiError && err.issues.length > 0) {
        const byField: Record<string, string[]> = {};
        for (const i of err.issues) (byField[fieldOf(i.field)] ??= []).push(`${i.field}: ${i.message}`);
        setIssues(byField);
        setMessage('The catalog refused the policy: see the fields marked below.');
      } else setMessage(`Could not save: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const problem = (field: string) =>
    issues[field] ? (
      <span class="field-error" id={`policy-${field}-error`} data-testid={`issue-${field}`}>
        {issues[field].join('; ')}
      </span>
    ) : null;
  const describedBy = (field: string) => (issues[field] ? `policy-${field}-error` : undefined);
  return (
    <form class="wizard policy-editor" onSubmit={save} aria-labelledby="editor-title">
      <h3 id="editor-title">{start.id ? `Edit ${start.id}` : 'New policy'}</h3>
      {message && (
        <p role="status" class="message">
          {message}
        </p>
      )}
      {issues['other'] && <p role="alert">{issues['other'].join('; ')}</p>}
      <label for="policy-id">Policy id</label>
      <input
        id="policy-id"
        required
        readOnly={start.id !== ''}
        value={id}
        aria-invalid={issues['id'] ? true : undefined}
        aria-describedby={describedBy('id')}
        onInput={(e) => setId((e.target as HTMLInputElement).value)}
      />
      {problem('id')}
      <fieldset>
        <legend>Applies to</legend>
        <div>
          <input
            type="radio"
            id="scope-volume"
            name="scope"
            checked={scopeKind === 'volume'}
            onChange={() => setScopeKind('volume')}
          />{' '}
          <label for="scope-volume">One volume</label>{' '}
          <input
            type="radio"
            id="scope-default"
            name="scope"
            checked={scopeKind === 'default'}
            onChange={() => setScopeKind('default')}
          />{' '}
          <label for="scope-default">Every volume without its own policy (default)</label>
        </div>
        {scopeKind === 'volume' && (
          <>
            <label for="policy-host">Host (id or name)</label>
            <input
              id="policy-host"
              required
              value={hostId}
              onInput={(e) => setHostId((e.target as HTMLInputElement).value)}
            />
            <label for="policy-volume">Volume</label>
            <input
              id="policy-volume"
              required
              value={volumeName}
              onInput={(e) => setVolumeName((e.target as HTMLInputElement).value)}
            />
          </>
        )}
        {problem('scope')}
      </fieldset>
      <fieldset>
        <legend>Schedule</legend>
        <div>
          <input
            type="checkbox"
            id="policy-enabled"
            checked={enabled}
            onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)}
          />{' '}
          <label for="policy-enabled">Enabled</label>
        </div>
        <label for="policy-cron">Cron expression (5 fields, or 6 with seconds first)</label>
        <input
          id="policy-cron"
          required
          value={cron}
          aria-invalid={issues['cron'] ? true : undefined}
          aria-describedby={describedBy('cron')}
          onInput={(e) => setCron((e.target as HTMLInputElement).value)}
        />
        {problem('cron')}
        <label for="policy-timezone">Time zone</label>
        <input
          id="policy-timezone"
          required
          value={timezone}
          aria-invalid={issues['timezone'] ? true : undefined}
          aria-describedby={describedBy('timezone')}
          onInput={(e) => setTimezone((e.target as HTMLInputElement).value)}
        />
        {problem('timezone')}
        <div aria-live="polite" data-testid="cron-preview">
          {preview.error ? (
            <p class="field-error">{preview.error}</p>
          ) : (
            preview.runs && (
              <>
                <p>Next five runs (before the scheduler's jitter):</p>
                <ol class="runs">
                  {preview.runs.map((r) => (
                    <li key={r}>
                      <time dateTime={r}>{when(r)}</time>
                    </li>
                  ))}
                </ol>
              </>
            )
          )}
        </div>
      </fieldset>
      <fieldset>
        <legend>Keep snapshots</legend>
        <div class="keep-grid">
          {KEEP.map((k) => (
            <div key={k}>
              <label for={`policy-${k}`}>{k.slice(4)}</label>
              <input
                id={`policy-${k}`}
                inputMode="numeric"
                value={keep[k]}
                aria-describedby={describedBy('retention')}
                onInput={(e) => setKeep({ ...keep, [k]: (e.target as HTMLInputElement).value })}
              />
            </div>
          ))}
        </div>
        {problem('retention')}
      </fieldset>
      <p>
        <button type="submit">Save</button>{' '}
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </p>
    </form>
  );
}

/** The next five runs of a schedule from `GET /v1/schedules/preview`, or the API's message for it. */
function useCronPreview(cron: string, timezone: string) {
  const [state, setState] = useState<{ runs?: string[]; error?: string }>({});
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      get('/v1/schedules/preview', { cron, timezone, count: 5 })
        .then((p) => live && setState({ runs: p.runs }))
        .catch((e: unknown) => live && setState({ error: e instanceof Error ? e.message : String(e) }));
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [cron, timezone]);
  return state;
}
