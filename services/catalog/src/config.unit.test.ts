import { describe, expect, it } from 'vitest';
import { isLoopback, loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';

const cwd = '/srv/volback';

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
    expect(config.writeToken).toBeUndefined();
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
    ];
    for (const [env, variable] of bad) {
      const error = (() => {
        try {
          loadConfig(env, [], cwd);
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error(`accepted ${JSON.stringify(env)}`);
      })();
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

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', '[::1]', 'localhost'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['catalog.invalid', '::', '0.0.0.0']) expect(isLoopback(host)).toBe(false);
  });
});
