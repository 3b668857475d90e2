/**
 * postern.yaml's relay TLS settings after load: the level of each route (its own `tls:`, else
 * `relay.tls`), the old level names mapped to Postfix's, and `relay.tls_ca_file` read and checked
 * here, certificate by certificate, so a broken bundle is a config error naming the file's line
 * rather than a deferral of every verified delivery.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RawTlsLevel } from './schema.js';
import type { RouteTarget, TlsLevel } from './types.js';

/** `opportunistic` and `required` were the route levels before Postfix's names were adopted. */
export function tlsLevel(raw: RawTlsLevel): TlsLevel {
  return raw === 'opportunistic' ? 'may' : raw === 'required' ? 'encrypt' : raw;
}

type SmtpTls = Extract<RouteTarget, { kind: 'smtp' }>['tls'];

/**
 * An smtp:// route's level. dane and sts are the recipient domain's policies for its MX hosts: named
 * on a fixed next hop they are a mistake; inherited from relay.tls they mean `may` there, as
 * Postfix's dane level does for a next hop without TLSA records.
 */
export function smtpRouteTls(own: RawTlsLevel | undefined, fallback: TlsLevel): SmtpTls | { error: string } {
  if (own !== undefined) {
    const level = tlsLevel(own);
    if (level === 'dane' || level === 'sts') return { error: `tls: ${level} applies to mx routes (it is the recipient domain's policy for its MX hosts); a fixed next hop takes none, may, encrypt or verify` };
    return level;
  }
  return fallback === 'dane' || fallback === 'sts' ? 'may' : fallback;
}

/** An smtps:// route: TLS from the first byte, so only the check of the certificate is a choice. */
export function smtpsRouteTls(own: RawTlsLevel | undefined, fallback: TlsLevel): 'verify' | undefined | { error: string } {
  if (own === undefined) return fallback === 'verify' ? 'verify' : undefined;
  const level = tlsLevel(own);
  if (level === 'verify') return 'verify';
  if (level === 'encrypt') return undefined;
  return { error: `tls: smtps:// is always TLS — expected encrypt or verify, not ${level}` };
}

/** A PEM bundle holds this many certificates at most: a CA file, not a data dump. */
const MAX_CERTIFICATES = 2000;
const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/**
 * Read a PEM bundle of CA certificates: null when it is usable, else what is wrong with it (which
 * line of the bundle). Text outside the BEGIN/END blocks (comments, as in the system bundle) is
 * allowed, as OpenSSL allows it.
 */
export async function checkCaBundle(file: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory, expected a PEM file' : 'cannot be read';
  }
  const r = parseCaBundle(text);
  return typeof r === 'string' ? r : null;
}

/** The certificates of a PEM bundle, or what is wrong at which line. */
export function parseCaBundle(text: string): string[] | string {
  const lines = text.split(/\r?\n/);
  const certs: string[] = [];
  let start = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === BEGIN) {
      if (start >= 0) return `line ${i + 1}: a certificate begins before the one at line ${start + 1} ends`;
      start = i;
    } else if (line === END) {
      if (start < 0) return `line ${i + 1}: END CERTIFICATE without BEGIN`;
      const pem = lines.slice(start, i + 1).map((l) => l.trim()).join('\n') + '\n';
      try {
        // Not refused for lacking CA:TRUE: v1 roots have no extensions, and OpenSSL trusts them.
        new X509Certificate(pem);
      } catch {
        return `line ${start + 1}: not a valid PEM certificate`;
      }
      certs.push(pem);
      if (certs.length > MAX_CERTIFICATES) return `more than ${MAX_CERTIFICATES} certificates`;
      start = -1;
    } else if (start < 0 && /^-----BEGIN /.test(line)) {
      return `line ${i + 1}: a ${line.replace(/^-----BEGIN |-----$/g, '').slice(0, 40)} block — expected only CERTIFICATE blocks (no keys)`;
    }
  }
  if (start >= 0) return `line ${start + 1}: the certificate is not terminated (no END CERTIFICATE)`;
  if (certs.length === 0) return 'no PEM certificate in the file (expected -----BEGIN CERTIFICATE----- blocks)';
  return certs;
}
