export * from './errors.ts';
export * from './connection.ts';
export * from './streams.ts';
export * from './publisher.ts';
export * from './consumer.ts';
export * from './health-checks.ts';
export * from './kv-buckets.ts';
export * from './restore-grants.ts';
export type { NatsConnection } from '@nats-io/nats-core';
