import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopback, loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { hashToken } from './http/tokens.ts';

const cwd = '/srv/volback';

/** The error loadConfig throws for `env` (the test fails if it accepts it). */
function errorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env, [], cwd);
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('given nothing, then the documented defaults', () => {
    const config = loadConfig({}, [], cwd);
    expect(config).toMatchObject({
      dataDir: '/srv/volback/.volback',
      databaseFile: '/srv/volback/.volback/catalog.sqlite',
      host: '127.0.0.1',
      port: 8080,
      natsServers: ['nats://127.0.0.1:4222'],
      rebuild: false,
      opsPort: 9403,
    });
    expect(config.tokens).toEqual([]);
    expect(config.trustLoopback).toBe(true);
    expect(config.allowedHosts).toEqual([]);
    expect(config.tls).toBeUndefined();
  });

  it('given --rebuild or VOLBACK_CATALOG_REBUILD, then a rebuild', () => {
    expect(loadConfig({}, ['--rebuild'], cwd).rebuild).toBe(true);
    expect(loadConfig({ VOLBACK_CATALOG_REBUILD: '1' }, [], cwd).rebuild).toBe(true);
  });

  it('given bad values, then an error naming the variable', () => {
    const bad: Array<[NodeJS.ProcessEnv, string]> = [
      [{ VOLBACK_CATALOG_PORT: '80a' }, 'VOLBACK_CATALOG_PORT'],
      [{ VOLBACK_NATS_URL: 'http://127.0.0.1:4222' }, 'VOLBACK_NATS_URL'],
      [{ VOLBACK_CATALOG_WRITE_TOKEN: 'short' }, 'VOLBACK_CATALOG_WRITE_TOKEN'],
      [{ VOLBACK_CATALOG_READ_TOKEN: 'read-token-0123456789' }, 'VOLBACK_CATALOG_WRITE_TOKEN'],
      [
        {
          VOLBACK_CATALOG_READ_TOKEN: 'same-token-0123456789',
          VOLBACK_CATALOG_WRITE_TOKEN: 'same-token-0123456789',
        },
        'VOLBACK_CATALOG_READ_TOKEN',
      ],
      [{ VOLBACK_CATALOG_HOST: 'catalog.invalid' }, 'VOLBACK_CATALOG_HOST'],
      [{ VOLBACK_CATALOG_REBUILD: 'maybe' }, 'VOLBACK_CATALOG_REBUILD'],
      [{ VOLBACK_CATALOG_ID: 'has space' }, 'VOLBACK_CATALOG_ID'],
      [{ VOLBACK_CATALOG_TRUST_LOOPBACK: 'perhaps' }, 'VOLBACK_CATALOG_TRUST_LOOPBACK'],
      [{ VOLBACK_CATALOG_TRUST_LOOPBACK: 'false' }, 'VOLBACK_CATALOG_TRUST_LOOPBACK'],
      [{ VOLBACK_CATALOG_ALLOWED_HOSTS: 'http://catalog.example' }, 'VOLBACK_CATALOG_ALLOWED_HOSTS'],
      [{ VOLBACK_CATALOG_ALLOWED_HOSTS: 'catalog.example:8080' }, 'VOLBACK_CATALOG_ALLOWED_HOSTS'],
      [{ VOLBACK_CATALOG_TLS_CERT_FILE: '/x.crt' }, 'VOLBACK_CATALOG_TLS_KEY_FILE'],
      [{ VOLBACK_CATALOG_TLS_KEY_FILE: '/x.key' }, 'VOLBACK_CATALOG_TLS_CERT_FILE'],
    ];
    for (const [env, variable] of bad) {
      const error = errorOf(env);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.variable).toBe(variable);
      expect(error.code).toBe('VOLBACK_CATALOG_CONFIG_INVALID');
    }
    expect(() => loadConfig({}, ['--what'], cwd)).toThrow(/--rebuild/);
  });

  it('given a write token, then any interface may be used', () => {
    expect(
      loadConfig(
        { VOLBACK_CATALOG_HOST: 'catalog.invalid', VOLBACK_CATALOG_WRITE_TOKEN: 'write-token-0123456789' },
        [],
        cwd,
      ).host,
    ).toBe('catalog.invalid');
  });

  it('given allowed hosts, TLS files and TRUST_LOOPBACK=false, then those', () => {
    const config = loadConfig(
      {
        VOLBACK_CATALOG_ALLOWED_HOSTS: 'Catalog.Example, 192.0.2.5,[2001:db8::5]',
        VOLBACK_CATALOG_TLS_CERT_FILE: 'tls/catalog.crt',
        VOLBACK_CATALOG_TLS_KEY_FILE: 'tls/catalog.key',
        VOLBACK_CATALOG_TRUST_LOOPBACK: 'false',
        VOLBACK_CATALOG_WRITE_TOKEN: 'write-token-0123456789',
      },
      [],
      cwd,
    );
    expect(config.allowedHosts).toEqual(['catalog.example', '192.0.2.5', '[2001:db8::5]']);
    expect(config.tls).toEqual({
      certFile: '/srv/volback/tls/catalog.crt',
      keyFile: '/srv/volback/tls/catalog.key',
    });
    expect(config.trustLoopback).toBe(false);
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', '[::1]', 'localhost'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['catalog.invalid', '::', '0.0.0.0']) expect(isLoopback(host)).toBe(false);
  });
});

