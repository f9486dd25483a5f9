import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  MINIO,
  resolveBinary,
  startProcess,
  waitUntil,
  type ProcessExit,
  type ServerProcess,
} from '@volback/process';

/** Options of {@link startMinioServer}. */
export interface MinioServerOptions {
  /** Where MinIO keeps buckets and objects; kept on stop. A fresh one, removed on stop, when omitted. */
  readonly dataDir?: string;
  /** S3 API port on 127.0.0.1; a free random one when omitted. */
  readonly port?: number;
  /**
   * Serve HTTPS with this certificate and key (PEM; MinIO's `--certs-dir` layout) instead of
   * HTTP; `ca` is the CA the readiness probe trusts.
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** A running single-drive MinIO server on loopback, with random root credentials. */
export interface MinioServer extends ServerProcess {
  /** Host name for S3 clients: `127.0.0.1`. */
  readonly endpoint: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` (`https://` with {@link MinioServerOptions.tls}) */
  readonly url: string;
  /** The root user, usable as an S3 access key. */
  readonly accessKey: string;
  /** The root password, usable as an S3 secret key. */
  readonly secretKey: string;
  readonly dataDir: string;
}

/**
 * Environment that keeps MinIO to itself: no update check, no call-home, no web console, and a
 * HOME of its own so it writes nothing under the real one. Nothing else is inherited, so a
 * developer's `MINIO_*` settings cannot leak into tests.
 */
export function minioEnvironment(home: string, accessKey: string, secretKey: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    MINIO_ROOT_USER: accessKey,
    MINIO_ROOT_PASSWORD: secretKey,
    MINIO_BROWSER: 'off',
    MINIO_UPDATE: 'off',
    MINIO_CALLHOME_ENABLE: 'off',
  };
}

/** Starts MinIO on loopback and waits until it reports itself ready for S3 requests. */
export async function startMinioServer(options: MinioServerOptions = {}): Promise<MinioServer> {
  const bin = resolveBinary(MINIO);
  // Log, certificates and HOME live beside the data, never inside it: MinIO would list them as buckets.
  const workDir = await mkdtemp(join(tmpdir(), 'volback-minio-'));
  const dataDir = options.dataDir ?? join(workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  await mkdir(join(workDir, 'certs'));
  if (options.tls) {
    await writeFile(join(workDir, 'certs/public.crt'), options.tls.cert, { mode: 0o600 });
    await writeFile(join(workDir, 'certs/private.key'), options.tls.key, { mode: 0o600 });
  }
  const port = options.port ?? (await freePort());
  const consolePort = await freePort();
  const accessKey = `volback-${randomBytes(6).toString('hex')}`;
  const secretKey = randomBytes(24).toString('hex');
  const args = [
    'server',
    '--quiet',
    '--anonymous',
    '--address',
    `127.0.0.1:${port}`,
    '--console-address',
    `127.0.0.1:${consolePort}`,
    '--certs-dir',
    join(workDir, 'certs'),
    dataDir,
  ];
  const proc = startProcess(
    bin,
    args,
    join(workDir, 'minio.log'),
    minioEnvironment(workDir, accessKey, secretKey),
  );
  let exit: ProcessExit | undefined;
  void proc.exited.then((e) => (exit = e));
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const tls = options.tls;
  const ready = tls
    ? () =>
        new Promise<boolean>((resolve) => {
          httpsGet(`${url}/minio/health/ready`, { ca: tls.ca }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          }).once('error', () => resolve(false));
        })
    : async () => (await fetch(`${url}/minio/health/ready`)).ok;
  try {
    await waitUntil(`minio on port ${port} (log: ${proc.logFile})`, async () => {
      if (exit) return true;
      return ready();
    });
    if (exit)
      throw new Error(
        `minio exited (code ${exit.code}, signal ${exit.signal}) before it was ready; see ${proc.logFile}`,
      );
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    ...proc,
    endpoint: '127.0.0.1',
    port,
    url,
    accessKey,
    secretKey,
    dataDir,
    async stop(graceMs?: number) {
      await proc.stop(graceMs);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
