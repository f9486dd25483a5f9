export * from './binaries.ts';
export * from './processes.ts';
export * from './mounts.ts';
export * from './cgroups.ts';
export * from './nats-server.ts';
export * from './minio-server.ts';
export * from './busybox-image.ts';
export * from './docker-engine.ts';
export type { HarnessContext } from './global-setup.ts';
