import { useState } from 'preact/hooks';
import { ApiError, get, storeToken, storedToken, type Access } from '../api.ts';

/** The login form: checks a token with `GET /v1/access` and keeps it in this browser. */
export function AccessPage({ access, onChange }: { access: Access | null; onChange: () => void }) {
  const [token, setToken] = useState('');
  const [message, setMessage] = useState<string | undefined>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const granted = await get('/v1/access', {}, {}, token.trim());
      if (granted.tokenValid === false || granted.scope === null)
        throw new ApiError(401, undefined, 'the token is not valid');
      storeToken(token.trim());
      setToken('');
      setMessage(`Signed in with ${granted.scope} access.`);
      onChange();
    } catch (error) {
      setMessage(
        error instanceof ApiError && error.status === 401 ? 'That token is not valid.' : String(error),
      );
    }
  };
  const signOut = () => {
    storeToken(null);
    setMessage('Signed out.');
    onChange();
  };
  return (
    <section aria-labelledby="access-title">
      <h1 id="access-title">Access</h1>
      <p>
        {access
          ? `You have ${access.scope} access (${access.via === 'token' ? 'by token' : 'as this machine'}).`
          : 'Sign in with a token of the catalog to see the dashboard.'}{' '}
        A read token shows everything; a write token also lets you start backups.
      </p>
      <form class="login" onSubmit={submit}>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          required
          minLength={16}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Sign in</button>
      </form>
      {storedToken() && (
        <button type="button" class="secondary" onClick={signOut}>
          Sign out
        </button>
      )}
      {message && (
        <p role="status" class="message">
          {message}
        </p>
      )}
    </section>
  );
}
