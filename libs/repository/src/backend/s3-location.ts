import { BackendConfigError } from './backend-config-error.ts';

/** Where an S3 repository lives, parsed from a restic-style `s3:` location. */
export interface S3Location {
  /** `https` unless the location says `http`. */
  readonly useSSL: boolean;
  /** Host name or IP address (an IPv6 address without its brackets). */
  readonly host: string;
  /** The port the location names; the scheme's default when absent. */
  readonly port: number | undefined;
  readonly bucket: string;
  /** Key prefix of every repository file, without leading or trailing `/`; `''` for the bucket root. */
  readonly prefix: string;
  /** `http(s)://host[:port]`, for messages. */
  readonly endpoint: string;
  /** The location in canonical form, `s3:http(s)://host[:port]/bucket[/prefix]`; never credentials. */
  readonly location: string;
}

const USAGE = 'expected s3:http(s)://host[:port]/bucket[/prefix] or s3:host/bucket[/prefix]';

/** S3's bucket naming rules (3–63 characters, lowercase letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function invalid(message: string): BackendConfigError {
  return new BackendConfigError(`invalid S3 location: ${message} (${USAGE})`);
}

function checkBucket(bucket: string): void {
  if (bucket === '') throw invalid('no bucket name');
  if (!BUCKET.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw invalid(
      `bucket name "${bucket}" is not valid: 3 to 63 lowercase letters, digits, dots and hyphens, ` +
        'starting and ending with a letter or digit',
    );
  }
}

function prefixOf(segments: readonly string[]): string {
  const kept = segments.filter((segment) => segment !== '');
  for (const segment of kept) {
    if (segment === '.' || segment === '..') throw invalid(`the prefix may not contain "${segment}"`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f\\]/.test(segment)) {
      throw invalid('the prefix may not contain control characters or backslashes');
    }
  }
  return kept.join('/');
}

/**
 * Parses a restic-style S3 location: `s3:http://host:port/bucket/prefix`, `s3:https://…`, or
 * `s3:host/bucket/prefix` (https). An empty prefix means the bucket root; slashes around and
 * doubled inside the prefix are dropped. Credentials in the location are refused (they belong in
 * `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`), and the error does not repeat them.
 */
export function parseS3Location(location: string): S3Location {
  if (!location.startsWith('s3:')) throw invalid('it does not start with "s3:"');
  const rest = location.slice(3);
  const url = /^(https?):\/\/([^/?#]*)(.*)$/.exec(rest);
  let scheme: 'http' | 'https';
  let authority: string;
  let path: string;
  if (url) {
    scheme = url[1] === 'http' ? 'http' : 'https';
    authority = url[2] ?? '';
    path = url[3] ?? '';
  } else {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) throw invalid('only http and https endpoints are supported');
    // `s3://host/bucket` and `s3:host/bucket`, as restic accepts them: https.
    const bare = rest.startsWith('//') ? rest.slice(2) : rest;
    const slash = bare.indexOf('/');
    scheme = 'https';
    authority = slash < 0 ? bare : bare.slice(0, slash);
    path = slash < 0 ? '' : bare.slice(slash);
  }
  if (authority.includes('@')) {
    throw invalid(
      'credentials do not belong in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    );
  }
  if (authority === '') throw invalid('no host');
  if (/[?#]/.test(path)) throw invalid('query strings and fragments are not supported');

  let parsed: URL;
  try {
    parsed = new URL(`${scheme}://${authority}`);
  } catch {
    throw invalid(`"${authority}" is not a valid host[:port]`);
  }
  if (parsed.hostname === '') throw invalid('no host');
  if (authority.endsWith(':')) throw invalid(`"${authority}" has an empty port`);
  const port = parsed.port === '' ? undefined : Number(parsed.port);
  if (port === 0) throw invalid('port 0 is not a valid port');

  const segments = path.split('/').slice(1);
  const bucket = segments[0] ?? '';
  checkBucket(bucket);
  const prefix = prefixOf(segments.slice(1));

  const endpoint = `${scheme}://${parsed.host}`;
  return {
    useSSL: scheme === 'https',
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    bucket,
    prefix,
    endpoint,
    location: `s3:${endpoint}/${bucket}${prefix === '' ? '' : `/${prefix}`}`,
  };
}
