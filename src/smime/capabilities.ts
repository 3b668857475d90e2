/**
 * SMIMECapabilities (RFC 8551 §2.5.2): the signer's list of what it can decrypt, in order of
 * preference. We send it with every signature so that peers encrypt to us with AES-GCM, and we read
 * it from signed mail so the encrypt side can choose what a recipient understands. Input from mail is
 * untrusted: unknown capabilities are kept as OIDs, a malformed attribute is an SmimeError.
 */
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.js';
import { algId, flat, seq } from './sig-der.js';

export type CapabilityCipher = 'aes-256-gcm' | 'aes-192-gcm' | 'aes-128-gcm' | 'aes-256-cbc' | 'aes-192-cbc' | 'aes-128-cbc' | '3des-cbc';

export interface Capabilities {
  /** Content encryption algorithms, most preferred first. */
  ciphers: CapabilityCipher[];
  /** RSAES-OAEP key transport (RFC 8551 §2.3 recommends it). */
  rsaOaep: boolean;
  /** RSAES-PKCS1-v1_5 key transport; encoded unless false. */
  rsaPkcs1?: boolean;
  /** Other capability OIDs (preferSignedData, ECDH key agreement, legacy ciphers …), in order. */
  oids: string[];
}

export const CIPHER_OIDS: Record<CapabilityCipher, string> = {
  'aes-256-gcm': '2.16.840.1.101.3.4.1.46',
  'aes-192-gcm': '2.16.840.1.101.3.4.1.26',
  'aes-128-gcm': '2.16.840.1.101.3.4.1.6',
  'aes-256-cbc': '2.16.840.1.101.3.4.1.42',
  'aes-192-cbc': '2.16.840.1.101.3.4.1.22',
  'aes-128-cbc': '2.16.840.1.101.3.4.1.2',
  '3des-cbc': '1.2.840.113549.3.7',
};
const CIPHER_BY_OID = new Map(Object.entries(CIPHER_OIDS).map(([name, o]) => [o, name as CapabilityCipher]));
const RSA_OAEP = '1.2.840.113549.1.1.7';
const RSA_PKCS1 = '1.2.840.113549.1.1.1';

/** What Postern can decrypt, strongest first (AuthEnvelopedData before EnvelopedData). */
export const DEFAULT_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  ciphers: ['aes-256-gcm', 'aes-128-gcm', 'aes-256-cbc', 'aes-128-cbc'] as CapabilityCipher[],
  rsaOaep: true,
  rsaPkcs1: true,
  oids: [],
});

/** DER SMIMECapabilities (the value of the attribute), every capability without parameters. */
export function encodeCapabilities(c: Capabilities): Buffer {
  const oids = [...c.ciphers.map((n) => CIPHER_OIDS[n]), ...(c.rsaOaep ? [RSA_OAEP] : []), ...(c.rsaPkcs1 !== false ? [RSA_PKCS1] : []), ...c.oids];
  const unique = [...new Set(oids)];
  for (const o of unique) if (!/^[0-2](\.\d+)+$/.test(o)) throw new SmimeError(`not an object identifier: ${o}`, 'unsupported');
  return flat(seq(...unique.map((o) => algId(o))));
}

/** Read an SMIMECapabilities value: its DER bytes or the decoded attribute value. */
export function decodeCapabilities(attrValue: Uint8Array | asn1js.AsnType): Capabilities {
  let node: asn1js.AsnType;
  if (attrValue instanceof Uint8Array) {
    const r = asn1js.fromBER(attrValue);
    if (r.offset === -1 || r.offset !== attrValue.byteLength) throw new SmimeError('malformed SMIMECapabilities attribute');
    node = r.result;
  } else {
    node = attrValue;
  }
  if (!(node instanceof asn1js.Sequence)) throw new SmimeError('malformed SMIMECapabilities attribute: not a SEQUENCE');
  const out: Capabilities = { ciphers: [], rsaOaep: false, rsaPkcs1: false, oids: [] };
  for (const cap of node.valueBlock.value) {
    const id = cap instanceof asn1js.Sequence ? cap.valueBlock.value[0] : undefined;
    if (!(id instanceof asn1js.ObjectIdentifier)) throw new SmimeError('malformed SMIMECapabilities attribute: a capability without an OID');
    const o = id.valueBlock.toString();
    const cipher = CIPHER_BY_OID.get(o);
    if (cipher) {
      if (!out.ciphers.includes(cipher)) out.ciphers.push(cipher);
    } else if (o === RSA_OAEP) out.rsaOaep = true;
    else if (o === RSA_PKCS1) out.rsaPkcs1 = true;
    else if (!out.oids.includes(o)) out.oids.push(o);
  }
  return out;
}

/** The encoded default, made once: it goes into every signature. */
let defaultDer: Buffer | undefined;
export function defaultCapabilitiesDer(): Buffer {
  defaultDer ??= encodeCapabilities(DEFAULT_CAPABILITIES);
  return defaultDer;
}
