import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  defineChannel,
  follow,
  get,
  removeChannel,
  testChannel,
  type Channel,
  type ChannelRequest,
} from '../api.ts';
import { when } from '../format.ts';
import { useData } from './use-data.ts';

const KINDS = ['failure', 'at-risk', 'recovery', 'success'] as const;
const DEFAULT_KINDS = ['failure', 'at-risk', 'recovery'];
/** The form's inputs that the API's 400 can name. */
const FIELDS = new Set(['name', 'url', 'secret', 'kinds', 'hosts', 'volumes']);
const DELIVERY_TYPES = 'io.volback.notification.delivered.,io.volback.notification.failed.';
/** How far back the deliveries list reads the event log. */
const DELIVERY_DAYS = 7;

interface Delivery {
  id: string;
  ok: boolean;
  channel: string;
  service?: string;
  kind: string;
  eventType?: string;
  attempts: number;
  status?: number;
  code?: string;
  reason?: string;
  at: string;
}

function deliveryOf(event: Record<string, unknown>): Delivery {
  const d = event['data'] as Record<string, unknown>;
  const ok = String(event['type']).startsWith('io.volback.notification.delivered.');
  return {
    id: String(event['id']),
    ok,
    channel: String(d['channel']),
    service: d['service'] as string | undefined,
    kind: String(d['kind']),
    eventType: d['eventType'] as string | undefined,
    attempts: Number(d['attempts']),
    status: d['status'] as number | undefined,
    code: d['code'] as string | undefined,
    reason: d['reason'] as string | undefined,
    at: String(ok ? d['deliveredAt'] : d['failedAt']),
  };
}

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * Notification channels (redacted, as the API lists them), defined, edited, tested and removed
 * with a write token; and the recent deliveries with the reason of each failure.
 */
