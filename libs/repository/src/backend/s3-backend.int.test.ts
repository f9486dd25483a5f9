import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RESTIC, resolveBinary, startMinioServer, waitUntil } from '@volback/testing';
import { Client } from 'minio';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RepositoryErrorCode } from '../errors.ts';
import { describeBackendConformance } from './backend-conformance.ts';
import { S3Backend, s3BackendFromEnv } from './s3-backend.ts';
import { errorOf } from '../test-support/errors.ts';

const run = promisify(execFile);

function harness() {
  return inject('harness');
}

function adminClient(): Client {
  const h = harness();
  return new Client({
    endPoint: h.minioEndpoint,
    port: h.minioPort,
    useSSL: false,
    accessKey: h.minioAccessKey,
    secretKey: h.minioSecretKey,
  });
}

function credentials() {
  return { accessKey: harness().minioAccessKey, secretKey: harness().minioSecretKey };
}

function newBucket(): string {
  return `volback-test-${randomBytes(6).toString('hex')}`;
}

/** Deletes a bucket and everything in it; a bucket never made is fine. */
async function removeBucket(s3: Client, bucket: string): Promise<void> {
  if (!(await s3.bucketExists(bucket))) return;
  const keys: string[] = [];
  for await (const item of s3.listObjectsV2(bucket, '', true))
    if (item.name !== undefined) keys.push(item.name);
  if (keys.length > 0) await s3.removeObjects(bucket, keys);
  await s3.removeBucket(bucket);
}

/** SIGSTOP reaches a process's threads one by one: wait until every one of them has stopped. */
async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await waitUntil(
    `every thread of process ${pid} to stop`,
    async () => {
      const tasks = await readdir(`/proc/${pid}/task`);
      const states = await Promise.all(
        tasks.map(async (task) => {
          const stat = await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => ') T');
          return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        }),
      );
      return states.every((state) => state === 'T' || state === 't');
    },
    5_000,
  );
}

const CONFIG = { type: 'config', name: 'config' } as const;

for (const prefix of ['', 'team-a/restic/repo']) {
  describeBackendConformance(`s3 (${prefix === '' ? 'bucket root' : `prefix ${prefix}`})`, async () => {
    const s3 = adminClient();
    const bucket = newBucket();
    const location = `s3:${harness().minioUrl}/${bucket}${prefix === '' ? '' : `/${prefix}/`}`;
    // A missing pack is asked for again for 10 s by default (tested below): not here.
    const backend = new S3Backend(location, { credentials: credentials(), missingPackWaitMs: 0 });
    return {
      backend,
      async writeRaw(path, data) {
        await s3.putObject(bucket, prefix === '' ? path : `${prefix}/${path}`, Buffer.from(data));
      },
      async cleanup() {
        await backend.close();
        await removeBucket(s3, bucket);
      },
    };
  });
}

