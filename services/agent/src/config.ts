import type { NatsAuthFiles } from '@volback/messaging';
import { envReader, type EnvReader } from '@volback/runtime';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from './errors.ts';

/** How to reach the Docker Engine (from `DOCKER_HOST` and the usual Docker TLS variables). */
export type DockerConnection =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | {
      readonly kind: 'tcp';
      readonly host: string;
      readonly port: number;
      /** Client certificate and CA (`DOCKER_TLS_VERIFY`, files in `DOCKER_CERT_PATH`); absent: plain HTTP. */
      readonly tls?: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
    };

/** The agent's settings (README, "Configuration"). */
export interface AgentConfig {
  readonly docker: DockerConnection;
  /** `DOCKER_HOST` as given, for logs. */
  readonly dockerHost: string;
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file (never the secrets themselves). */
  readonly natsAuth: NatsAuthFiles;
  /**
   * The identity file `volback init agent` wrote (`{hostId, name}`): `VOLBACK_HOST_ID_FILE`, else
   * the `.json` beside the nkey seed when there is one. The host id comes from it.
   */
  readonly hostIdFile?: string;
  /** Where the agent keeps what must survive restarts (its host id). */
  readonly stateDir: string;
  /** Display name of the host; the engine's host name when absent. */
  readonly hostName?: string;
  readonly heartbeatSeconds: number;
  /** Replicas of the volback streams when the agent creates or updates them (3 on a JetStream cluster). */
  readonly streamReplicas: number;
  readonly opsHost: string;
  readonly opsPort: number;
  /**
   * Image of the helper containers that read and write volumes through the engine's archive API.
   * They are created, never started: any image on the engine will do; the agent does not pull it.
   */
  readonly helperImage: string;
  /** Seconds NATS waits for a sign of life from a running command before handing it out again. */
  readonly commandAckWaitSeconds: number;
  /** Seconds one data-path request (a chunk to a gateway) may take before it is retried. */
  readonly dataTimeoutSeconds: number;
  /**
   * Containers (names or ids) where hooks sent with a command may run, besides those labelled
   * `volback.hooks.allow=true` (README, "Hooks and who may run them").
   */
  readonly hookContainers: readonly string[];
  /** Whether `.volback/containers.json` keeps env values (`include`) or only their names (`exclude`). */
  readonly containersJsonEnv: 'include' | 'exclude';
}

/** Defaults of the settings, as documented. */
export const CONFIG_DEFAULTS = {
  dockerHost: 'unix:///var/run/docker.sock',
  natsUrl: 'nats://127.0.0.1:4222',
  stateDir: '/var/lib/volback-agent',
  heartbeatSeconds: 30,
  streamReplicas: 1,
  opsHost: '127.0.0.1',
  opsPort: 9401,
  helperImage: 'busybox:latest',
  commandAckWaitSeconds: 30,
  dataTimeoutSeconds: 30,
  containersJsonEnv: 'include',
} as const;

function dockerConnection(read: EnvReader, home: string): { docker: DockerConnection; dockerHost: string } {
  const dockerHost = read.value('DOCKER_HOST') ?? CONFIG_DEFAULTS.dockerHost;
  let url: URL;
  try {
    url = new URL(dockerHost);
  } catch {
    throw new ConfigError(
      'DOCKER_HOST',
      `${JSON.stringify(dockerHost)} is not unix:///path or tcp://host:port`,
    );
  }
  if (url.protocol === 'unix:') {
    const socketPath = decodeURIComponent(url.pathname);
    if (url.host !== '' || !isAbsolute(socketPath) || socketPath === '/') {
      throw new ConfigError(
        'DOCKER_HOST',
        `${JSON.stringify(dockerHost)} must name an absolute socket path: unix:///var/run/docker.sock`,
      );
    }
    return { docker: { kind: 'unix', socketPath }, dockerHost };
  }
  if (url.protocol === 'tcp:') {
    if (!url.hostname) throw new ConfigError('DOCKER_HOST', `${JSON.stringify(dockerHost)} has no host`);
    const tls = read.flag('DOCKER_TLS_VERIFY');
    const certPath = read.value('DOCKER_CERT_PATH') ?? join(home, '.docker');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port ? Number(url.port) : tls ? 2376 : 2375;
    return {
      docker: {
        kind: 'tcp',
        host,
        port,
        ...(tls
          ? {
              tls: {
                caFile: join(certPath, 'ca.pem'),
                certFile: join(certPath, 'cert.pem'),
                keyFile: join(certPath, 'key.pem'),
              },
            }
          : {}),
      },
      dockerHost,
    };
  }
  throw new ConfigError(
    'DOCKER_HOST',
    `${JSON.stringify(dockerHost)}: only unix:// and tcp:// engines are supported (not ${url.protocol.replace(/:$/, '')}://)`,
  );
}

