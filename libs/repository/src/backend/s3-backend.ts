import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as MinioModule from 'minio';
import type { Client, ClientOptions } from 'minio';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { release } from '../format/release.ts';
import { BackendConfigError } from './backend-config-error.ts';

import {
  bodyPieces,
  checkRange,
  isFileId,
  layoutPath,
  resolveRange,
  type Backend,
  type ByteRange,
  type FileBody,
  type FileHandle,
  type FileInfo,
  type FileType,
} from './backend.ts';
import { parseS3Location, type S3Location } from './s3-location.ts';

// node:http and node:https are loaded when an S3 backend is used, not with the library: importing
// them as ES modules loads Node's fetch implementation too (about 20 ms of every command's start).
const http = () => process.getBuiltinModule('node:http');
const https = () => process.getBuiltinModule('node:https');

/** The keys an S3 backend signs its requests with. */
export interface S3Credentials {
  readonly accessKey: string;
  readonly secretKey: string;
  /** For temporary credentials (STS). */
  readonly sessionToken?: string;
}

/** Options of {@link S3Backend}. */
export interface S3BackendOptions {
  readonly credentials: S3Credentials;
  /** The bucket's region; asked of the server once per bucket when omitted. */
  readonly region?: string;
  /** How long to wait for a TCP connection (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** How long a connection may stay silent mid-request before it is given up (default 60 s). */
  readonly idleTimeoutMs?: number;
  /**
   * Tries per request when the server is busy or starting (HTTP 5xx, 429) or a connection broke,
   * with exponential backoff from 100 ms (default 5: about 3 s in all). A refused connection is
   * not retried.
   */
  readonly maxAttempts?: number;
  /**
   * How long a pack that answers NoSuchKey is asked for again before it is reported missing
   * (default 10 s). Packs are never changed and a restore reads only those the index names, so a
   * NoSuchKey is either a lost pack or a distributed MinIO that has not yet noticed a node gone
   * (a read through a live node right after another's kill -9 can answer it). A pack that stayed
   * missing that long fails at once from then on, until it is read again.
   */
  readonly missingPackWaitMs?: number;
  /** Most connections open to the endpoint at once (default 8). */
  readonly connections?: number;
  /**
   * PEM certificates of a private CA an `https` endpoint's certificate may chain to, trusted
   * besides the system's (e.g. the CA `volback init` writes for MinIO).
   */
  readonly ca?: string;
}

/** Environment variables {@link s3BackendFromEnv} reads, restic's names. */
export type S3Environment = Readonly<Record<string, string | undefined>>;

/** S3 error codes that mean the request's credentials were refused. */
const ACCESS_DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'InvalidClientTokenId',
]);
/** Failures worth another try: the server was busy or the connection broke. */
const TRANSIENT_S3 = new Set([
  'InternalError',
  'SlowDown',
  'ServiceUnavailable',
  'RequestTimeout',
  'XMinioServerNotInitialized',
]);
/**
 * A broken connection is worth another try (a server may close an idle keep-alive socket just as
 * it is reused); a refused one is not: nobody listens, and saying so at once beats waiting.
 */
const TRANSIENT_NET = new Set(['ECONNRESET', 'EPIPE', 'EAI_AGAIN']);

/** Raised by the transport when a connection or an answer takes too long. */
class S3TimeoutError extends Error {
  override readonly name: string = 'S3TimeoutError';
}

/**
 * minio-js has no request timeout of its own: wrap `http(s).request` so that a silent or
 * unreachable endpoint fails instead of hanging. minio only ever calls `request(options, callback)`.
 */
