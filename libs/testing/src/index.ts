// The process parts the harness shares with the running system (finding a server binary, starting
// and stopping a child, NATS, waiting for a state) live in @volback/process; tests reach them here.
export {
  BinaryNotFoundError,
  BUSYBOX,
  cacheDir,
  CONTAINERD,
  DOCKERD,
  freePort,
  MINIO,
  NATS_MAX_PAYLOAD,
  NATS_SERVER,
  resolveBinary,
  RESTIC,
  serviceEnv,
  serviceNodeFlags,
  startNatsServer,
  startProcess,
  waitFor,
  waitUntil,
  type BinarySpec,
  type NatsServer,
  type NatsServerOptions,
  type ProcessExit,
  type ServerProcess,
} from '@volback/process';
export * from './processes.ts';
export * from './mounts.ts';
export * from './cgroups.ts';
export * from './minio-server.ts';
export * from './nats-cluster.ts';
export * from './minio-cluster.ts';
export * from './busybox-image.ts';
export * from './docker-engine.ts';
export * from './deterministic-output.ts';
export type { HarnessContext } from './global-setup.ts';
export * from './notification-receivers.ts';
