import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, loadConfig } from './config.ts';
import { AgentErrorCode, ConfigError } from './errors.ts';

function failure(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env, '/srv');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('agent configuration', () => {
  it('has defaults for a local engine and NATS', () => {
    expect(loadConfig({}, '/srv')).toEqual({
      docker: { kind: 'unix', socketPath: '/var/run/docker.sock' },
      dockerHost: CONFIG_DEFAULTS.dockerHost,
      natsServers: ['nats://127.0.0.1:4222'],
      natsAuth: {},
      stateDir: '/var/lib/volback-agent',
      heartbeatSeconds: 30,
      streamReplicas: 1,
      opsHost: '127.0.0.1',
      opsPort: 9401,
      helperImage: 'busybox:latest',
      commandAckWaitSeconds: 30,
      dataTimeoutSeconds: 30,
    });
  });

  it('reads every setting', () => {
    const config = loadConfig(
      {
        DOCKER_HOST: 'unix:///run/user/1000/docker.sock',
        VOLBACK_NATS_URL: 'nats://n1:4222, nats://n2:4222',
        VOLBACK_NATS_NKEY_FILE: 'identities/agent-h1.nk',
        VOLBACK_NATS_CA_FILE: '/etc/volback/ca.crt',
        VOLBACK_HOST_ID_FILE: 'identities/agent-h1.json',
        VOLBACK_AGENT_STATE_DIR: 'state',
        VOLBACK_HOST_NAME: 'docker-prod-01',
        VOLBACK_AGENT_HEARTBEAT_SECONDS: '10',
        VOLBACK_STREAM_REPLICAS: '3',
        VOLBACK_OPS_HOST: '0.0.0.0',
        VOLBACK_OPS_PORT: '0',
        VOLBACK_HELPER_IMAGE: 'registry.example:5000/tools/busybox:1.36@sha256:abc',
      },
      '/srv',
    );
    expect(config).toMatchObject({
      docker: { kind: 'unix', socketPath: '/run/user/1000/docker.sock' },
      natsServers: ['nats://n1:4222', 'nats://n2:4222'],
      natsAuth: { nkeyFile: '/srv/identities/agent-h1.nk', caFile: '/etc/volback/ca.crt' },
      hostIdFile: '/srv/identities/agent-h1.json',
      stateDir: '/srv/state',
      hostName: 'docker-prod-01',
      heartbeatSeconds: 10,
      streamReplicas: 3,
      opsHost: '0.0.0.0',
      opsPort: 0,
      helperImage: 'registry.example:5000/tools/busybox:1.36@sha256:abc',
    });
  });

  it('reaches a remote engine over TCP, with TLS when DOCKER_TLS_VERIFY is set', () => {
    expect(loadConfig({ DOCKER_HOST: 'tcp://127.0.0.5' }).docker).toEqual({
      kind: 'tcp',
      host: '127.0.0.5',
      port: 2375,
    });
    expect(
      loadConfig({ DOCKER_HOST: 'tcp://[::1]:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' })
        .docker,
    ).toEqual({
      kind: 'tcp',
      host: '::1',
      port: 2376,
      tls: { caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' },
    });
  });

  it.each([
    [{ DOCKER_HOST: 'ssh://me@host' }, 'DOCKER_HOST', 'only unix:// and tcp://'],
    [{ DOCKER_HOST: 'unix://relative.sock' }, 'DOCKER_HOST', 'absolute socket path'],
    [{ DOCKER_HOST: 'not a url' }, 'DOCKER_HOST', 'is not unix:///path'],
    [{ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: 'maybe' }, 'DOCKER_TLS_VERIFY', 'is not 1/true/yes'],
    [{ VOLBACK_NATS_URL: 'http://nats:4222' }, 'VOLBACK_NATS_URL', 'not a nats://'],
    [{ VOLBACK_AGENT_HEARTBEAT_SECONDS: '0' }, 'VOLBACK_AGENT_HEARTBEAT_SECONDS', 'from 1 to 86400'],
    [{ VOLBACK_AGENT_HEARTBEAT_SECONDS: '1.5' }, 'VOLBACK_AGENT_HEARTBEAT_SECONDS', 'whole number'],
    [{ VOLBACK_OPS_PORT: '70000' }, 'VOLBACK_OPS_PORT', 'from 0 to 65535'],
    [{ VOLBACK_HOST_NAME: 'x'.repeat(254) }, 'VOLBACK_HOST_NAME', 'at most 253'],
    [{ VOLBACK_HELPER_IMAGE: 'busybox latest' }, 'VOLBACK_HELPER_IMAGE', 'not an image reference'],
  ])('refuses %o, naming the variable', (env, variable, message) => {
    const error = failure(env);
    expect(error.code).toBe(AgentErrorCode.ConfigInvalid);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toContain(message);
  });
});