function timedTransport(
  useSSL: boolean,
  endpoint: string,
  connectTimeoutMs: number,
  idleTimeoutMs: number,
): NonNullable<ClientOptions['transport']> {
  const send = useSSL ? https().request : http().request;
  const request = (
    options: RequestOptions,
    callback?: (response: IncomingMessage) => void,
  ): ClientRequest => {
    const req = send({ ...options, timeout: idleTimeoutMs }, callback);
    let response: IncomingMessage | undefined;
    const fail = (error: S3TimeoutError): void => {
      response?.destroy(error);
      req.destroy(error);
    };
    req.once('response', (res: IncomingMessage) => (response = res));
    req.on('timeout', () =>
      fail(new S3TimeoutError(`${endpoint} did not answer within ${idleTimeoutMs} ms`)),
    );
    req.once('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => fail(new S3TimeoutError(`could not connect to ${endpoint} within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      socket.once('connect', () => clearTimeout(timer));
      req.once('close', () => clearTimeout(timer));
    });
    return req;
  };
  return { request } as unknown as NonNullable<ClientOptions['transport']>;
}

type Minio = typeof MinioModule;
/** minio-js (and the HTTP stack under it) is loaded on first use: most commands never need it. */
let minio: Minio | undefined;

async function loadMinio(): Promise<Minio> {
  return (minio ??= await import('minio'));
}

/** Errors from a call into minio-js, so minio is loaded by the time one is looked at. */
function isS3Error(error: unknown): error is InstanceType<Minio['S3Error']> {
  return minio !== undefined && error instanceof minio.S3Error;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function s3Code(error: unknown): string | undefined {
  return isS3Error(error) ? error.code : undefined;
}

function netCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z_]+$/.test(code) ? code : undefined;
}

/**
 * minio-js turns the statuses it deems retryable (408, 429, 5xx) into a plain Error without the
 * response body, even with its retries off: the status survives only in the message.
 */
function retryableStatus(error: unknown): number | undefined {
  if (!(error instanceof Error) || isS3Error(error)) return undefined;
  const match = /Retryable HTTP status: (\d{3})/.exec(error.message);
  return match ? Number(match[1]) : undefined;
}

function isTransient(error: unknown): boolean {
  if (retryableStatus(error) !== undefined) return true;
  const s3 = s3Code(error);
  if (s3 !== undefined) return TRANSIENT_S3.has(s3);
  const net = netCode(error);
  return net !== undefined && TRANSIENT_NET.has(net);
}

/**
 * A repository in an S3 bucket (MinIO first), under an optional key prefix, in restic's default
 * layout. A PUT replaces an object atomically, so `save` needs no temporary name.
 */
export class S3Backend implements Backend {
  readonly location: string;
  readonly #target: S3Location;
  readonly #clientOptions: ClientOptions;
  #client: Client | undefined;
  readonly #agent: HttpAgent;
  readonly #region: string | undefined;
  readonly #maxAttempts: number;
  readonly #missingPackWaitMs: number;
  /** Packs that answered NoSuchKey for {@link S3BackendOptions.missingPackWaitMs}. */
  readonly #missingPacks = new Set<string>();

  constructor(location: string | S3Location, options: S3BackendOptions) {
    this.#target = typeof location === 'string' ? parseS3Location(location) : location;
    this.location = this.#target.location;
    const { credentials } = options;
    if (credentials.accessKey === '' || credentials.secretKey === '') {
      throw new BackendConfigError(
        `S3 credentials for ${this.location} need both an access key and a secret key`,
      );
    }
    this.#region = options.region;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.#missingPackWaitMs = Math.max(0, options.missingPackWaitMs ?? 10_000);
    const agentOptions = { keepAlive: true, maxSockets: options.connections ?? 8 };
    this.#agent = this.#target.useSSL
      ? new (https().Agent)({
          ...agentOptions,
          ...(options.ca === undefined ? {} : { ca: [...tls.rootCertificates, options.ca] }),
        })
      : new (http().Agent)(agentOptions);
    this.#clientOptions = {
      endPoint: this.#target.host,
      ...(this.#target.port === undefined ? {} : { port: this.#target.port }),
      useSSL: this.#target.useSSL,
      accessKey: credentials.accessKey,
      secretKey: credentials.secretKey,
      ...(credentials.sessionToken === undefined ? {} : { sessionToken: credentials.sessionToken }),
      ...(options.region === undefined ? {} : { region: options.region }),
      pathStyle: true,
      transportAgent: this.#agent,
      transport: timedTransport(
        this.#target.useSSL,
        this.#target.endpoint,
        options.connectTimeoutMs ?? 5_000,
        options.idleTimeoutMs ?? 60_000,
      ),
      // Retries are ours (#attempt): minio's only cover HTTP statuses and log to the console.
      retryOptions: { disableRetry: true },
    };
  }

