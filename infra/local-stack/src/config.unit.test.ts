import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from './config.ts';

describe('the local stack configuration', () => {
  it('has defaults for everything: a data dir in the working directory, the usual ports', () => {
    expect(readConfig({}, '/home/me/project')).toEqual({
      dataDir: '/home/me/project/.volback',
      natsServers: undefined,
      natsPort: 4222,
      opsPort: 9400,
      catalogPort: 8080,
      dockerHost: 'unix:///var/run/docker.sock',
      password: undefined,
      firstBackupDelaySeconds: '10',
    });
  });

  it('reads the settings with the services parsers: paths, ports, NATS URLs, the password or its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-stack-config-'));
    writeFileSync(join(dir, 'password'), 'from a file\n');
    const config = readConfig(
      {
        VOLBACK_DATA_DIR: 'data',
        VOLBACK_NATS_URL: 'nats://127.0.0.1:4300, nats://127.0.0.2:4300',
        VOLBACK_NATS_PORT: '0',
        VOLBACK_OPS_PORT: ' 9500 ',
        VOLBACK_CATALOG_PORT: '65535',
        DOCKER_HOST: 'unix:///tmp/docker.sock',
        VOLBACK_PASSWORD_FILE: join(dir, 'password'),
        VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '3',
      },
      dir,
    );
    expect(config).toEqual({
      dataDir: join(dir, 'data'),
      natsServers: ['nats://127.0.0.1:4300', 'nats://127.0.0.2:4300'],
      natsPort: 0,
      opsPort: 9500,
      catalogPort: 65_535,
      dockerHost: 'unix:///tmp/docker.sock',
      password: 'from a file',
      firstBackupDelaySeconds: '3',
    });
  });

  it('refuses a bad value with a ConfigError naming the variable, never the password', () => {
    const refusal = (env: NodeJS.ProcessEnv) => {
      try {
        readConfig(env, '/srv');
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return { variable: (error as ConfigError).variable, message: (error as Error).message };
      }
      throw new Error('accepted');
    };
    expect(refusal({ VOLBACK_NATS_PORT: 'lots' })).toEqual({
      variable: 'VOLBACK_NATS_PORT',
      message: 'VOLBACK_NATS_PORT: "lots" is not a whole number from 0 to 65535',
    });
    expect(refusal({ VOLBACK_OPS_PORT: '70000' }).variable).toBe('VOLBACK_OPS_PORT');
    expect(refusal({ VOLBACK_CATALOG_PORT: '-1' }).variable).toBe('VOLBACK_CATALOG_PORT');
    expect(refusal({ VOLBACK_NATS_URL: 'http://127.0.0.1:4222' }).variable).toBe('VOLBACK_NATS_URL');
    const both = refusal({ VOLBACK_PASSWORD: 's3cret-pw', VOLBACK_PASSWORD_FILE: '/srv/password' });
    expect(both.variable).toBe('VOLBACK_PASSWORD_FILE');
    expect(both.message).not.toContain('s3cret-pw');
  });
});
