export * from './binaries.ts';
export * from './processes.ts';
export * from './nats-server.ts';
export type { HarnessContext } from './global-setup.ts';
