import { describe, expect, it } from 'vitest';
import { redactPaths, stripUrlCredentials } from './redaction.ts';

describe('redactPaths', () => {
  it('lists every key at the top level and behind one to three wildcards', () => {
    expect(redactPaths(['password', 'headers["x-api-key"]'], 3)).toEqual([
      'password',
      'headers["x-api-key"]',
      '*.password',
      '*.headers["x-api-key"]',
      '*.*.password',
      '*.*.headers["x-api-key"]',
      '*.*.*.password',
      '*.*.*.headers["x-api-key"]',
    ]);
  });
});

describe('stripUrlCredentials', () => {
  it('hides the user-info of URLs and leaves the rest', () => {
    expect(stripUrlCredentials('connect nats://svc:s3cret@127.0.0.1:4222 failed')).toBe(
      'connect nats://[REDACTED]@127.0.0.1:4222 failed',
    );
    expect(stripUrlCredentials('see https://example.org/a@b')).toBe('see https://example.org/a@b');
  });
});
