import { describe, expect, it } from 'vitest';
import { BackendConfigError } from './backend-config-error.ts';
import { parseS3Location } from './s3-location.ts';

describe('parseS3Location', () => {
  it.each([
    [
      's3:http://127.0.0.1:9000/bucket',
      { useSSL: false, host: '127.0.0.1', port: 9000, bucket: 'bucket', prefix: '' },
      's3:http://127.0.0.1:9000/bucket',
    ],
    [
      's3:https://minio.example.org/backups/hosts/web-1',
      { useSSL: true, host: 'minio.example.org', port: undefined, bucket: 'backups', prefix: 'hosts/web-1' },
      's3:https://minio.example.org/backups/hosts/web-1',
    ],
    [
      's3:http://localhost:9000/my.bucket-1//a///b/',
      { useSSL: false, host: 'localhost', port: 9000, bucket: 'my.bucket-1', prefix: 'a/b' },
      's3:http://localhost:9000/my.bucket-1/a/b',
    ],
    [
      's3:s3.amazonaws.com/bucket/restic',
      { useSSL: true, host: 's3.amazonaws.com', port: undefined, bucket: 'bucket', prefix: 'restic' },
      's3:https://s3.amazonaws.com/bucket/restic',
    ],
    [
      's3://s3.example.org:8443/bucket',
      { useSSL: true, host: 's3.example.org', port: 8443, bucket: 'bucket', prefix: '' },
      's3:https://s3.example.org:8443/bucket',
    ],
    [
      's3:http://[::1]:9000/bucket/p',
      {
        useSSL: false,
        host: '::1',
        port: 9000,
        bucket: 'bucket',
        prefix: 'p',
        endpoint: 'http://[::1]:9000',
      },
      's3:http://[::1]:9000/bucket/p',
    ],
    [
      's3:http://MinIO.Local:80/bucket/',
      { useSSL: false, host: 'minio.local', port: undefined, bucket: 'bucket', prefix: '' },
      's3:http://minio.local/bucket',
    ],
  ])('parses %s', (input, expected, canonical) => {
    const parsed = parseS3Location(input);
    expect(parsed).toMatchObject(expected);
    expect(parsed.location).toBe(canonical);
    // The canonical form parses to itself.
    expect(parseS3Location(parsed.location)).toEqual(parsed);
  });

  it.each([
    ['/srv/repo', /does not start with "s3:"/],
    ['s3:', /no host/],
    ['s3:http://', /no host/],
    ['s3:http://127.0.0.1:9000', /no bucket name/],
    ['s3:http://127.0.0.1:9000/', /no bucket name/],
    ['s3:http://127.0.0.1:9000//prefix', /no bucket name/],
    ['s3:minio.local', /no bucket name/],
    ['s3:ftp://host/bucket', /only http and https/],
    ['s3:http://127.0.0.1:notaport/bucket', /not a valid host\[:port\]/],
    ['s3:http://127.0.0.1:70000/bucket', /not a valid host\[:port\]/],
    ['s3:http://127.0.0.1:/bucket', /empty port/],
    ['s3:http://127.0.0.1:0/bucket', /port 0/],
    ['s3:http://host/Bucket', /bucket name "Bucket" is not valid/],
    ['s3:http://host/ab', /bucket name "ab" is not valid/],
    ['s3:http://host/under_score', /is not valid/],
    ['s3:http://host/a..b', /is not valid/],
    ['s3:http://host/127.0.0.1', /is not valid/],
    ['s3:http://host/bucket/../escape', /may not contain "\.\."/],
    ['s3:http://host/bucket/./here', /may not contain "\."/],
    ['s3:http://host/bucket?versionId=1', /query strings/],
    ['s3:http://host/bucket/p#frag', /query strings/],
    ['s3:http://host/bucket/a\tb', /control characters/],
  ])('refuses %s', (input, message) => {
    expect(() => parseS3Location(input)).toThrow(BackendConfigError);
    expect(() => parseS3Location(input)).toThrow(message);
  });

  it('refuses credentials in the location without repeating them', () => {
    const attempt = () => parseS3Location('s3:http://AKIAEXAMPLE:s3cr3t-v4lue@127.0.0.1:9000/bucket');
    expect(attempt).toThrow(/credentials do not belong in the location/);
    try {
      attempt();
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cr3t-v4lue');
      expect((error as Error).message).not.toContain('AKIAEXAMPLE');
      expect((error as BackendConfigError).code).toBe('VOLBACK_REPO_BACKEND_CONFIG');
    }
  });
});
