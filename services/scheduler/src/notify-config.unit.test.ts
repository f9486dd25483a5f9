import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { splitNotifyUrls } from './notify-config.ts';

const base = { VOLBACK_SCHEDULER_ID: 'one' };

describe('notification settings', () => {
  it('given no setting; then no configured channel and the default delivery', () => {
    expect(loadConfig(base).notifier).toEqual({
      channels: [],
      delivery: { attempts: 5, initialDelayMs: 2_000, maxDelayMs: 60_000, timeoutMs: 10_000 },
      maxAgeMs: 86_400_000,
    });
  });

  it('given VOLBACK_NOTIFY_URLS; then one channel per URL (named or env-<n>), commas inside a URL kept', () => {
    expect(
      splitNotifyUrls(
        'ops=generic+https://hooks.example.com/a, smtp://mail.example.com/?from=a@example.com&to=b@example.com,c@example.com ntfy://ntfy.sh/t',
      ),
    ).toEqual([
      { name: 'ops', url: 'generic+https://hooks.example.com/a' },
      { url: 'smtp://mail.example.com/?from=a@example.com&to=b@example.com,c@example.com' },
      { url: 'ntfy://ntfy.sh/t' },
    ]);
    const config = loadConfig({
      ...base,
      VOLBACK_NOTIFY_URLS: 'ops=generic+https://hooks.example.com/a,ntfy://ntfy.sh/t',
      VOLBACK_NOTIFY_EVENTS: 'failure,success',
      VOLBACK_NOTIFY_WEBHOOK_SECRET: 'sixteen-chars-or-more',
    });
    expect(config.notifier.channels).toEqual([
      {
        name: 'ops',
        url: 'generic+https://hooks.example.com/a',
        secret: 'sixteen-chars-or-more',
        filter: { kinds: ['failure', 'success'] },
      },
      { name: 'env-2', url: 'ntfy://ntfy.sh/t', filter: { kinds: ['failure', 'success'] } },
    ]);
  });

  it('given VOLBACK_NOTIFY_FILE; then its channels with their filters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'notify-config-'));
    const file = join(dir, 'channels.json');
    writeFileSync(
      file,
      JSON.stringify([
        {
          name: 'dba',
          url: 'gotify://push.example.com/Tok3n',
          filter: { volumes: ['*_db'], kinds: ['failure'] },
        },
      ]),
    );
    expect(loadConfig({ ...base, VOLBACK_NOTIFY_FILE: file }).notifier.channels).toEqual([
      {
        name: 'dba',
        url: 'gotify://push.example.com/Tok3n',
        filter: { volumes: ['*_db'], kinds: ['failure'] },
      },
    ]);
  });

  it('given a bad URL, kind or secret; then a ConfigError naming the variable and not the URL', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [
        { VOLBACK_NOTIFY_URLS: 'https://user:pw@example.com/x' },
        'VOLBACK_NOTIFY_URLS',
        /entry 1 \(env-1\): unknown scheme/,
      ],
      [{ VOLBACK_NOTIFY_URLS: 'slack://hook:a-b@webhook' }, 'VOLBACK_NOTIFY_URLS', /three parts/],
      [{ VOLBACK_NOTIFY_EVENTS: 'failure,explosion' }, 'VOLBACK_NOTIFY_EVENTS', /"explosion" is not/],
      [{ VOLBACK_NOTIFY_WEBHOOK_SECRET: 'short' }, 'VOLBACK_NOTIFY_WEBHOOK_SECRET', /at least 16/],
      [
        { VOLBACK_NOTIFY_URLS: 'a=ntfy://x/t a=ntfy://x/u' },
        'VOLBACK_NOTIFY_URLS',
        /two channels are named "a"/,
      ],
    ];
    for (const [env, variable, message] of cases) {
      const error = (() => {
        try {
          loadConfig({ ...base, ...env });
        } catch (e) {
          return e as ConfigError;
        }
        return undefined;
      })();
      expect(error, variable).toBeInstanceOf(ConfigError);
      expect(error!.variable).toBe(variable);
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain('pw@');
    }
  });
});