  async #connect(): Promise<Client> {
    const { Client } = await loadMinio();
    return (this.#client ??= new Client(this.#clientOptions));
  }

  #key(handle: FileHandle): string {
    return this.#keyOf(layoutPath(handle));
  }

  #keyOf(path: string): string {
    return this.#target.prefix === '' ? path : `${this.#target.prefix}/${path}`;
  }

  async create(): Promise<void> {
    const { bucket } = this.#target;
    if (await this.#attempt('create', 'bucket', async () => (await this.#connect()).bucketExists(bucket)))
      return;
    await this.#attempt('create', 'bucket', async () => {
      try {
        await (await this.#connect()).makeBucket(bucket, this.#region ?? '');
      } catch (error) {
        // Another process (a second gateway) made it in between: just what we wanted.
        if (s3Code(error) !== 'BucketAlreadyOwnedByYou') throw error;
      }
    });
  }

  async save(handle: FileHandle, data: FileBody): Promise<void> {
    const key = this.#key(handle);
    // One buffer: the client signs and may resend the body.
    const pieces = bodyPieces(data);
    const body =
      pieces.length === 1
        ? Buffer.from(pieces[0]!.buffer, pieces[0]!.byteOffset, pieces[0]!.byteLength)
        : Buffer.concat(pieces);
    await this.#attempt('save', layoutPath(handle), async () =>
      (await this.#connect()).putObject(this.#target.bucket, key, body, body.length, {
        'Content-Type': 'application/octet-stream',
      }),
    );
    // The joined copy is ours, and stored: freed now rather than at a collection (a pack is 16 MiB).
    if (pieces.length > 1) release(body);
  }

  async load(handle: FileHandle, range?: ByteRange): Promise<Buffer> {
    const key = this.#key(handle);
    const what = layoutPath(handle);
    const { bucket } = this.#target;
    if (!range || (range.offset === 0 && range.length === undefined)) {
      if (range) checkRange(range);
      const whole = () =>
        this.#attempt('load', what, async () =>
          readAll(await (await this.#connect()).getObject(bucket, key)),
        );
      return handle.type === 'data' ? this.#packAgainWhenMissing(handle.name, whole) : whole();
    }
    checkRange(range);
    let start = range.offset;
    let length = range.length;
    if (start < 0 || length === 0) {
      // S3 has suffix ranges, minio-js does not: ask for the size first.
      const resolved = resolveRange((await this.stat(handle)).size, range);
      start = resolved.start;
      length = resolved.length;
      if (length === 0) return Buffer.alloc(0);
    }
    const from = start;
    const count = length;
    const read = () =>
      this.#attempt('load', what, async () => {
        try {
          return await readAll(await (await this.#connect()).getPartialObject(bucket, key, from, count ?? 0));
        } catch (error) {
          // A range starting at or past the end: the object exists, the part asked for is empty.
          if (s3Code(error) === 'InvalidRange') return Buffer.alloc(0);
          throw error;
        }
      });
    return handle.type === 'data' ? this.#packAgainWhenMissing(handle.name, read) : read();
  }

  /**
   * Reads part of a pack, asking again for {@link S3BackendOptions.missingPackWaitMs} while the
   * server says the pack does not exist.
   */
  async #packAgainWhenMissing(name: string, read: () => Promise<Buffer>): Promise<Buffer> {
    const deadline = Date.now() + this.#missingPackWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const data = await read();
        this.#missingPacks.delete(name);
        return data;
      } catch (error) {
        const missing = error instanceof RepositoryError && s3Code(error.cause) === 'NoSuchKey';
        if (!missing || this.#missingPacks.has(name)) throw error;
        const wait = this.#backoff(Math.min(attempt, 4));
        if (Date.now() + wait > deadline) {
          this.#missingPacks.add(name);
          throw error;
        }
        await sleep(wait);
      }
    }
  }

  async stat(handle: FileHandle): Promise<FileInfo> {
    const key = this.#key(handle);
    const info = await this.#attempt('stat', layoutPath(handle), async () =>
      (await this.#connect()).statObject(this.#target.bucket, key),
    );
    return { name: handle.name, size: info.size };
  }

  async remove(handle: FileHandle): Promise<void> {
    const key = this.#key(handle);
    try {
      await this.#attempt('remove', layoutPath(handle), async () =>
        (await this.#connect()).removeObject(this.#target.bucket, key),
      );
    } catch (error) {
      // S3 answers a DELETE of a missing key with success; a missing bucket holds nothing to remove.
      if (error instanceof RepositoryError && error.code === RepositoryErrorCode.FileNotFound) return;
      throw error;
    }
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === 'config') {
      const info = await this.stat({ type, name: 'config' }).catch((error: unknown) => {
        if (error instanceof RepositoryError && error.code === RepositoryErrorCode.FileNotFound)
          return undefined;
        throw error;
      });
      if (info) yield info;
      return;
    }
    const dir = `${this.#keyOf(type)}/`;
    // Data files sit one level down (`data/<2 hex>/<id>`), all others directly in their directory.
    const recursive = type === 'data';
    const nameOf = (key: string): string | undefined => {
      const parts = key.slice(dir.length).split('/');
      const name = parts[parts.length - 1];
      if (name === undefined || !isFileId(name) || parts.length !== (recursive ? 2 : 1)) return undefined;
      return name;
    };
    // Keys come in lexicographic order, so a broken listing resumes after the last key it gave.
    let after = '';
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const item of (await this.#connect()).listObjectsV2(
          this.#target.bucket,
          dir,
          recursive,
          after,
        )) {
          const { name: key, size } = item;
          if (key === undefined) continue;
          after = key;
          const name = nameOf(key);
          if (name !== undefined) yield { name, size };
        }
        return;
      } catch (error) {
        if (s3Code(error) === 'NoSuchBucket') return;
        if (attempt >= this.#maxAttempts || !isTransient(error)) throw this.#mapError(error, 'list', type);
        await sleep(this.#backoff(attempt));
      }
    }
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  #backoff(attempt: number): number {
    return 100 * 2 ** (attempt - 1) * (1 + Math.random());
  }

  /** Runs one request, again after a transient failure, and maps what it finally throws. */
  async #attempt<T>(operation: string, what: string, request: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (attempt >= this.#maxAttempts || !isTransient(error)) throw this.#mapError(error, operation, what);
        await sleep(this.#backoff(attempt));
      }
    }
  }

  #mapError(error: unknown, operation: string, what: string): Error {
    if (error instanceof RepositoryError || error instanceof RangeError) return error;
    const { endpoint, bucket } = this.#target;
    const context = `${operation} ${what} on ${this.location}`;
    const unavailable = (reason: string): RepositoryError =>
      new RepositoryError(RepositoryErrorCode.BackendUnavailable, `${context}: ${reason}`, { cause: error });
    if (error instanceof S3TimeoutError) return unavailable(error.message);
    const status = retryableStatus(error);
    if (status !== undefined)
      return unavailable(`${endpoint} answered HTTP ${status} (overloaded or still starting)`);
    const s3 = s3Code(error);
    if (s3 === 'NoSuchKey' || s3 === 'NotFound') {
      return new RepositoryError(RepositoryErrorCode.FileNotFound, `${context}: not found`, { cause: error });
    }
    if (s3 === 'NoSuchBucket') {
      const reason = `bucket "${bucket}" does not exist on ${endpoint}`;
      if (operation === 'save') return unavailable(`${reason}; create the repository first`);
      return new RepositoryError(RepositoryErrorCode.FileNotFound, `${context}: ${reason}`, { cause: error });
    }
    if (s3 !== undefined && ACCESS_DENIED.has(s3)) {
      return unavailable(
        `access denied by ${endpoint} (${s3}); check the access key, secret key and bucket policy`,
      );
    }
    if (s3 === 'XMinioStorageFull' || s3 === 'QuotaExceeded') {
      return new RepositoryError(
        RepositoryErrorCode.NoSpace,
        `${context}: ${endpoint} is out of space (${s3})`,
        {
          cause: error,
        },
      );
    }
    if (s3 !== undefined)
      return unavailable(`${endpoint} refused the request (${s3}: ${(error as Error).message})`);
    switch (netCode(error)) {
      case 'ECONNREFUSED':
        return unavailable(`${endpoint} refused the connection (is the S3 server running?)`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return unavailable(`cannot resolve the host of ${endpoint}`);
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return unavailable(`${endpoint} is unreachable`);
      case 'ETIMEDOUT':
        return unavailable(`connection to ${endpoint} timed out`);
      case 'ECONNRESET':
      case 'EPIPE':
        return unavailable(`${endpoint} closed the connection`);
      default:
        return unavailable(`${endpoint}: ${(error as Error)?.message ?? String(error)}`);
    }
  }
}

