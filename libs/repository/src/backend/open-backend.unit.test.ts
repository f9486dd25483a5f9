import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendConfigError } from './backend-config-error.ts';
import { LocalBackend } from './local-backend.ts';
import { openBackend } from './open-backend.ts';
import { S3Backend } from './s3-backend.ts';

const credentials = { AWS_ACCESS_KEY_ID: 'access', AWS_SECRET_ACCESS_KEY: 'secret' };

describe('openBackend', () => {
  it('opens a directory, given as a path or as local:', async () => {
    for (const location of ['/srv/backups/repo', 'local:/srv/backups/repo']) {
      const backend = openBackend(location, {});
      expect(backend).toBeInstanceOf(LocalBackend);
      expect(backend.location).toBe('/srv/backups/repo');
      await backend.close();
    }
    expect(openBackend('relative/repo', {}).location).toBe(resolve('relative/repo'));
  });

  it('opens an S3 location with credentials from the environment, keeping them out of the location', async () => {
    const backend = openBackend('s3:http://127.0.0.1:9000/bucket/prefix', credentials);
    expect(backend).toBeInstanceOf(S3Backend);
    expect(backend.location).toBe('s3:http://127.0.0.1:9000/bucket/prefix');
    expect(JSON.stringify(backend)).not.toContain('secret');
    await backend.close();
  });

  it('asks for S3 credentials when the environment lacks them', () => {
    for (const env of [{}, { AWS_ACCESS_KEY_ID: 'access' }, { AWS_SECRET_ACCESS_KEY: 'secret' }]) {
      expect(() => openBackend('s3:http://127.0.0.1:9000/bucket', env)).toThrow(
        /set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
      );
    }
  });

  it('refuses malformed S3 locations, other restic backends and an empty location', () => {
    expect(() => openBackend('s3:http://127.0.0.1:9000', credentials)).toThrow(BackendConfigError);
    expect(() => openBackend('sftp:user@host:/srv/repo', credentials)).toThrow(/"sftp:" is not supported/);
    expect(() => openBackend('rest:http://host:8000/', credentials)).toThrow(BackendConfigError);
    expect(() => openBackend('', credentials)).toThrow(/no repository location/);
    expect(() => openBackend('local:', credentials)).toThrow(/no repository location/);
  });
});
