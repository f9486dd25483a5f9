// The deployment's own CA and the TLS certificates of its servers (NATS, MinIO), ECDSA P-256,
// made with @peculiar/x509 on Node's WebCrypto: no OpenSSL to call, no key ever leaves the process
// except into the files `volback init` writes.
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';

/**
 * @peculiar/x509, loaded when a certificate is made: it costs about 0.3 s of CPU to load, which
 * every other `volback` command (a backup finding nothing changed takes about 1 s) would pay.
 * It resolves its parsers through tsyringe, which needs the Reflect metadata API first.
 */
async function loadX509(): Promise<typeof X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

const crypto = webcrypto as unknown as Crypto;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** How long the CA and the server certificates are valid. */
export const CERTIFICATE_YEARS = 10;

/** A certificate and its private key, PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** The CA with its key, to sign server certificates. */
export interface CertificateAuthority extends PemPair {
  readonly certificate: X509.X509Certificate;
  readonly privateKey: CryptoKey;
}

function validity(): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERTIFICATE_YEARS);
  return { notBefore, notAfter };
}

function serialNumber(): string {
  // Positive (first bit clear), 16 random bytes as RFC 5280 recommends.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key)).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

/** A new self-signed CA (`CN=volback CA <id>`), allowed to sign server certificates only. */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const x509 = await loadX509();
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=volback CA ${serialNumber().slice(0, 8)}`,
      ...validity(),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certificate,
    privateKey: keys.privateKey,
    cert: certificate.toString('pem') + '\n',
    key: await keyPem(keys.privateKey),
  };
}

/** Names every server certificate holds besides those given: the loopback ones. */
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

/**
 * A TLS server certificate for `commonName`, signed by the CA, valid for the loopback names and
 * `names` (DNS names or IP addresses). `clientAuth` lets it also prove who dials (a NATS cluster
 * node opening a route to another, which checks it: mutual TLS).
 */
export async function createServerCertificate(
  ca: CertificateAuthority,
  commonName: string,
  names: readonly string[],
  options: { clientAuth?: boolean } = {},
): Promise<PemPair> {
  const x509 = await loadX509();
  const keys = await generateKeys();
  const all = [...new Set([...LOOPBACK_NAMES, ...names])];
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${commonName}`,
      issuer: ca.certificate.subject,
      ...validity(),
      publicKey: keys.publicKey,
      signingKey: ca.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          ...(options.clientAuth ? [x509.ExtendedKeyUsage.clientAuth] : []),
        ]),
        new x509.SubjectAlternativeNameExtension(
          all.map((name) => ({ type: isIP(name) ? ('ip' as const) : ('dns' as const), value: name })),
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: certificate.toString('pem') + '\n', key: await keyPem(keys.privateKey) };
}

/** Throws a clear error for a name that cannot stand in a certificate. */
export function checkServerName(name: string): void {
  if (isIP(name)) return;
  if (
    !/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
      name,
    )
  ) {
    throw new RangeError(`${JSON.stringify(name)} is neither a DNS name nor an IP address`);
  }
}
