// Attacks on the HTTP API over real sockets, against a catalog fed by a real NATS server.
// Linux routes all of 127.0.0.0/8 to `lo`: a client whose source address is 127.0.0.2 (or .3, .4…)
// stands in for another host; only 127.0.0.1 and ::1 count as this machine (`http/guard.ts`).
import { KeyObject, webcrypto } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { jetstreamManager } from '@nats-io/jetstream';
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { STREAMS } from '@volback/contracts';
import { createLogger } from '@volback/observability';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogOptions } from './catalog.ts';
import { accessToken } from './http/tokens.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { HISTORY_IDS } from './test-support/history.ts';

const READ = 'read-token-attack-0123456789';
const WRITE = 'write-token-attack-0123456789';
const TOKENS = [accessToken('reader', 'read', READ), accessToken('admin', 'write', WRITE)];
const FAILURE_LIMIT = 12;
const second = HISTORY_IDS.secondHost;
const backupsOf = (volume: string) => `/v1/hosts/${second}/volumes/${volume}/backups`;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: <T = Record<string, unknown>>() => T;
}

interface Call {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** The client's source address: 127.0.0.2… for another host, 127.0.0.1 for this machine. */
  from?: string;
  token?: string;
  ca?: string;
}

/** One HTTP(S) request from a chosen source address (fetch cannot choose it). */
function call(base: string, path: string, options: Call = {}): Promise<Answer> {
  const url = new URL(path, base);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: options.method ?? 'GET',
        localAddress: options.from ?? '127.0.0.2',
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.body !== undefined
            ? {
                'content-type': 'application/json',
                'content-length': String(Buffer.byteLength(options.body)),
              }
            : {}),
          ...options.headers,
        },
        ...(options.ca ? { ca: options.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A self-signed certificate for 127.0.0.2 and localhost (PEM). */
async function selfSignedCertificate(): Promise<{ cert: string; key: string }> {
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=volback catalog test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.2' },
      ]),
    ],
  });
  const key = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { cert: certificate.toString('pem'), key };
}

