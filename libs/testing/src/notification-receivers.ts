import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { waitFor } from '@volback/process';

/** One request a {@link HttpReceiver} got. */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The status it was answered with. */
  readonly status: number;
}

/** A local HTTP server that records every request (a webhook, ntfy, Gotify or Mattermost stand-in). */
export interface HttpReceiver {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  /** Answers the next requests with these statuses, in order; 204 once they are used up. */
  respondWith(...statuses: number[]): void;
  /** Resolves once `count` requests (matching `where`) have arrived. */
  waitForRequests(
    count: number,
    where?: (r: ReceivedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/** Starts a {@link HttpReceiver} on 127.0.0.1 and a free port. */
export async function startHttpReceiver(): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const planned: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = planned.shift() ?? 204;
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        status,
      });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    respondWith: (...statuses) => planned.push(...statuses),
    async waitForRequests(count, where = () => true, timeoutMs = 20_000) {
      await waitFor(
        `${count} request(s) at the HTTP receiver`,
        async () => requests.filter(where).length >= count,
        timeoutMs,
      );
      return requests.filter(where);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One mail a {@link SmtpReceiver} accepted. */
export interface ReceivedMail {
  readonly from: string;
  readonly to: string[];
  /** The raw message (headers and body). */
  readonly raw: string;
  /** The login it was sent with, when any. */
  readonly user?: string;
}

/** A local SMTP server (the `smtp-server` package) that keeps every mail. */
export interface SmtpReceiver {
  readonly port: number;
  readonly mails: ReceivedMail[];
  waitForMails(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/**
 * Starts a {@link SmtpReceiver} on 127.0.0.1 without TLS. With `login`, it requires that user and
 * password (AUTH PLAIN/LOGIN over the plain connection, which only a test may allow).
 */
export async function startSmtpReceiver(login?: { user: string; password: string }): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: login ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !login,
    logger: false,
    onAuth(auth, _session, callback) {
      if (login && auth.username === login.user && auth.password === login.password) {
        callback(null, { user: auth.username });
      } else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        mails.push({
          from: from ? from.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    mails,
    async waitForMails(count, timeoutMs = 20_000) {
      await waitFor(`${count} mail(s) at the SMTP receiver`, async () => mails.length >= count, timeoutMs);
      return mails;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
