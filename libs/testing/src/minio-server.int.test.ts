import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { Client } from 'minio';
import { describe, expect, inject, it } from 'vitest';
import { startMinioServer } from './minio-server.ts';
import { isAlive } from './processes.ts';

function sharedClient(secretKey = inject('harness').minioSecretKey): Client {
  const harness = inject('harness');
  return new Client({
    endPoint: harness.minioEndpoint,
    port: harness.minioPort,
    useSSL: false,
    accessKey: harness.minioAccessKey,
    secretKey,
  });
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('minio-server harness', () => {
  it('stores an object in a new bucket and returns the same bytes', async () => {
    const s3 = sharedClient();
    const bucket = `harness-${randomBytes(4).toString('hex')}`;
    // An odd size catches truncation and padding.
    const body = randomBytes(1024 * 1024 + 17);

    await s3.makeBucket(bucket);
    await s3.putObject(bucket, 'nested/object.bin', body, body.length);

    expect(await s3.bucketExists(bucket)).toBe(true);
    expect((await s3.statObject(bucket, 'nested/object.bin')).size).toBe(body.length);
    const returned = await readAll(await s3.getObject(bucket, 'nested/object.bin'));
    expect(returned.equals(body)).toBe(true);
  });

  it('refuses a wrong secret key', async () => {
    await expect(sharedClient('not-the-secret-key').listBuckets()).rejects.toThrow(/signature/i);
  });

  it('starts a server of its own on loopback and stops it by PID', async () => {
    const server = await startMinioServer();
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      expect((await fetch(`${server.url}/minio/health/live`)).ok).toBe(true);
      expect(await readdir(server.dataDir)).toContain('.minio.sys');
      expect(server.accessKey).not.toBe(inject('harness').minioAccessKey);
    } finally {
      await server.stop();
    }
    expect(await isAlive(server.pid)).toBe(false);
    await expect(fetch(`${server.url}/minio/health/live`)).rejects.toThrow();
  });
});