/** The content of the file the variable `name` of `env` names, or undefined when it is unset. */
function fileOf(env: S3Environment, name: string): string | undefined {
  const file = env[name]?.trim();
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new BackendConfigError(
      `${name}: cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause },
    );
  }
  // One trailing newline is the file's, not the secret's.
  const content = text.replace(/\r?\n$/, '');
  if (content === '') throw new BackendConfigError(`${name}: ${file} is empty`);
  return content;
}

/**
 * An {@link S3Backend} with restic's environment variables: `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY` (or volback's `AWS_SECRET_ACCESS_KEY_FILE`, a file holding it),
 * optional `AWS_SESSION_TOKEN` and `AWS_DEFAULT_REGION`, and volback's `VOLBACK_S3_CA_FILE` (a
 * private CA to trust for an `https` endpoint, as restic's `--cacert`).
 */
export function s3BackendFromEnv(
  location: string,
  env: S3Environment = process.env,
  options: Omit<S3BackendOptions, 'credentials'> = {},
): S3Backend {
  const target = parseS3Location(location);
  const accessKey = env['AWS_ACCESS_KEY_ID'] ?? '';
  const direct = env['AWS_SECRET_ACCESS_KEY'] ?? '';
  const fromFile = fileOf(env, 'AWS_SECRET_ACCESS_KEY_FILE');
  if (direct !== '' && fromFile !== undefined) {
    throw new BackendConfigError('set either AWS_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY_FILE, not both');
  }
  const secretKey = fromFile ?? direct;
  if (accessKey === '' || secretKey === '') {
    throw new BackendConfigError(
      `S3 location ${target.location} needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY_FILE)`,
    );
  }
  const ca = options.ca ?? fileOf(env, 'VOLBACK_S3_CA_FILE');
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new BackendConfigError('VOLBACK_S3_CA_FILE: the file holds no PEM certificate');
  }
  const sessionToken = env['AWS_SESSION_TOKEN'];
  const region = options.region ?? (env['AWS_DEFAULT_REGION'] || undefined);
  return new S3Backend(target, {
    ...options,
    ...(region === undefined ? {} : { region }),
    ...(ca === undefined ? {} : { ca }),
    credentials: { accessKey, secretKey, ...(sessionToken ? { sessionToken } : {}) },
  });
}