describe('VOLBACK_CATALOG_TOKENS_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volback-catalog-tokens-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ADMIN = 'admin-token-0123456789abcdef';
  const fileWith = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };

  it('given the file of volback init, then its tokens besides the env ones, as hashes', () => {
    const file = fileWith(
      'tokens.json',
      JSON.stringify({
        tokens: [
          { name: 'admin', scope: 'write', sha256: hashToken(ADMIN).toUpperCase() },
          { name: 'read', scope: 'read', sha256: hashToken('read-token-0123456789abcdef') },
        ],
      }),
    );
    const config = loadConfig(
      {
        VOLBACK_CATALOG_TOKENS_FILE: file,
        VOLBACK_CATALOG_WRITE_TOKEN: 'write-token-0123456789',
        VOLBACK_CATALOG_HOST: '0.0.0.0',
      },
      [],
      cwd,
    );
    expect(config.tokens).toEqual([
      { name: 'VOLBACK_CATALOG_WRITE_TOKEN', scope: 'write', sha256: hashToken('write-token-0123456789') },
      { name: 'admin', scope: 'write', sha256: hashToken(ADMIN) },
      { name: 'read', scope: 'read', sha256: hashToken('read-token-0123456789abcdef') },
    ]);
    expect(JSON.stringify(config)).not.toContain(ADMIN);
  });

  it('given a bad file, then an error naming the file that never quotes it', () => {
    const cases: Array<[string, RegExp]> = [
      [
        `{"tokens":[{"name":"admin","scope":"write","sha256":"${ADMIN}"}]}`,
        /tokens\.0\.sha256: the hex SHA-256/,
      ],
      [`{"tokens":[{"name":"admin","scope":"write","sha256":"${ADMIN}"`, /is not valid JSON/],
      [`${ADMIN}\n`, /is not valid JSON/],
      ['{"tokens":[]}', /lists no token/],
      [`{"tokens":[{"name":"admin","scope":"admin","sha256":"${hashToken(ADMIN)}"}]}`, /tokens\.0\.scope/],
      [
        `{"tokens":[{"name":"a","scope":"write","sha256":"${hashToken(ADMIN)}"},{"name":"b","scope":"read","sha256":"${hashToken(ADMIN)}"}]}`,
        /tokens\.1\.sha256: the same token is listed twice/,
      ],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      const file = fileWith(`bad-${i}.json`, text);
      const error = errorOf({ VOLBACK_CATALOG_TOKENS_FILE: file });
      expect(error.variable).toBe('VOLBACK_CATALOG_TOKENS_FILE');
      expect(error.message).toContain(file);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain(ADMIN);
    }
    const missing = errorOf({ VOLBACK_CATALOG_TOKENS_FILE: join(dir, 'none.json') });
    expect(missing.message).toMatch(/cannot read .*none\.json \(ENOENT\)/);
  });

  it('given only read tokens, then an error: commands would be open from this machine', () => {
    const file = fileWith(
      'read-only.json',
      JSON.stringify({ tokens: [{ name: 'read', scope: 'read', sha256: hashToken(ADMIN) }] }),
    );
    expect(errorOf({ VOLBACK_CATALOG_TOKENS_FILE: file }).variable).toBe('VOLBACK_CATALOG_WRITE_TOKEN');
  });
});
