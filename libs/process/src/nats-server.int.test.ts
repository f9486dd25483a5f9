import { describe, expect, inject, it } from 'vitest';
import { startNatsServer } from './nats-server.ts';

interface Varz {
  version: string;
  max_payload: number;
  jetstream?: { config?: { store_dir?: string } };
}

async function varz(monitorUrl: string): Promise<Varz> {
  return (await (await fetch(`${monitorUrl}/varz`)).json()) as Varz;
}

describe('nats-server harness', () => {
  it('runs a NATS server >= 2.12 with JetStream and a raised max_payload', async () => {
    const server = await startNatsServer();
    try {
      const info = await varz(server.monitorUrl);
      const [major, minor] = info.version.split('.').map(Number);
      expect(major! > 2 || (major === 2 && minor! >= 12)).toBe(true);
      expect(info.max_payload).toBe(16 * 1024 * 1024);
      expect(info.jetstream?.config?.store_dir).toContain(server.dataDir);
    } finally {
      await server.stop();
    }
    await expect(fetch(`${server.monitorUrl}/healthz`)).rejects.toThrow();
  });

  it('is shared with every test file through the global setup', () => {
    expect(inject('harness').natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
  });
});
