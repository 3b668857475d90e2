/**
 * Our users' S/MIME certificates for partners, per address:
 *   GET /certs/<address>.cer   the newest valid certificate, DER (application/pkix-cert)
 *   GET /certs/<address>.pem   the same, PEM
 *   GET /certs/<address>.p7c   every valid certificate of the address with its chain, certs-only
 *                              PKCS#7 (application/pkcs7-mime; smime-type=certs-only, RFC 8551 3.7)
 *   GET /certs/<address>       a page listing them (keyserver-pages.ts)
 * The address is canonicalised (any spelling of one of ours finds it); anything else — another
 * domain, no such user, an expired certificate, a malformed name — is the same 404, after the
 * same look-up.
 *
 * Untrusted input: the path segment. Secrets: none — certificates from the published file only.
 */
import { canonicalAddress, inDomains } from '../core/address.js';
import type { Logger } from '../log/index.js';
import { certsOnlyBundle } from '../pki/index.js';
import type { CertificateSource, PublicCertificate } from './cert-file.js';

export type CertificateFormat = 'cer' | 'pem' | 'p7c' | 'page';

export interface CertificateAnswer {
  status: number;
  type: string;
  body: Buffer | string;
  /** A download's file name (ASCII, safe in a header). */
  filename?: string;
}

/** The certificates of an address, for the page in the portal's layout. */
export interface CertificatesForPeople {
  status: 200;
  address: string;
  certificates: PublicCertificate[];
}

/** Longer than any address (254 bytes) with its extension, percent-encoded or not. */
const MAX_NAME = 300;

const NOT_FOUND: CertificateAnswer = { status: 404, type: 'text/plain; charset=utf-8', body: 'not found\n' };

/** "alice@example.com.p7c" → the address and the format asked for; null when it is no such name. */
export function parseCertificateName(name: string): { address: string; format: CertificateFormat } | null {
  if (name.length > MAX_NAME || /[/\\\p{Cc}]/u.test(name)) return null;
  const m = /^(.*)\.(cer|pem|p7c)$/.exec(name);
  const address = canonicalAddress(m ? m[1]! : name);
  return address ? { address, format: m ? (m[2] as CertificateFormat) : 'page' } : null;
}

const validAt = (c: PublicCertificate, now: number) => c.notBefore.getTime() <= now && c.notAfter.getTime() >= now;

/** A file name from the canonical address: only characters no header or file system reads specially. */
const fileName = (address: string, ext: string) => `${address.replace(/[^A-Za-z0-9.@+_-]/g, '_')}.${ext}`;

const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;

/** The answer for /certs/<name>; logs each served certificate by address and fingerprint only. */
export async function certificateRequest(
  name: string,
  ctx: { certificates: CertificateSource; domains: ReadonlySet<string>; log: Logger; now: () => number },
): Promise<CertificateAnswer | CertificatesForPeople> {
  const asked = parseCertificateName(name);
  if (!asked) return NOT_FOUND;
  const { address, format } = asked;
  // Looked up whatever the domain, so an outside address costs what one of ours does.
  const stored = await ctx.certificates.certificatesFor(address);
  const now = ctx.now();
  const valid = inDomains(address, ctx.domains) ? stored.filter((c) => validAt(c, now)) : [];
  if (!valid.length) return NOT_FOUND;
  const newest = valid[0]!;
  let answer: CertificateAnswer | CertificatesForPeople;
  let served: PublicCertificate[] = [newest];
  if (format === 'cer') answer = { status: 200, type: 'application/pkix-cert', body: newest.der, filename: fileName(address, 'cer') };
  else if (format === 'pem') answer = { status: 200, type: 'application/x-pem-file', body: pem(newest.der), filename: fileName(address, 'pem') };
  else if (format === 'p7c') {
    const bundle = new Map<string, Buffer>(valid.map((c) => [c.fingerprint, c.der]));
    for (const c of valid) {
      for (const f of c.chain) {
        const a = await ctx.certificates.authority(f);
        if (a) bundle.set(a.fingerprint, a.der);
      }
    }
    served = valid;
    answer = { status: 200, type: 'application/pkcs7-mime; smime-type=certs-only', body: certsOnlyBundle([...bundle.values()]), filename: fileName(address, 'p7c') };
  } else {
    served = valid;
    answer = { status: 200, address, certificates: valid };
  }
  ctx.log.info({ event: 'portal.certs.served', address, format, fingerprints: served.map((c) => c.fingerprint) }, 'S/MIME certificate served');
  return answer;
}
