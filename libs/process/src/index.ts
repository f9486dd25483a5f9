export * from './binaries.ts';
export * from './nats-server.ts';
export * from './processes.ts';
export * from './service-launch.ts';
export * from './supervisor.ts';
export * from './wait.ts';