describe('S3Backend', () => {
  const s3 = adminClient();
  const buckets: string[] = [];
  const bucket = (): string => {
    const name = newBucket();
    buckets.push(name);
    return name;
  };

  afterAll(async () => {
    for (const name of buckets) await removeBucket(s3, name);
  });

  it('keeps its location free of credentials', () => {
    const backend = new S3Backend(`s3:${harness().minioUrl}/some-bucket/a/b`, { credentials: credentials() });
    expect(backend.location).toBe(`s3:${harness().minioUrl}/some-bucket/a/b`);
    expect(backend.location).not.toContain(harness().minioSecretKey);
    expect(JSON.stringify(backend)).not.toContain(harness().minioSecretKey);
  });

  it('stores files under restic’s key layout below its prefix', async () => {
    const name = bucket();
    const backend = new S3Backend(`s3:${harness().minioUrl}/${name}/base`, { credentials: credentials() });
    try {
      await backend.create();
      const id = `ab${randomBytes(31).toString('hex')}`;
      await backend.save(CONFIG, Buffer.from('c'));
      await backend.save({ type: 'data', name: id }, Buffer.from('d'));
      await backend.save({ type: 'keys', name: id }, Buffer.from('k'));
      const keys: string[] = [];
      for await (const item of s3.listObjectsV2(name, '', true))
        if (item.name !== undefined) keys.push(item.name);
      expect(keys.sort()).toEqual(['base/config', `base/data/ab/${id}`, `base/keys/${id}`]);
    } finally {
      await backend.close();
    }
  });

  it('keeps repositories under neighbouring prefixes apart', async () => {
    const name = bucket();
    const a = new S3Backend(`s3:${harness().minioUrl}/${name}/repo`, { credentials: credentials() });
    const b = new S3Backend(`s3:${harness().minioUrl}/${name}/repo2`, { credentials: credentials() });
    const root = new S3Backend(`s3:${harness().minioUrl}/${name}`, { credentials: credentials() });
    try {
      await a.create();
      const id = randomBytes(32).toString('hex');
      await a.save({ type: 'keys', name: id }, Buffer.from('a'));
      await a.save(CONFIG, Buffer.from('a'));
      for (const other of [b, root]) {
        const listed = [];
        for await (const file of other.list('keys')) listed.push(file);
        expect(listed).toEqual([]);
        await expect(other.stat(CONFIG)).rejects.toMatchObject({ code: RepositoryErrorCode.FileNotFound });
      }
    } finally {
      await Promise.all([a.close(), b.close(), root.close()]);
    }
  });

  it('reads a missing bucket as an empty repository and refuses to save into it', async () => {
    const backend = new S3Backend(`s3:${harness().minioUrl}/${newBucket()}`, { credentials: credentials() });
    try {
      expect((await errorOf(backend.load(CONFIG))).code).toBe(RepositoryErrorCode.FileNotFound);
      expect((await errorOf(backend.stat(CONFIG))).code).toBe(RepositoryErrorCode.FileNotFound);
      const listed = [];
      for await (const file of backend.list('snapshots')) listed.push(file);
      expect(listed).toEqual([]);
      await backend.remove({ type: 'locks', name: randomBytes(32).toString('hex') });
      const error = await errorOf(backend.save(CONFIG, Buffer.from('x')));
      expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
      expect(error.message).toMatch(/does not exist/);
    } finally {
      await backend.close();
    }
  });

  it('fails fast and names the endpoint when nothing listens there', async () => {
    const backend = new S3Backend('s3:http://127.0.0.1:1/bucket', { credentials: credentials() });
    try {
      for (const attempt of [
        () => backend.create(),
        () => backend.stat(CONFIG),
        () => backend.load(CONFIG),
      ]) {
        const started = Date.now();
        const error = await errorOf(attempt());
        expect(Date.now() - started).toBeLessThan(3_000);
        expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
        expect(error.message).toContain('http://127.0.0.1:1');
        expect(error.message).toMatch(/refused the connection/);
      }
      const listing = (async () => {
        for await (const _file of backend.list('keys')) break;
      })();
      expect((await errorOf(listing)).code).toBe(RepositoryErrorCode.BackendUnavailable);
    } finally {
      await backend.close();
    }
  });

  it('reports a wrong secret key as access denied', async () => {
    const name = bucket();
    await s3.makeBucket(name);
    await s3.putObject(name, 'config', Buffer.from('config'));
    const backend = new S3Backend(`s3:${harness().minioUrl}/${name}`, {
      credentials: { accessKey: harness().minioAccessKey, secretKey: 'wrong-secret-key' },
    });
    try {
      for (const attempt of [
        () => backend.create(),
        () => backend.stat(CONFIG),
        () => backend.load(CONFIG),
      ]) {
        const error = await errorOf(attempt());
        expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
        expect(error.message).toMatch(/access denied/);
        expect(error.message).toContain(harness().minioUrl);
        expect(error.message).not.toContain('wrong-secret-key');
      }
      const error = await errorOf(
        backend.save({ type: 'keys', name: randomBytes(32).toString('hex') }, Buffer.from('k')),
      );
      expect(error.message).toMatch(/access denied/);
    } finally {
      await backend.close();
    }
  });

  it('reports an unknown access key as access denied', async () => {
    const backend = new S3Backend(`s3:${harness().minioUrl}/${newBucket()}`, {
      credentials: { accessKey: 'nobody', secretKey: harness().minioSecretKey },
    });
    try {
      const error = await errorOf(backend.create());
      expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
      expect(error.message).toMatch(/access denied/);
    } finally {
      await backend.close();
    }
  });

  it('asks again for a pack that answers NoSuchKey (a MinIO node lost), then calls it missing, at once from then on', async () => {
    const backend = new S3Backend(`s3:${harness().minioUrl}/${bucket()}`, {
      credentials: credentials(),
      missingPackWaitMs: 5_000,
    });
    try {
      await backend.create();
      const pack = { type: 'data', name: randomBytes(32).toString('hex') } as const;
      // Missing when the read starts, there a second later: the read returns it.
      const reading = backend.load(pack, { offset: 2, length: 3 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await backend.save(pack, Buffer.from('0123456789'));
      expect((await reading).toString()).toBe('234');

      // Gone for longer than the wait: FileNotFound after it (the last wait is at most 1.6 s)…
      await backend.remove(pack);
      let started = Date.now();
      const gone = await errorOf(backend.load(pack, { offset: 0, length: 4 }));
      expect(gone.code).toBe(RepositoryErrorCode.FileNotFound);
      expect(gone.message).toMatch(/not found/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
      // … then at once, whole or in part, until it is read again.
      started = Date.now();
      expect((await errorOf(backend.load(pack))).code).toBe(RepositoryErrorCode.FileNotFound);
      expect((await errorOf(backend.load(pack, { offset: 1, length: 1 }))).code).toBe(
        RepositoryErrorCode.FileNotFound,
      );
      expect(Date.now() - started).toBeLessThan(2_500);
      await backend.save(pack, Buffer.from('back again'));
      expect((await backend.load(pack, { offset: 0, length: 4 })).toString()).toBe('back');

      // Other files are not waited for: a missing index or snapshot is an answer of its own.
      started = Date.now();
      for (const type of ['index', 'snapshots', 'locks'] as const)
        expect((await errorOf(backend.load({ type, name: pack.name }))).code).toBe(
          RepositoryErrorCode.FileNotFound,
        );
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await backend.close();
    }
  }, 30_000);

  it('times out against a server that stopped answering, then works once it answers again', async () => {
    const minio = await startMinioServer();
    const backend = new S3Backend(`s3:${minio.url}/${newBucket()}`, {
      credentials: { accessKey: minio.accessKey, secretKey: minio.secretKey },
      idleTimeoutMs: 500,
    });
    try {
      await backend.create();
      await backend.save(CONFIG, Buffer.from('config'));
      await freeze(minio.pid);
      try {
        const started = Date.now();
        const error = await errorOf(backend.load(CONFIG));
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
        expect(error.message).toContain(minio.url);
        expect(error.message).toMatch(/did not answer within 500 ms/);
      } finally {
        process.kill(minio.pid, 'SIGCONT');
      }
      expect((await backend.load(CONFIG)).toString()).toBe('config');
    } finally {
      await backend.close();
      await minio.stop();
    }
  });

  it('reports a server that went away as BackendUnavailable', async () => {
    const minio = await startMinioServer();
    const backend = new S3Backend(`s3:${minio.url}/${newBucket()}`, {
      credentials: { accessKey: minio.accessKey, secretKey: minio.secretKey },
    });
    let stopped = false;
    try {
      await backend.create();
      await minio.stop();
      stopped = true;
      const error = await errorOf(backend.stat(CONFIG));
      expect(error.code).toBe(RepositoryErrorCode.BackendUnavailable);
      expect(error.message).toContain(minio.url);
    } finally {
      await backend.close();
      if (!stopped) await minio.stop();
    }
  });

  it('takes its credentials from restic’s environment variables', async () => {
    const name = bucket();
    const h = harness();
    const backend = s3BackendFromEnv(`s3:${h.minioUrl}/${name}`, {
      AWS_ACCESS_KEY_ID: h.minioAccessKey,
      AWS_SECRET_ACCESS_KEY: h.minioSecretKey,
    });
    try {
      await backend.create();
      await backend.save(CONFIG, Buffer.from('from env'));
      expect((await backend.load(CONFIG)).toString()).toBe('from env');
    } finally {
      await backend.close();
    }
  });
});

/** A CA and a certificate for 127.0.0.1 it signed (openssl), in `dir`. */
async function certificates(dir: string): Promise<{ ca: string; cert: string; key: string; caFile: string }> {
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    file('minio.key'),
    '-out',
    file('minio.csr'),
    '-subj',
    '/CN=minio',
  ]);
  await writeFile(file('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('minio.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    file('ext'),
    '-out',
    file('minio.crt'),
  ]);
  const [ca, cert, key] = await Promise.all(
    ['ca.crt', 'minio.crt', 'minio.key'].map((f) => readFile(file(f), 'utf8')),
  );
  return { ca: ca!, cert: cert!, key: key!, caFile: file('ca.crt') };
}

describe('S3Backend over TLS', () => {
  it('trusts the private CA of VOLBACK_S3_CA_FILE, reads the secret key from AWS_SECRET_ACCESS_KEY_FILE, and refuses the server without the CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volback-s3-tls-'));
    const pki = await certificates(dir);
    const minio = await startMinioServer({ tls: { cert: pki.cert, key: pki.key, ca: pki.ca } });
    const location = `s3:${minio.url}/${newBucket()}`;
    await writeFile(join(dir, 'secret-key'), `${minio.secretKey}\n`, { mode: 0o600 });
    const env = {
      AWS_ACCESS_KEY_ID: minio.accessKey,
      AWS_SECRET_ACCESS_KEY_FILE: join(dir, 'secret-key'),
    };
    const trusting = s3BackendFromEnv(location, { ...env, VOLBACK_S3_CA_FILE: pki.caFile });
    const untrusting = s3BackendFromEnv(location, env);
    try {
      expect(minio.url).toMatch(/^https:/);
      await trusting.create();
      await trusting.save(CONFIG, Buffer.from('over tls'));
      expect((await trusting.load(CONFIG)).toString()).toBe('over tls');

      const refused = await errorOf(untrusting.load(CONFIG));
      expect(refused.code).toBe(RepositoryErrorCode.BackendUnavailable);
      expect(refused.message).toMatch(/certificate/);
    } finally {
      await trusting.close();
      await untrusting.close();
      await minio.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a CA file that is missing or holds no certificate, and two secret keys, naming the variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volback-s3-tls-'));
    const location = 's3:https://127.0.0.1:9/bucket';
    const keys = { AWS_ACCESS_KEY_ID: 'key', AWS_SECRET_ACCESS_KEY: 'the-secret-value' };
    try {
      expect(() =>
        s3BackendFromEnv(location, { ...keys, VOLBACK_S3_CA_FILE: join(dir, 'missing.crt') }),
      ).toThrow(/VOLBACK_S3_CA_FILE: cannot read .*missing\.crt \(ENOENT\)/);
      await writeFile(join(dir, 'not-a.crt'), 'hello\n');
      expect(() =>
        s3BackendFromEnv(location, { ...keys, VOLBACK_S3_CA_FILE: join(dir, 'not-a.crt') }),
      ).toThrow(/VOLBACK_S3_CA_FILE: the file holds no PEM certificate/);
      await writeFile(join(dir, 'secret'), 'another-secret\n');
      let message = '';
      try {
        s3BackendFromEnv(location, { ...keys, AWS_SECRET_ACCESS_KEY_FILE: join(dir, 'secret') });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/either AWS_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY_FILE/);
      expect(message).not.toContain('secret-value');
      expect(message).not.toContain('another-secret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('S3Backend and restic', () => {
  it('reads the repository restic init writes to MinIO', async () => {
    const h = harness();
    const s3 = adminClient();
    const bucket = newBucket();
    const location = `s3:${h.minioUrl}/${bucket}/restic-made`;
    const home = await mkdtemp(join(tmpdir(), 'volback-restic-home-'));
    const backend = new S3Backend(location, { credentials: credentials() });
    try {
      await run(resolveBinary(RESTIC), ['--no-cache', '-r', location, 'init'], {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: home,
          RESTIC_PASSWORD: 'correct horse battery staple',
          AWS_ACCESS_KEY_ID: h.minioAccessKey,
          AWS_SECRET_ACCESS_KEY: h.minioSecretKey,
        },
      });

      const keys = [];
      for await (const key of backend.list('keys')) keys.push(key);
      expect(keys).toHaveLength(1);
      const keyFile = await backend.load({ type: 'keys', name: keys[0]!.name });
      expect(keyFile.length).toBe(keys[0]!.size);
      // Key files are plain JSON; restic's fields, not ours.
      expect(JSON.parse(keyFile.toString())).toMatchObject({ kdf: 'scrypt', salt: expect.any(String) });

      const config = await backend.load(CONFIG);
      const raw = await s3.getObject(bucket, 'restic-made/config');
      const chunks: Buffer[] = [];
      for await (const chunk of raw) chunks.push(chunk as Buffer);
      expect(config.equals(Buffer.concat(chunks))).toBe(true);
      // Format 2 encrypts the config: IV, ciphertext, MAC; never plain JSON.
      expect(config.length).toBeGreaterThan(32);
      expect(config.subarray(0, 1).toString()).not.toBe('{');
      expect(await backend.stat(CONFIG)).toEqual({ name: 'config', size: config.length });
      expect((await backend.load(CONFIG, { offset: -16 })).equals(config.subarray(-16))).toBe(true);
    } finally {
      await backend.close();
      await removeBucket(s3, bucket);
      await rm(home, { recursive: true, force: true });
    }
  });
});
