/**
 * The process around volback's code: environment parsing, a service's bootstrap, and starting and
 * supervising child processes (NATS, the services). Services, `npm start`, the images and the test
 * harness share it. This file is the library's only public entry point.
 */
export * from './env.ts';
export * from './service.ts';
export * from './binaries.ts';
export * from './processes.ts';
export * from './wait.ts';
export * from './nats-server.ts';
export * from './supervisor.ts';
