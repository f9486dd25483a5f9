import { describe, expect, it } from 'vitest';
import { parseChannelUrl } from './channel-url.ts';
import { NotifyUrlError } from './errors.ts';
import { channelSecrets, redactChannelUrl, scrub } from './redact.ts';

describe('parseChannelUrl', () => {
  it('given generic URLs; then POSTs to http or https as the scheme says, basic auth from the user part', () => {
    const plain = parseChannelUrl('generic+http://127.0.0.1:8080/hook?team=ops');
    expect(plain).toMatchObject({ service: 'generic', headers: {} });
    expect(String((plain as { endpoint: URL }).endpoint)).toBe('http://127.0.0.1:8080/hook?team=ops');
    const tls = parseChannelUrl('generic://alice:s3cret@hooks.example.com/in');
    expect(String((tls as { endpoint: URL }).endpoint)).toBe('https://hooks.example.com/in');
    expect((tls as { headers: Record<string, string> }).headers['authorization']).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    );
    const off = parseChannelUrl('generic://hooks.example.com/in?disabletls=yes');
    expect(String((off as { endpoint: URL }).endpoint)).toBe('http://hooks.example.com/in');
  });

  it('given ntfy, Slack, Mattermost and Gotify URLs; then each names the endpoint shoutrrr would use', () => {
    expect(
      parseChannelUrl('ntfy://:tk_abc@ntfy.example.com/backups?scheme=http&priority=urgent'),
    ).toMatchObject({
      service: 'ntfy',
      endpoint: new URL('http://ntfy.example.com/backups'),
      headers: { authorization: 'Bearer tk_abc' },
      priority: 'urgent',
    });
    expect(parseChannelUrl('ntfy:///alerts')).toMatchObject({ endpoint: new URL('https://ntfy.sh/alerts') });
    expect(parseChannelUrl('slack://hook:T000-B000-XXXX@webhook')).toMatchObject({
      service: 'slack',
      endpoint: new URL('https://hooks.slack.com/services/T000/B000/XXXX'),
    });
    expect(parseChannelUrl('slack://volback@T000/B000/XXXX')).toMatchObject({ username: 'volback' });
    expect(
      parseChannelUrl('mattermost://bot@chat.example.com:8065/tok123/backups?disabletls=yes'),
    ).toMatchObject({
      service: 'mattermost',
      endpoint: new URL('http://chat.example.com:8065/hooks/tok123'),
      username: 'bot',
      channel: 'backups',
    });
    expect(parseChannelUrl('gotify://push.example.com/gotify/AbCdEf123?priority=9')).toMatchObject({
      service: 'gotify',
      endpoint: new URL('https://push.example.com/gotify/message'),
      headers: { 'x-gotify-key': 'AbCdEf123' },
      priority: 9,
    });
  });

  it('given an smtp URL; then host, port, login, sender, recipients and encryption', () => {
    expect(
      parseChannelUrl(
        'smtp://mailer:p%40ss@mail.example.com:587/?fromAddress=volback@example.com&toAddresses=a@example.com,b@example.com&encryption=ExplicitTLS',
      ),
    ).toEqual({
      service: 'smtp',
      host: 'mail.example.com',
      port: 587,
      user: 'mailer',
      password: 'p@ss',
      from: 'volback@example.com',
      to: ['a@example.com', 'b@example.com'],
      encryption: 'starttls',
    });
    expect(
      parseChannelUrl('smtp://mail.example.com/?from=a@example.com&to=b@example.com&encryption=implicittls'),
    ).toMatchObject({ port: 465, encryption: 'tls' });
  });

  it('given bad URLs; then a NotifyUrlError that does not repeat the URL', () => {
    for (const [url, message] of [
      ['https://example.com/hook', /unknown scheme "https:\/\/"/],
      ['ntfy://example.com/', /needs a topic/],
      ['slack://hook:only-two@webhook', /three parts/],
      ['smtp://mail.example.com/?to=b@example.com', /needs \?from=/],
      ['smtp://u:pw@mail.example.com/?from=a@x&to=b@x&encryption=rot13', /encryption is one of/],
    ] as const) {
      const error = (() => {
        try {
          parseChannelUrl(url);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(NotifyUrlError);
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain('pw@');
    }
  });
});

describe('redactChannelUrl', () => {
  it('given URLs with credentials and tokens; then shows where they go without them', () => {
    expect(
      redactChannelUrl(
        'generic+https://alice:s3cret@hooks.example.com/in/9f8e7d6c5b4a3210?token=abc&channel=ops',
      ),
    ).toBe('generic+https://***@hooks.example.com/in/***?token=***&channel=ops');
    expect(redactChannelUrl('slack://hook:T000-B000-XXXX@webhook')).toBe('slack://***@webhook');
    expect(redactChannelUrl('slack://T000/B000/XXXX')).toBe('slack://***/***/***');
    expect(redactChannelUrl('mattermost://bot@chat.example.com/tok123/backups')).toBe(
      'mattermost://***@chat.example.com/***/backups',
    );
    expect(redactChannelUrl('gotify://push.example.com/gotify/AbCdEf123')).toBe(
      'gotify://push.example.com/gotify/***',
    );
    expect(redactChannelUrl('ntfy://:tk_abc@ntfy.example.com/backups-8734?scheme=http')).toBe(
      'ntfy://***@ntfy.example.com/***?scheme=http',
    );
    expect(
      redactChannelUrl('smtp://mailer:pw@mail.example.com:587/?from=a@example.com&to=b@example.com'),
    ).toBe('smtp://***@mail.example.com:587/?from=a@example.com&to=b@example.com');
    expect(redactChannelUrl('ftp://user:pw@example.com')).toBe('***');
  });

  it('given a text that quotes the secrets; then scrub leaves none of them', () => {
    const channel = {
      url: 'gotify://u:hunter22@push.example.com/AbCdEf123?x=q9q9',
      secret: 'a-signing-secret-1234',
    };
    const text = 'login hunter22 for u with AbCdEf123 and q9q9 signed a-signing-secret-1234';
    const clean = scrub(text, channelSecrets(channel));
    for (const secret of ['hunter22', 'AbCdEf123', 'q9q9', 'a-signing-secret-1234'])
      expect(clean).not.toContain(secret);
    expect(clean).toMatch(/^login \*\*\* for u with/);
  });
});