describe('HTTP API under attack (real sockets, a catalog fed by a real NATS server)', () => {
  let stack: CatalogTestStack;
  let base: string;
  let snapshotId: string;
  /** What the guarded catalog logged, at debug: no token may be in it. */
  const logs: string[] = [];

  /** Starts a catalog listening on `host`; its base URL. */
  async function serve(host: string, name: string, options: Partial<CatalogOptions> = {}) {
    const catalog = await stack.catalog(name, { dataTimeoutMs: 500, ...options });
    await catalog.app.listen({ host, port: 0 });
    const address = catalog.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return `${options.tls ? 'https' : 'http'}://${host}:${port}`;
  }

  /** Messages in the command and event streams: a refused request must change neither. */
  async function streamTotals(): Promise<{ commands: number; events: number }> {
    const jsm = await jetstreamManager(stack.nc);
    return {
      commands: (await jsm.streams.info(STREAMS.commands.name)).state.messages,
      events: (await jsm.streams.info(STREAMS.events.name)).state.messages,
    };
  }

  beforeAll(async () => {
    stack = await CatalogTestStack.start('attack');
    base = await serve('127.0.0.2', 'guarded', {
      logger: createLogger({
        service: 'catalog',
        level: 'debug',
        pretty: false,
        destination: { write: (line: string) => void logs.push(line) },
      }),
      access: {
        tokens: TOKENS,
        bindHost: '127.0.0.2',
        authFailures: { max: FAILURE_LIMIT, windowMs: 60_000 },
      },
    });
    const snapshots = await call(base, `/v1/hosts/${second}/volumes/alpha/snapshots`, { token: READ });
    snapshotId = snapshots.json<{ items: Array<{ snapshotId: string }> }>().items[0]!.snapshotId;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('another host without a token gets 401 on reads, docs, tar and writes, and nothing is done', async () => {
    const before = await streamTotals();
    for (const path of [
      '/v1/hosts',
      '/v1/volumes',
      `/v1/snapshots/${snapshotId}/tree?path=/`,
      `/v1/snapshots/${snapshotId}/tar`,
      '/v1/events?limit=5',
      '/openapi.json',
      '/docs',
    ]) {
      const res = await call(base, path, { from: '127.0.0.2' });
      expect(res.status, path).toBe(401);
      expect(res.json()).toMatchObject({ code: 'VOLBACK_CATALOG_UNAUTHORIZED' });
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    const head = await call(base, `/v1/snapshots/${snapshotId}/tar`, { method: 'HEAD', from: '127.0.0.2' });
    expect(head.status).toBe(401);
    const post = await call(base, backupsOf('alpha'), { method: 'POST', from: '127.0.0.2' });
    expect(post.status).toBe(401);
    expect(await streamTotals()).toEqual(before);
  });

  it('a read token reads (tar too) from another host but changes nothing (403)', async () => {
    const from = '127.0.0.3';
    expect((await call(base, '/v1/hosts', { from, token: READ })).status).toBe(200);
    expect((await call(base, '/openapi.json', { from, token: READ })).status).toBe(200);
    // Past the guard: no storage gateway runs here, so the download stops at the repository.
    const tar = await call(base, `/v1/snapshots/${snapshotId}/tar`, { from, token: READ });
    expect(tar.json()).toMatchObject({ status: 503, code: 'VOLBACK_CATALOG_REPOSITORY_UNAVAILABLE' });
    const before = await streamTotals();
    const refused = [
      { method: 'POST', path: backupsOf('alpha') },
      { method: 'POST', path: '/v1/admin/rebuild' },
      { method: 'POST', path: '/v1/repository/prune', body: '{}' },
      { method: 'DELETE', path: '/v1/policies/nightly' },
      {
        method: 'PUT',
        path: '/v1/policies/p',
        body: JSON.stringify({ scope: { kind: 'all' }, policy: { schedule: { cron: '0 2 * * *' } } }),
      },
    ];
    for (const { method, path, body } of refused) {
      const res = await call(base, path, { method, from, token: READ, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json()).toMatchObject({ code: 'VOLBACK_CATALOG_FORBIDDEN' });
    }
    expect(await streamTotals()).toEqual(before);
  });

  it('a write token sends the command from another host', async () => {
    const before = await streamTotals();
    const res = await call(base, backupsOf('alpha'), { method: 'POST', from: '127.0.0.4', token: WRITE });
    expect(res.status, res.body).toBe(202);
    const after = await streamTotals();
    // `RequestBackup`; the scheduler, not the catalog, records `BackupRequested`.
    expect(after.commands).toBe(before.commands + 1);
    expect(after.events).toBe(before.events);
  });

  it('wrong tokens get 429 with Retry-After after the limit, the right token too; other addresses go on', async () => {
    const from = '127.0.0.5';
    for (let i = 0; i < FAILURE_LIMIT; i++) {
      const res = await call(base, '/v1/hosts', { from, token: `guess-${i}-0123456789abcdef` });
      expect(res.status).toBe(401);
    }
    const limited = await call(base, '/v1/hosts', { from, token: 'guess-x-0123456789abcdef' });
    expect(limited.status).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'VOLBACK_CATALOG_TOO_MANY_AUTH_FAILURES' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect((await call(base, '/v1/hosts', { from, token: READ })).status).toBe(429);
    expect((await call(base, '/v1/hosts', { from: '127.0.0.6', token: READ })).status).toBe(200);
  });

  it('a state-changing request from a foreign Origin is refused (403) before anything is done, even body-less and with the write token', async () => {
    const before = await streamTotals();
    for (const origin of ['https://evil.example', 'null', 'http://127.0.0.2:1']) {
      for (const path of [backupsOf('alpha'), '/v1/admin/rebuild', '/v1/repository/import']) {
        const res = await call(base, path, {
          method: 'POST',
          from: '127.0.0.7',
          token: WRITE,
          headers: { origin },
        });
        expect(res.status, `${origin} ${path}`).toBe(403);
        expect(res.json()).toMatchObject({ code: 'VOLBACK_CATALOG_ORIGIN_NOT_ALLOWED' });
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
    }
    expect(await streamTotals()).toEqual(before);
    // The API's own origin (what its docs page sends) is fine.
    const own = await call(base, backupsOf('alpha'), {
      method: 'POST',
      from: '127.0.0.7',
      token: WRITE,
      headers: { origin: base },
    });
    expect(own.status, own.body).toBe(202);
    // Reads never change anything: a foreign Origin on a GET still gets no CORS header.
    const read = await call(base, '/v1/hosts', {
      from: '127.0.0.7',
      token: READ,
      headers: { origin: 'https://evil.example' },
    });
    expect(read.status).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a Host that is not one of the API names is refused (421: DNS rebinding), with any token', async () => {
    const before = await streamTotals();
    for (const host of [
      'evil.example',
      'evil.example:80',
      'localhost.evil.example',
      '127.0.0.2.evil.example',
    ]) {
      const read = await call(base, '/v1/hosts', { from: '127.0.0.8', token: READ, headers: { host } });
      expect(read.status, host).toBe(421);
      expect(read.json()).toMatchObject({ code: 'VOLBACK_CATALOG_HOST_NOT_ALLOWED' });
      const write = await call(base, '/v1/admin/rebuild', {
        method: 'POST',
        from: '127.0.0.8',
        token: WRITE,
        headers: { host },
      });
      expect(write.status, host).toBe(421);
    }
    expect(await streamTotals()).toEqual(before);
    for (const host of ['localhost', '127.0.0.1:8080', '[::1]', 'LOCALHOST:1']) {
      expect(
        (await call(base, '/v1/hosts', { from: '127.0.0.8', token: READ, headers: { host } })).status,
      ).toBe(200);
    }
  });

  it('refuses oversized bodies (413) on every command, smaller ones where bodies are small', async () => {
    const before = await streamTotals();
    const padded = (bytes: number) => JSON.stringify({ requestedBy: 'x', pad: 'a'.repeat(bytes) });
    for (const [method, path, bytes] of [
      ['POST', backupsOf('alpha'), 9 * 1024],
      ['POST', '/v1/repository/prune', 9 * 1024],
      ['POST', '/v1/admin/rebuild', 9 * 1024],
      ['DELETE', '/v1/policies/nightly', 9 * 1024],
      ['PUT', '/v1/policies/p', 65 * 1024],
      ['POST', '/v1/restores', 65 * 1024],
      ['POST', '/v1/restores', 5 * 1024 * 1024],
    ] as const) {
      const res = await call(base, path, { method, from: '127.0.0.9', token: WRITE, body: padded(bytes) });
      expect(res.status, `${method} ${path} ${bytes} ${res.body}`).toBe(413);
      expect(res.json()).toMatchObject({ code: 'VOLBACK_CATALOG_PAYLOAD_TOO_LARGE' });
    }
    expect(await streamTotals()).toEqual(before);
  });

  it('answers a URL it cannot decode with a problem, like every other 400', async () => {
    const res = await call(base, '/v1/hosts/%zz', { from: '127.0.0.12', token: READ });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({
      code: 'VOLBACK_CATALOG_BAD_REQUEST',
      detail: 'the URL cannot be decoded',
    });
  });

  it('logs no token, right or wrong, whatever the answer', async () => {
    const from = '127.0.0.13';
    const guess = 'guess-logged-0123456789abcdef';
    expect((await call(base, '/v1/hosts', { from, token: READ })).status).toBe(200);
    expect((await call(base, '/v1/admin/rebuild', { method: 'POST', from, token: READ })).status).toBe(403);
    expect((await call(base, '/v1/hosts', { from, token: guess })).status).toBe(401);
    expect((await call(base, `/v1/snapshots/${snapshotId}/tar`, { from, token: WRITE })).status).toBe(503);
    // The requests above were logged (one debug line each), their tokens not.
    expect(logs.join('')).toContain('/v1/admin/rebuild 403');
    for (const token of [READ, WRITE, guess]) expect(logs.join('')).not.toContain(token);
    expect(logs.join('').toLowerCase()).not.toContain('bearer');
  });

  it('sends security headers on answers, errors and the docs page, and no CORS header', async () => {
    const answers = [
      await call(base, '/v1/hosts', { from: '127.0.0.10', token: READ }),
      await call(base, '/v1/hosts', { from: '127.0.0.10' }),
      await call(base, '/v1/nothing-here', { from: '127.0.0.10', token: READ }),
      await call(base, '/docs/', { from: '127.0.0.10', token: READ }),
      await call(base, '/v1/hosts', {
        method: 'OPTIONS',
        from: '127.0.0.10',
        token: READ,
        headers: {
          origin: 'https://evil.example',
          'access-control-request-method': 'POST',
        },
      }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 404, 200, 403]);
    for (const res of answers) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['strict-transport-security']).toBeUndefined();
    }
    expect(answers[3]!.body).toContain('swagger-ui');
  });

  it('with no write token (the embedded stack): this machine reads and writes, but not cross-site, and not by another Host', async () => {
    const open = await serve('127.0.0.1', 'open');
    const from = '127.0.0.1';
    expect((await call(open, '/v1/hosts', { from })).status).toBe(200);
    const before = await streamTotals();
    const forged = await call(open, backupsOf('beta.data'), {
      method: 'POST',
      from,
      headers: { origin: 'https://evil.example' },
    });
    expect(forged.status).toBe(403);
    const rebound = await call(open, backupsOf('beta.data'), {
      method: 'POST',
      from,
      headers: { host: 'evil.example' },
    });
    expect(rebound.status).toBe(421);
    expect(await streamTotals()).toEqual(before);
    const res = await call(open, backupsOf('beta.data'), { method: 'POST', from });
    expect(res.status, res.body).toBe(202);
  });

  it('from this machine with a write token: reads open, writes need the write token', async () => {
    const local = await serve('127.0.0.1', 'local', { access: { tokens: TOKENS, bindHost: '127.0.0.1' } });
    const from = '127.0.0.1';
    expect((await call(local, '/v1/hosts', { from })).status).toBe(200);
    expect((await call(local, `/v1/snapshots/${snapshotId}/tar`, { from })).status).toBe(503);
    expect((await call(local, '/v1/admin/rebuild', { method: 'POST', from })).status).toBe(401);
    expect((await call(local, '/v1/admin/rebuild', { method: 'POST', from, token: READ })).status).toBe(403);
    expect((await call(local, '/v1/admin/rebuild', { method: 'POST', from, token: WRITE })).status).toBe(202);
  });

  it('with VOLBACK_CATALOG_TRUST_LOOPBACK=false (behind a proxy), this machine needs tokens too', async () => {
    const proxied = await serve('127.0.0.1', 'proxied', {
      access: {
        tokens: TOKENS,
        bindHost: '127.0.0.1',
        trustLoopback: false,
        allowedHosts: ['catalog.example'],
      },
    });
    const from = '127.0.0.1';
    expect((await call(proxied, '/v1/hosts', { from })).status).toBe(401);
    expect((await call(proxied, '/v1/hosts', { from, token: READ })).status).toBe(200);
    // The proxy forwards the public name: allowed by VOLBACK_CATALOG_ALLOWED_HOSTS, and the
    // browser's Origin of that name is the API's own.
    const viaProxy = await call(proxied, backupsOf('gamma'), {
      method: 'POST',
      from,
      token: WRITE,
      headers: { host: 'catalog.example', origin: 'https://catalog.example' },
    });
    expect(viaProxy.status, viaProxy.body).toBe(202);
  });

  it('serves HTTPS with the given certificate (HSTS on), and nothing in plain HTTP', async () => {
    const { cert, key } = await selfSignedCertificate();
    const secure = await serve('127.0.0.2', 'tls', {
      tls: { cert: Buffer.from(cert), key: Buffer.from(key) },
      access: { tokens: TOKENS, bindHost: '127.0.0.2' },
    });
    expect(secure).toMatch(/^https:/);
    const res = await call(secure, '/v1/hosts', { from: '127.0.0.11', token: READ, ca: cert });
    expect(res.status).toBe(200);
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    expect((await call(secure, '/v1/hosts', { from: '127.0.0.11', ca: cert })).status).toBe(401);
    const plain = await call(secure.replace('https:', 'http:'), '/v1/hosts', {
      from: '127.0.0.11',
      token: READ,
    }).catch((error: Error) => error);
    expect(plain instanceof Error ? plain.message : String(plain.status)).toMatch(
      /socket hang up|ECONNRESET|^4\d\d$/,
    );
    await expect(call(secure, '/v1/hosts', { from: '127.0.0.11', token: READ })).rejects.toThrow(
      /self-signed|certificate/i,
    );
  });
});
