import { randomBytes } from 'node:crypto';
import { headers } from '@nats-io/nats-core';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsConnection } from './index.ts';

describe('large messages through nats.js (sized once on the way in, written unjoined on the way out)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ servers: server.url, name: 'presized-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('arrive byte for byte and in order among small ones, each in a buffer of its own size, with and without headers', async () => {
    const sizes = [1, 60 * 1024, 64 * 1024 + 7, 3 * 1024 * 1024 + 1, 12 * 1024 * 1024];
    const sent = sizes.map((size) => randomBytes(size));
    const received: { data: Uint8Array; header?: string }[] = [];
    const done = new Promise<void>((resolve) => {
      nc.subscribe('presized.test', {
        callback: (_err, msg) => {
          received.push({ data: msg.data, header: msg.headers?.get('Volback-Test') });
          if (received.length === sent.length * 2) resolve();
        },
      });
    });
    await nc.flush();
    for (const [i, payload] of sent.entries()) {
      const h = headers();
      h.set('Volback-Test', `message ${i}`);
      nc.publish('presized.test', payload);
      nc.publish('presized.test', payload, { headers: h });
    }
    await done;
    for (const [i, payload] of sent.entries()) {
      const plain = received[2 * i]!;
      const withHeaders = received[2 * i + 1]!;
      expect(Buffer.from(plain.data).equals(payload)).toBe(true);
      expect(Buffer.from(withHeaders.data).equals(payload)).toBe(true);
      expect(withHeaders.header).toBe(`message ${i}`);
      if (payload.length > 1024 * 1024) {
        // Grown by doubling it would sit in a buffer of up to twice its size.
        expect(plain.data.buffer.byteLength).toBe(payload.length);
        expect(withHeaders.data.buffer.byteLength).toBeLessThan(payload.length + 1024);
      }
    }
  });
});
