import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The services the local stack runs, by name, with their entry points. */
export const STACK_SERVICES = {
  'storage-gateway': join(ROOT, 'services/storage-gateway/src/main.ts'),
  scheduler: join(ROOT, 'services/scheduler/src/main.ts'),
  catalog: join(ROOT, 'services/catalog/src/main.ts'),
  agent: join(ROOT, 'services/agent/src/main.ts'),
} as const;
/** One of {@link STACK_SERVICES}. */
export type StackService = keyof typeof STACK_SERVICES;

/**
 * The order services stop in: the agent first (it interrupts a running backup and hands its
 * command back, which needs the gateways to make what was sent durable and NATS to take the
 * command back), then the scheduler and the catalog, the gateways last of the services (every
 * other one may still read or write through them). The stack stops NATS after all of them.
 */
export const STOP_ORDER: readonly (readonly StackService[])[] = [
  ['agent'],
  ['scheduler', 'catalog'],
  ['storage-gateway'],
];

/** Whether a Docker Engine answers `_ping` at `DOCKER_HOST` (unix sockets; TCP engines are assumed up). */
export function dockerAnswers(dockerHost: string, timeoutMs = 2_000): Promise<boolean> {
  if (!dockerHost.startsWith('unix://')) return Promise.resolve(true);
  const socketPath = dockerHost.slice('unix://'.length);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}
