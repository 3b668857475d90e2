/**
 * What a client's TLS session was, for the Received header, in Postfix's terms (its
 * tls_get_signature_params and smtpd's Received line, compared with Postfix 3.7's on the same
 * certificate and key-exchange group):
 *
 *   (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
 *    key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
 *
 * as far as Node's TLSSocket tells. Protocol and cipher it names; the cipher's strength follows
 * from the name; the key-exchange group is in the session OpenSSL serialises (Node has no getter
 * for it on a server socket); the server signature is our own certificate's key, and its digest
 * the first signature algorithm both sides share that fits the key — the one OpenSSL signs with.
 * Like Postfix, key exchange and signature are told for TLS 1.3 only: a TLS 1.2 cipher's name
 * says them. What cannot be told is left out rather than guessed.
 */
import type { TLSSocket } from 'node:tls';

export interface TlsInfo {
  protocol: string;
  cipher: string;
  /** The cipher's secret bits and algorithm bits ("256/256"). */
  bits?: [number, number];
  /** "X25519", "ECDHE (secp384r1)", "DHE (2048 bits)". */
  keyExchange?: string;
  /** "RSA-PSS (2048 bits)", "ECDSA (prime256v1)". */
  serverSignature?: string;
  /** "SHA256". */
  serverDigest?: string;
}

/** TLS NamedGroup code points (RFC 8446 4.2.7, RFC 8422, RFC 7919) as OpenSSL names them. */
const GROUPS: Record<number, string> = {
  23: 'ECDHE (prime256v1)',
  24: 'ECDHE (secp384r1)',
  25: 'ECDHE (secp521r1)',
  26: 'ECDHE (brainpoolP256r1)',
  27: 'ECDHE (brainpoolP384r1)',
  28: 'ECDHE (brainpoolP512r1)',
  29: 'X25519',
  30: 'X448',
  31: 'ECDHE (brainpoolP256r1)',
  32: 'ECDHE (brainpoolP384r1)',
  33: 'ECDHE (brainpoolP512r1)',
  256: 'DHE (2048 bits)',
  257: 'DHE (3072 bits)',
  258: 'DHE (4096 bits)',
  259: 'DHE (6144 bits)',
  260: 'DHE (8192 bits)',
};

/** The digest TLS 1.3 pairs with each ECDSA curve (RFC 8446 4.2.3: ecdsa_secp256r1_sha256 …). */
const CURVE_DIGEST: Record<string, string> = { prime256v1: 'SHA256', secp384r1: 'SHA384', secp521r1: 'SHA512' };

/** Secret/algorithm bits of a cipher, from its OpenSSL or IANA name. */
export function cipherBits(name: string): [number, number] | undefined {
  const n = name.toUpperCase();
  const sym = /(?:AES|CAMELLIA|ARIA)[_-]?(128|256)/.exec(n);
  if (sym) return [Number(sym[1]), Number(sym[1])];
  if (n.includes('CHACHA20')) return [256, 256];
  if (/DES-CBC3|3DES/.test(n)) return [112, 168];
  return undefined;
}

/** DER length at `at`: [length, offset of the content], or null when malformed. */
function derLength(b: Buffer, at: number): [number, number] | null {
  const first = b[at];
  if (first === undefined) return null;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  if (n === 0 || n > 3 || at + 1 + n > b.length) return null;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[at + 1 + i]!;
  return [len, at + 1 + n];
}

/**
 * The key-exchange group of an OpenSSL session (i2d_SSL_SESSION: a SEQUENCE whose field [19] is
 * the kex_group INTEGER), or undefined when absent or unreadable.
 */
export function sessionGroup(der: Buffer | undefined): number | undefined {
  if (!der || der[0] !== 0x30) return undefined;
  const outer = derLength(der, 1);
  if (!outer) return undefined;
  const end = Math.min(der.length, outer[1] + outer[0]);
  for (let at = outer[1]; at < end; ) {
    const tag = der[at]!;
    const len = derLength(der, at + 1);
    if (!len) return undefined;
    const [size, content] = len;
    if (tag === 0xb3 && der[content] === 0x02) {
      const v = derLength(der, content + 1);
      if (!v || v[0] < 1 || v[0] > 4) return undefined;
      let n = 0;
      for (let i = 0; i < v[0]; i++) n = n * 256 + der[v[1] + i]!;
      return n;
    }
    at = content + size;
  }
  return undefined;
}

/** Our certificate's key as the signature is named, and the digest it was used with. */
function serverSignature(socket: TLSSocket): Pick<TlsInfo, 'serverSignature' | 'serverDigest'> {
  const cert = socket.getCertificate() as (Record<string, unknown> & { bits?: number; asn1Curve?: string; modulus?: string }) | null;
  if (!cert || typeof cert !== 'object') return {};
  const shared = typeof socket.getSharedSigalgs === 'function' ? socket.getSharedSigalgs() : [];
  if (typeof cert.modulus === 'string' && typeof cert.bits === 'number') {
    // TLS 1.3 signs with RSA only in PSS (RFC 8446 4.2.3), as Postfix names it.
    const alg = shared.find((a) => a.startsWith('RSA-PSS+'));
    return { serverSignature: `RSA-PSS (${cert.bits} bits)`, ...(alg ? { serverDigest: alg.slice('RSA-PSS+'.length) } : {}) };
  }
  if (typeof cert.asn1Curve === 'string' && /^[A-Za-z0-9-]+$/.test(cert.asn1Curve)) {
    const digest = CURVE_DIGEST[cert.asn1Curve];
    return { serverSignature: `ECDSA (${cert.asn1Curve})`, ...(digest && shared.includes(`ECDSA+${digest}`) ? { serverDigest: digest } : {}) };
  }
  return {};
}

/** The facts of an established server-side session; never throws (the header then says less). */
export function tlsInfo(socket: TLSSocket): TlsInfo {
  const protocol = socket.getProtocol() ?? 'TLS';
  const cipher = socket.getCipher()?.name ?? 'unknown';
  const info: TlsInfo = { protocol, cipher };
  const bits = cipherBits(cipher);
  if (bits) info.bits = bits;
  if (protocol !== 'TLSv1.3') return info;
  try {
    const group = sessionGroup(socket.getSession());
    if (group !== undefined && GROUPS[group]) info.keyExchange = GROUPS[group];
    Object.assign(info, serverSignature(socket));
  } catch {
    /* what Node could not tell stays out */
  }
  return info;
}
