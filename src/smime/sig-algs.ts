/**
 * Signature algorithms as CMS and X.509 name them, mapped onto Node's synchronous crypto.verify:
 * RSA PKCS#1 v1.5, RSASSA-PSS (RFC 4055 parameters), ECDSA and Ed25519 (RFC 8419). Shared by the
 * SignerInfo check (verify.ts) and the certificate path (chain.ts), so both refuse the same things.
 * An algorithm we do not handle (DSA, unusual PSS parameters) is a reason, not an exception: the
 * caller turns it into an 'invalid' result for that signer alone.
 */
import { constants, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { DIGEST_BY_OID, OID } from './sig-der.js';

export interface SigAlg {
  kind: 'rsa' | 'rsa-pss' | 'ecdsa' | 'ed25519';
  /** Node hash name; null for Ed25519 (pure EdDSA hashes inside). */
  hash: string | null;
  saltLength?: number;
}

const RSA_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5', '1.2.840.113549.1.1.5': 'sha1', '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
  '1.3.14.3.2.29': 'sha1',
};
const ECDSA_HASH: Record<string, string> = {
  '1.2.840.10045.4.1': 'sha1', '1.2.840.10045.4.3.1': 'sha224', [OID.ecdsaSha256]: 'sha256',
  [OID.ecdsaSha384]: 'sha384', [OID.ecdsaSha512]: 'sha512',
};
const DSA = new Set(['1.2.840.10040.4.1', '1.2.840.10040.4.3', '2.16.840.1.101.3.4.3.1', '2.16.840.1.101.3.4.3.2']);

const oidOf = (n: asn1js.AsnType | undefined): string | undefined => (n instanceof asn1js.ObjectIdentifier ? n.valueBlock.toString() : undefined);
const kids = (n: asn1js.AsnType | undefined): asn1js.AsnType[] => {
  const v = (n as asn1js.Constructed | undefined)?.valueBlock?.value;
  return Array.isArray(v) ? (v as asn1js.AsnType[]) : [];
};

/** RSASSA-PSS-params (RFC 4055 §3.1) with its SHA-1 / MGF1-SHA-1 / 20 defaults. */
function pssParams(params: asn1js.AsnType | undefined): SigAlg | string {
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let salt = 20;
  if (params && !(params instanceof asn1js.Null)) {
    if (!(params instanceof asn1js.Sequence)) return 'malformed RSASSA-PSS parameters';
    for (const field of kids(params)) {
      const inner = kids(field)[0];
      switch (field.idBlock.tagClass === 3 ? field.idBlock.tagNumber : -1) {
        case 0: {
          const h = DIGEST_BY_OID[oidOf(kids(inner)[0]) ?? ''];
          if (!h) return 'RSASSA-PSS with an unknown hash algorithm';
          hash = h;
          break;
        }
        case 1: {
          if (oidOf(kids(inner)[0]) !== OID.mgf1) return 'RSASSA-PSS with a mask generation function other than MGF1';
          const h = DIGEST_BY_OID[oidOf(kids(kids(inner)[1])[0]) ?? ''];
          if (!h) return 'RSASSA-PSS with an unknown MGF1 hash algorithm';
          mgfHash = h;
          break;
        }
        case 2:
          if (!(inner instanceof asn1js.Integer) || inner.valueBlock.valueDec < 0 || inner.valueBlock.valueDec > 1024) return 'malformed RSASSA-PSS salt length';
          salt = inner.valueBlock.valueDec;
          break;
        case 3:
          if (!(inner instanceof asn1js.Integer) || inner.valueBlock.valueDec !== 1) return 'RSASSA-PSS with a trailer field other than 1';
          break;
        default:
          return 'malformed RSASSA-PSS parameters';
      }
    }
  }
  // Node signs and verifies PSS with MGF1 over the message hash; so does every mail client.
  if (mgfHash !== hash) return `RSASSA-PSS with MGF1-${mgfHash.toUpperCase()} over a ${hash.toUpperCase()} hash is not supported`;
  return { kind: 'rsa-pss', hash, saltLength: salt };
}

/**
 * Resolve a signature AlgorithmIdentifier. `digest` is the SignerInfo's digestAlgorithm (Node name),
 * which bare rsaEncryption / id-ecPublicKey identifiers rely on; certificates pass undefined.
 * Returns a sentence when the algorithm is not supported.
 */
export function resolveSigAlg(sigOid: string, params: asn1js.AsnType | undefined, digest: string | undefined): SigAlg | string {
  if (sigOid === OID.rsaEncryption) return digest ? { kind: 'rsa', hash: digest } : 'rsaEncryption without a digest algorithm';
  const rsaHash = RSA_HASH[sigOid];
  if (rsaHash) return { kind: 'rsa', hash: rsaHash };
  if (sigOid === OID.rsaPss) return pssParams(params);
  const ecHash = ECDSA_HASH[sigOid];
  if (ecHash) return { kind: 'ecdsa', hash: ecHash };
  if (sigOid === '1.2.840.10045.2.1') return digest ? { kind: 'ecdsa', hash: digest } : 'id-ecPublicKey without a digest algorithm';
  if (sigOid === OID.ed25519) return { kind: 'ed25519', hash: null };
  if (DSA.has(sigOid)) return 'DSA signatures are not supported (S/MIME 4.0 no longer allows DSA)';
  return `signature algorithm ${sigOid} is not supported`;
}

const KEY_KINDS: Record<SigAlg['kind'], string[]> = { rsa: ['rsa'], 'rsa-pss': ['rsa', 'rsa-pss'], ecdsa: ['ec'], ed25519: ['ed25519'] };

/** Whether `key` may make signatures of this kind (an EC key never verifies an "RSA" signature). */
export const keyFits = (key: KeyObject, alg: SigAlg): boolean => KEY_KINDS[alg.kind].includes(key.asymmetricKeyType ?? '');

/** Check one signature; false for a wrong signature, a wrong key type or anything Node refuses. */
export function verifySignature(key: KeyObject, alg: SigAlg, data: Uint8Array, sig: Uint8Array): boolean {
  if (!keyFits(key, alg)) return false;
  try {
    if (alg.kind === 'rsa-pss') {
      return nodeVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? 20 }, sig);
    }
    if (alg.kind === 'rsa') return nodeVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
    return nodeVerify(alg.hash, data, key, sig);
  } catch {
    return false;
  }
}