export function NotificationsPage({ canWrite }: { canWrite: boolean }) {
  const { data, error, reload } = useData(async () => {
    const since = new Date(Date.now() - DELIVERY_DAYS * 86_400_000).toISOString();
    const [channels, deliveries] = await Promise.all([
      get('/v1/notifications/channels'),
      get('/v1/events', { since, type: DELIVERY_TYPES, limit: 100 }),
    ]);
    return {
      channels: channels.items,
      deliveries: deliveries.items.map((i) => deliveryOf(i.event)).reverse(),
    };
  });
  const [editing, setEditing] = useState<{ channel?: Channel } | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [removing, setRemoving] = useState<string | undefined>(undefined);
  const [testing, setTesting] = useState<string | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    void follow({ type: 'io.volback.notification.' }, () => reload(), abort.signal);
    return () => abort.abort();
  }, []);
  if (error) return <p role="alert">Could not load the notifications: {error}</p>;
  if (!data) return <p>Loading…</p>;

  const test = async (name: string) => {
    setTesting(name);
    setMessage(undefined);
    try {
      const answer = await testChannel(name);
      const r = answer.results.find((x) => x.channel === name);
      setMessage(
        !r
          ? `No answer from ${name} yet: the scheduler may still be retrying.`
          : r.ok
            ? `Test delivered to ${name} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'}${r.status ? `, status ${r.status}` : ''}).`
            : `Test to ${name} failed: ${r.code ?? ''} ${r.reason ?? ''}`.trim(),
      );
      reload();
    } catch (e) {
      setMessage(`Could not send the test: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setTesting(undefined);
    }
  };
  const remove = async (name: string) => {
    try {
      await removeChannel(name);
      setMessage(`Channel ${name} removed.`);
      setRemoving(undefined);
      reload();
    } catch (e) {
      setMessage(`Could not remove ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  return (
    <>
      <h1>Notifications</h1>
      <section aria-labelledby="channels-title">
        <h2 id="channels-title">Channels</h2>
        <p class="message">
          URLs are shown without credentials, tokens or query values; secrets never. Channels of the
          scheduler's configuration are read-only here.
        </p>
        {data.channels.length === 0 ? (
          <p>No channel: nobody is notified of failures.</p>
        ) : (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Channels">
            <table data-testid="channels">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Service</th>
                  <th scope="col">URL</th>
                  <th scope="col">Notifies of</th>
                  <th scope="col">Defined</th>
                  {canWrite && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {data.channels.map((c) => (
                  <tr key={c.name} data-channel={c.name}>
                    <th scope="row">{c.name}</th>
                    <td>
                      {c.service}
                      {c.signed ? ' (signed)' : ''}
                    </td>
                    <td>
                      <code>{c.url}</code>
                    </td>
                    <td>
                      {(c.filter.kinds ?? DEFAULT_KINDS).join(', ')}
                      {c.filter.hosts ? `; hosts ${c.filter.hosts.join(', ')}` : ''}
                      {c.filter.volumes ? `; volumes ${c.filter.volumes.join(', ')}` : ''}
                    </td>
                    <td>{c.origin === 'api' ? `${when(c.definedAt)} by ${c.definedBy}` : 'configuration'}</td>
                    {canWrite && (
                      <td class="actions">
                        <button
                          type="button"
                          class="secondary"
                          disabled={testing !== undefined}
                          aria-label={`Send test to ${c.name}`}
                          onClick={() => void test(c.name)}
                        >
                          {testing === c.name ? 'Sending…' : 'Send test'}
                        </button>{' '}
                        {c.origin === 'api' && (
                          <>
                            <button
                              type="button"
                              class="secondary"
                              aria-label={`Edit ${c.name}`}
                              onClick={() => setEditing({ channel: c })}
                            >
                              Edit
                            </button>{' '}
                            {removing === c.name ? (
                              <>
                                <button type="button" onClick={() => void remove(c.name)}>
                                  Remove {c.name} now
                                </button>{' '}
                                <button
                                  type="button"
                                  class="secondary"
                                  onClick={() => setRemoving(undefined)}
                                >
                                  Keep it
                                </button>
                              </>
                            ) : (
                              <button
                                type="button"
                                class="secondary"
                                aria-label={`Remove ${c.name}`}
                                onClick={() => setRemoving(c.name)}
                              >
                                Remove
                              </button>
                            )}
                          </>
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {message && (
          <p role="status" class="message" data-testid="notify-message">
            {message}
          </p>
        )}
        {canWrite && !editing && (
          <p>
            <button type="button" onClick={() => setEditing({})}>
              Add a channel
            </button>
          </p>
        )}
        {canWrite && editing && (
          <ChannelEditor
            key={editing.channel?.name ?? ''}
            channel={editing.channel}
            onClose={(saved) => {
              setEditing(undefined);
              if (saved) {
                setMessage(`Channel ${saved} saved.`);
                reload();
              }
            }}
          />
        )}
      </section>
      <section aria-labelledby="deliveries-title">
        <h2 id="deliveries-title">Recent deliveries</h2>
        {data.deliveries.length === 0 ? (
          <p>No notification sent in the last {DELIVERY_DAYS} days.</p>
        ) : (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Recent deliveries">
            <table data-testid="deliveries">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Channel</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {data.deliveries.map((d) => (
                  <tr key={d.id} data-delivery={d.ok ? 'delivered' : 'failed'}>
                    <td>{when(d.at)}</td>
                    <td>{d.channel}</td>
                    <td>
                      {d.kind}
                      {d.eventType ? ` (${d.eventType.split('.').slice(2, 4).join(' ')})` : ''}
                    </td>
                    <td>
                      <span class={`phase phase-${d.ok ? 'Completed' : 'Failed'}`}>
                        {d.ok ? 'Delivered' : 'Failed'}
                      </span>
                    </td>
                    <td>{d.attempts}</td>
                    <td>
                      {d.ok
                        ? d.status
                          ? `status ${d.status}`
                          : ''
                        : `${d.code ?? ''}: ${d.reason ?? ''}${d.status ? ` (status ${d.status})` : ''}`}
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

/**
 * Adds or replaces a channel. The URL and secret are never shown back (the API has only the
 * redacted form), so editing asks for the URL again.
 */
function ChannelEditor(props: { channel: Channel | undefined; onClose: (saved?: string) => void }) {
  const start = props.channel;
  const [name, setName] = useState(start?.name ?? '');
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [kinds, setKinds] = useState<string[]>(start?.filter.kinds ?? DEFAULT_KINDS);
  const [hosts, setHosts] = useState(start?.filter.hosts?.join(', ') ?? '');
  const [volumes, setVolumes] = useState(start?.filter.volumes?.join(', ') ?? '');
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [issues, setIssues] = useState<Record<string, string>>({});

  const save = async (e: Event) => {
    e.preventDefault();
    setProblem(undefined);
    setIssues({});
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name.trim()))
      return setIssues({
        name: 'Lower-case letters, digits, - and _, at most 63, not starting with - or _.',
      });
    if (kinds.length === 0) return setIssues({ kinds: 'Choose at least one kind.' });
    const filter: ChannelRequest['filter'] = {
      kinds: kinds as NonNullable<ChannelRequest['filter']>['kinds'],
    };
    if (list(hosts).length) filter.hosts = list(hosts);
    if (list(volumes).length) filter.volumes = list(volumes);
    try {
      await defineChannel(name.trim(), {
        url: url.trim(),
        ...(secret ? { secret } : {}),
        filter,
        requestedBy: 'dashboard',
      });
      props.onClose(name.trim());
    } catch (err) {
      if (err instanceof ApiError && err.issues.length > 0) {
        const byField: Record<string, string> = {};
        for (const i of err.issues) {
          // `body.url`, `body.secret`, `body.filter.kinds`…: shown next to the input they name.
          const input = i.field.split('.').find((part) => FIELDS.has(part));
          if (input) byField[input] = `${i.field}: ${i.message}`;
        }
        setIssues(byField);
      }
      setProblem(`The catalog refused the channel: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const issue = (field: string) =>
    issues[field] ? (
      <span class="field-error" id={`channel-${field}-error`}>
        {issues[field]}
      </span>
    ) : null;
  const describedBy = (field: string) => (issues[field] ? `channel-${field}-error` : undefined);
  return (
    <form class="wizard" onSubmit={(e) => void save(e)} aria-labelledby="channel-editor-title">
      <h3 id="channel-editor-title">{start ? `Edit channel ${start.name}` : 'New channel'}</h3>
      <fieldset>
        <legend>Channel</legend>
        <label for="channel-name">Name</label>
        <input
          id="channel-name"
          value={name}
          readOnly={start !== undefined}
          aria-invalid={issues['name'] ? true : undefined}
          aria-describedby={describedBy('name')}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
        {issue('name')}
        <label for="channel-url">
          URL (<code>generic+https://…</code>, <code>ntfy://</code>, <code>slack://</code>,{' '}
          <code>mattermost://</code>, <code>gotify://</code>, <code>smtp://</code>)
        </label>
        <input
          id="channel-url"
          type="password"
          autoComplete="off"
          required
          value={url}
          placeholder={start ? `${start.url} (enter it again: it is never shown)` : ''}
          aria-invalid={issues['url'] ? true : undefined}
          aria-describedby={describedBy('url')}
          onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
        />
        {issue('url')}
        <label for="channel-secret">
          Signing secret for generic webhooks (optional, 16 characters or more
          {start?.signed ? '; enter it again to keep signing' : ''})
        </label>
        <input
          id="channel-secret"
          type="password"
          autoComplete="off"
          value={secret}
          aria-invalid={issues['secret'] ? true : undefined}
          aria-describedby={describedBy('secret')}
          onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
        />
        {issue('secret')}
      </fieldset>
      <fieldset aria-describedby={describedBy('kinds')}>
        <legend>Notify of</legend>
        {KINDS.map((k) => (
          <div key={k}>
            <input
              type="checkbox"
              id={`kind-${k}`}
              checked={kinds.includes(k)}
              onChange={(e) =>
                setKinds((old) =>
                  (e.target as HTMLInputElement).checked ? [...old, k] : old.filter((x) => x !== k),
                )
              }
            />{' '}
            <label for={`kind-${k}`}>{k}</label>
          </div>
        ))}
        {issue('kinds')}
        <label for="channel-hosts">Only these hosts (comma-separated ids; empty: all)</label>
        <input
          id="channel-hosts"
          value={hosts}
          onInput={(e) => setHosts((e.target as HTMLInputElement).value)}
        />
        <label for="channel-volumes">Only these volumes (comma-separated names or globs; empty: all)</label>
        <input
          id="channel-volumes"
          value={volumes}
          aria-invalid={issues['volumes'] ? true : undefined}
          aria-describedby={describedBy('volumes')}
          onInput={(e) => setVolumes((e.target as HTMLInputElement).value)}
        />
        {issue('volumes')}
      </fieldset>
      {problem && <p role="alert">{problem}</p>}
      <p>
        <button type="submit">Save channel</button>{' '}
        <button type="button" class="secondary" onClick={() => props.onClose()}>
          Cancel
        </button>
      </p>
    </form>
  );
}
