import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, describeConfig, loadConfig } from './config.ts';
import { ConfigError, GatewayErrorCode } from './errors.ts';

const SECRET = 'config-test-secret-91c4';
const dir = mkdtempSync(join(tmpdir(), 'volback-gateway-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env, dir);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('storage gateway configuration', () => {
  it('has defaults around a local repository and its password', () => {
    expect(loadConfig({ VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET }, dir)).toEqual({
      repository: '/srv/backup',
      repositoryKind: 'local',
      password: SECRET,
      initRepository: true,
      repositoryId: 'default',
      natsServers: [CONFIG_DEFAULTS.natsUrl],
      natsAuth: {},
      gatewayId: `${hostname()}-${process.pid}`,
      streamReplicas: 1,
      opsHost: '127.0.0.1',
      opsPort: 9402,
      sessionIdleSeconds: 5,
      idleFlushSeconds: 3,
    });
  });

  it('reads every setting; an S3 repository is not created unless asked, and needs credentials', () => {
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${SECRET}\n`);
    const config = loadConfig(
      {
        VOLBACK_REPOSITORY: 's3:http://127.0.0.1:9000/backups/volback',
        AWS_ACCESS_KEY_ID: 'access',
        AWS_SECRET_ACCESS_KEY: 'secret-key',
        VOLBACK_PASSWORD_FILE: 'password',
        VOLBACK_REPOSITORY_ID: 'offsite',
        VOLBACK_NATS_URL: 'nats://127.0.0.1:4222, nats://127.0.0.1:4223',
        VOLBACK_NATS_CREDS: 'gateway.creds',
        VOLBACK_GATEWAY_ID: 'gw-1',
        VOLBACK_STREAM_REPLICAS: '3',
        VOLBACK_OPS_HOST: '127.0.0.1',
        VOLBACK_OPS_PORT: '0',
        VOLBACK_GATEWAY_SESSION_IDLE_SECONDS: '120',
        VOLBACK_GATEWAY_IDLE_FLUSH_SECONDS: '5',
      },
      dir,
    );
    expect(config).toEqual({
      repository: 's3:http://127.0.0.1:9000/backups/volback',
      repositoryKind: 's3',
      password: SECRET, // the file's trailing newline is not part of it
      initRepository: false,
      repositoryId: 'offsite',
      natsServers: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'],
      natsAuth: { credsFile: join(dir, 'gateway.creds') },
      gatewayId: 'gw-1',
      streamReplicas: 3,
      opsHost: '127.0.0.1',
      opsPort: 0,
      sessionIdleSeconds: 120,
      idleFlushSeconds: 5,
    });
    expect(
      loadConfig(
        {
          VOLBACK_REPOSITORY: 's3:http://127.0.0.1:9000/backups',
          AWS_ACCESS_KEY_ID: 'a',
          AWS_SECRET_ACCESS_KEY: 'b',
          VOLBACK_PASSWORD: SECRET,
          VOLBACK_REPOSITORY_INIT: 'yes',
        },
        dir,
      ).initRepository,
    ).toBe(true);
  });

  it('never shows the password when the configuration is described for the log', () => {
    const config = loadConfig({ VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET }, dir);
    expect(JSON.stringify(describeConfig(config))).not.toContain(SECRET);
  });

  it.each([
    [{ VOLBACK_PASSWORD: SECRET }, 'VOLBACK_REPOSITORY', 'no repository'],
    [{ VOLBACK_REPOSITORY: '/srv/backup' }, 'VOLBACK_PASSWORD', 'no repository password'],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_PASSWORD_FILE: 'password' },
      'VOLBACK_PASSWORD_FILE',
      'not both',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD_FILE: 'missing-file' },
      'VOLBACK_PASSWORD_FILE',
      'cannot read',
    ],
    [
      { VOLBACK_REPOSITORY: 's3:http://127.0.0.1:9000/backups', VOLBACK_PASSWORD: SECRET },
      'VOLBACK_REPOSITORY',
      'AWS_ACCESS_KEY_ID',
    ],
    [
      { VOLBACK_REPOSITORY: 's3:http://127.0.0.1:9000/', VOLBACK_PASSWORD: SECRET },
      'VOLBACK_REPOSITORY',
      'no bucket',
    ],
    [
      { VOLBACK_REPOSITORY: 'sftp:backup@127.0.0.1:/srv', VOLBACK_PASSWORD: SECRET },
      'VOLBACK_REPOSITORY',
      'not supported',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_REPOSITORY_INIT: 'maybe' },
      'VOLBACK_REPOSITORY_INIT',
      '1/true/yes',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_REPOSITORY_ID: 'Not Valid' },
      'VOLBACK_REPOSITORY_ID',
      'lower-case',
    ],
    [
      {
        VOLBACK_REPOSITORY: '/srv/backup',
        VOLBACK_PASSWORD: SECRET,
        VOLBACK_NATS_URL: 'http://127.0.0.1:4222',
      },
      'VOLBACK_NATS_URL',
      'nats://',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_GATEWAY_ID: 'has space' },
      'VOLBACK_GATEWAY_ID',
      'without spaces',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_OPS_PORT: '70000' },
      'VOLBACK_OPS_PORT',
      'whole number',
    ],
    [
      { VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD: SECRET, VOLBACK_STREAM_REPLICAS: '0' },
      'VOLBACK_STREAM_REPLICAS',
      'whole number',
    ],
  ])('names the variable at fault: %j', (env, variable, message) => {
    const error = failure(env);
    expect(error.variable).toBe(variable);
    expect(error.code).toBe(GatewayErrorCode.ConfigInvalid);
    expect(error.message).toContain(message);
    expect(error.message).not.toContain(SECRET);
  });

  it('refuses an empty password file', () => {
    writeFileSync(join(dir, 'empty'), '\n');
    expect(failure({ VOLBACK_REPOSITORY: '/srv/backup', VOLBACK_PASSWORD_FILE: 'empty' }).message).toContain(
      'is empty',
    );
  });
});
