import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './processes.ts';

describe('freePort', () => {
  it('hands out each port once, below the ephemeral range, each one bindable', async () => {
    // A cluster of three nodes asks for nine ports before any server binds one: the kernel's
    // bind(0) could give a closed probe's port to the next probe.
    const ports = await Promise.all(Array.from({ length: 300 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(32_768);
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[0], '127.0.0.1', resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });
});
