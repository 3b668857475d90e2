/**
 * The import rules: may this certificate enter the store, and as what? One sentence per reason,
 * so the admin sees every problem at once (as Zammad does). Problems refuse the import; warnings
 * (expired, signing-only …) are stored with the certificate and shown.
 */
import { EKU_ANY, EKU_EMAIL_PROTECTION, type CertInfo, type ImportCheck } from './types.js';

const EKU_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth', '1.3.6.1.5.5.7.3.2': 'clientAuth', '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection', '1.3.6.1.5.5.7.3.8': 'timeStamping', '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};
const MIN_RSA_BITS = 2048;
const CURVES = ['P-256', 'P-384', 'P-521'];
const SHA1_SIGNATURES = new Set(['1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.2.840.10040.4.3']);

const day = (d: Date) => d.toISOString().replace(/\.000Z$/, 'Z');

/** Key algorithm and size rules, shared by end-entity and CA certificates. */
function keyProblems(cert: CertInfo, problems: string[], warnings: string[]): void {
  const k = cert.key;
  switch (k.algorithm) {
    case 'rsa':
    case 'rsa-pss':
      if (k.bits === undefined || k.bits < MIN_RSA_BITS) problems.push(`RSA key of ${k.bits ?? 'unknown'} bits is too weak: at least ${MIN_RSA_BITS} bits are required`);
      break;
    case 'ec':
      if (!CURVES.includes(k.curve ?? '')) problems.push(`EC key on curve ${k.curve ?? 'unknown'} is not supported: only P-256, P-384 and P-521`);
      break;
    case 'ed25519':
    case 'ed448':
      // RFC 8419 allows EdDSA signatures in CMS, so such certificates are accepted; but they can
      // never be encrypted to, and many peers (Outlook, OpenSSL 3.0's cms) cannot verify them.
      if (!cert.isCA) warnings.push(`${k.algorithm === 'ed25519' ? 'Ed25519' : 'Ed448'} key: usable for signatures only (RFC 8419), and many mail clients cannot verify them`);
      break;
    case 'dsa':
      problems.push('DSA keys are not accepted: S/MIME 4.0 (RFC 8551) no longer supports DSA; use RSA or ECDSA');
      break;
    default:
      problems.push(`public key algorithm ${k.oid ?? 'unknown'} is not supported for S/MIME (use RSA, ECDSA P-256/P-384/P-521 or Ed25519)`);
  }
}

/** Check a parsed certificate against the import rules. `now` defaults to the current time. */
export function checkForImport(cert: CertInfo, opts: { trust: boolean; now?: Date }): ImportCheck {
  const now = opts.now ?? new Date();
  const problems: string[] = [];
  const warnings: string[] = [];
  const kind = cert.isCA ? 'ca' : 'end-entity';
  const ku = cert.keyUsage;

  if (cert.isCA) {
    // Without --trust a CA certificate is still worth keeping: it completes chains (intermediates
    // arrive in every PKCS#12 and signed mail); it just never becomes an anchor by itself.
    if (!opts.trust) warnings.push('a CA certificate: stored to build chains, but not a trust anchor (import it with --trust to make it one)');
    if (ku && !ku.includes('keyCertSign')) problems.push('CA certificate whose key usage lacks keyCertSign: it cannot sign certificates');
  } else {
    if (!cert.emails.length) problems.push('no e-mail address in the certificate (subjectAltName rfc822Name or subject emailAddress)');
    if (ku) {
      // EC keys encrypt by key agreement (ECDH, RFC 5753), RSA keys by key transport.
      const encUsage = cert.key.algorithm === 'ec' ? 'keyAgreement' : 'keyEncipherment';
      const canSign = ku.includes('digitalSignature');
      const canEncrypt = ku.includes(encUsage);
      if (!canSign && !canEncrypt) {
        problems.push(`key usage (${ku.join(', ') || 'empty'}) allows neither signing (digitalSignature) nor encryption (${encUsage})`);
      } else if (!canEncrypt && cert.key.algorithm !== 'ed25519' && cert.key.algorithm !== 'ed448') {
        warnings.push(`key usage has no ${encUsage}: usable for signatures only, mail cannot be encrypted to it`);
      } else if (!canSign) {
        warnings.push('key usage has no digitalSignature: usable for encryption only, not for signing');
      }
    }
    const eku = cert.extKeyUsage;
    if (eku && !eku.includes(EKU_EMAIL_PROTECTION) && !eku.includes(EKU_ANY)) {
      problems.push(`extended key usage (${eku.map((o) => EKU_NAMES[o] ?? o).join(', ') || 'empty'}) does not include emailProtection (${EKU_EMAIL_PROTECTION})`);
    }
  }
  keyProblems(cert, problems, warnings);

  if (cert.notAfter.getTime() < now.getTime()) warnings.push(`stored, but never used for outgoing mail: expired on ${day(cert.notAfter)}`);
  else if (cert.notBefore.getTime() > now.getTime()) warnings.push(`stored, but not used for outgoing mail before it becomes valid on ${day(cert.notBefore)}`);
  if (SHA1_SIGNATURES.has(cert.signatureAlgorithm)) warnings.push('signed with SHA-1: many clients reject such certificates');

  return { ok: problems.length === 0, kind, problems, warnings };
}
