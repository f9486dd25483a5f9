import type { TestProject } from 'vitest/node';
import { startNatsServer, type NatsServer } from './nats-server.ts';

/** What the global setup hands to every test file through vitest's `inject`. */
export interface HarnessContext {
  natsUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    harness: HarnessContext;
  }
}

let nats: NatsServer | undefined;

/** Starts the shared real servers once per test run; each test file makes its own names in them. */
export async function setup(project: TestProject): Promise<void> {
  nats = await startNatsServer();
  project.provide('harness', { natsUrl: nats.url });
}

export async function teardown(): Promise<void> {
  await nats?.stop();
}
