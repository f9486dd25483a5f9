import type { TestProject } from 'vitest/node';
import { startDockerEngine, type DockerEngine } from './docker-engine.ts';
import { startMinioServer, type MinioServer } from './minio-server.ts';
import { startNatsServer, type NatsServer, type ServerProcess } from '@volback/process';

/**
 * What the global setup hands to every test file through vitest's `inject`: how to reach the
 * shared servers. Plain strings and numbers, since it crosses into the test workers as JSON.
 */
export interface HarnessContext {
  /** `nats://127.0.0.1:<port>` of a NATS server with JetStream. */
  natsUrl: string;
  /** Host of the MinIO S3 API: `127.0.0.1`. */
  minioEndpoint: string;
  minioPort: number;
  /** `http://127.0.0.1:<port>` */
  minioUrl: string;
  minioAccessKey: string;
  minioSecretKey: string;
  /** API socket of the shared Docker Engine. */
  dockerSocketPath: string;
  /** `unix://<dockerSocketPath>`, as in `DOCKER_HOST`. */
  dockerHost: string;
  /** The busybox image present on the shared engine. */
  dockerImage: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    harness: HarnessContext;
  }
}

let started: ServerProcess[] = [];

async function stopAll(): Promise<void> {
  const results = await Promise.allSettled(
    started.map((server) => ('destroy' in server ? (server as NatsServer).destroy() : server.stop())),
  );
  started = [];
  const failures = results.filter((result) => result.status === 'rejected').map((result) => result.reason);
  if (failures.length > 0) throw new AggregateError(failures, 'could not stop every shared server');
}

/** Starts the shared real servers once per test run; each test file makes its own names in them. */
export async function setup(project: TestProject): Promise<void> {
  const [nats, minio, docker] = await Promise.allSettled([
    startNatsServer(),
    startMinioServer(),
    startDockerEngine(),
  ]);
  started = [nats, minio, docker]
    .filter((result) => result.status === 'fulfilled')
    .map((result) => (result as PromiseFulfilledResult<ServerProcess>).value);
  if (nats.status === 'rejected' || minio.status === 'rejected' || docker.status === 'rejected') {
    // Stop what did start now; the teardown, if vitest still runs it, then finds nothing left.
    await stopAll().catch(() => undefined);
    const failures = [nats, minio, docker]
      .filter((result) => result.status === 'rejected')
      .map((result) => result.reason);
    throw new AggregateError(failures, 'could not start the shared test servers');
  }
  project.provide('harness', harnessContext(nats.value, minio.value, docker.value));
}

function harnessContext(nats: NatsServer, minio: MinioServer, docker: DockerEngine): HarnessContext {
  return {
    natsUrl: nats.url,
    minioEndpoint: minio.endpoint,
    minioPort: minio.port,
    minioUrl: minio.url,
    minioAccessKey: minio.accessKey,
    minioSecretKey: minio.secretKey,
    dockerSocketPath: docker.socketPath,
    dockerHost: docker.dockerHost,
    dockerImage: docker.image,
  };
}

export async function teardown(): Promise<void> {
  await stopAll();
}