/** A comma-separated list of container names or ids (`db, 3f2a9c1b7e04`). */
function containerList(read: EnvReader, name: string): string[] {
  const items = (read.value(name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) {
    if (item.length > 255 || !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(item)) {
      throw new ConfigError(name, `${JSON.stringify(item)} is not a container name or id`);
    }
  }
  return items.map((item) => item.replace(/^\//, ''));
}

/** Reads the agent's configuration; throws {@link ConfigError} naming the variable at fault. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AgentConfig {
  const read = envReader(env, cwd, ConfigError);
  const { docker, dockerHost } = dockerConnection(read, homedir());
  const { natsServers, natsAuth } = read.nats();
  const hostName = read.value('VOLBACK_HOST_NAME');
  if (hostName !== undefined && hostName.length > 253) {
    throw new ConfigError('VOLBACK_HOST_NAME', 'a display name has at most 253 characters');
  }
  const beside = natsAuth.nkeyFile?.replace(/\.nk$/, '.json');
  const givenHostIdFile = read.value('VOLBACK_HOST_ID_FILE');
  const hostIdFile = givenHostIdFile
    ? resolve(cwd, givenHostIdFile)
    : beside && beside !== natsAuth.nkeyFile && existsSync(beside)
      ? beside
      : undefined;
  const helperImage = read.value('VOLBACK_HELPER_IMAGE') ?? CONFIG_DEFAULTS.helperImage;
  if (helperImage.length > 512 || !/^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$/.test(helperImage)) {
    throw new ConfigError('VOLBACK_HELPER_IMAGE', `${JSON.stringify(helperImage)} is not an image reference`);
  }
  return {
    docker,
    dockerHost,
    natsServers,
    natsAuth,
    ...(hostIdFile ? { hostIdFile } : {}),
    stateDir: resolve(cwd, read.value('VOLBACK_AGENT_STATE_DIR') ?? CONFIG_DEFAULTS.stateDir),
    ...(hostName ? { hostName } : {}),
    heartbeatSeconds: read.integer(
      'VOLBACK_AGENT_HEARTBEAT_SECONDS',
      CONFIG_DEFAULTS.heartbeatSeconds,
      1,
      86_400,
    ),
    streamReplicas: read.integer('VOLBACK_STREAM_REPLICAS', CONFIG_DEFAULTS.streamReplicas, 1, 5),
    opsHost: read.value('VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: read.integer('VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    helperImage,
    commandAckWaitSeconds: read.integer(
      'VOLBACK_COMMAND_ACK_WAIT_SECONDS',
      CONFIG_DEFAULTS.commandAckWaitSeconds,
      3,
      3600,
    ),
    dataTimeoutSeconds: read.integer(
      'VOLBACK_DATA_TIMEOUT_SECONDS',
      CONFIG_DEFAULTS.dataTimeoutSeconds,
      1,
      600,
    ),
    hookContainers: containerList(read, 'VOLBACK_AGENT_HOOK_CONTAINERS'),
    containersJsonEnv: containersJsonEnv(read),
  };
}

function containersJsonEnv(read: EnvReader): AgentConfig['containersJsonEnv'] {
  const raw =
    read.value('VOLBACK_AGENT_CONTAINERS_JSON_ENV')?.toLowerCase() ?? CONFIG_DEFAULTS.containersJsonEnv;
  if (raw !== 'include' && raw !== 'exclude') {
    throw new ConfigError(
      'VOLBACK_AGENT_CONTAINERS_JSON_ENV',
      `${JSON.stringify(raw)} is not include or exclude`,
    );
  }
  return raw;
}
