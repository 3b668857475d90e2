/**
 * OCSP (RFC 6960): the request for one certificate (with a nonce, RFC 8954) and the checking of
 * the answer. Untrusted input: the response bytes, from any responder a certificate names. A
 * response is believed only when it is a successful basic response, signed by the issuer itself
 * or by a responder certificate the issuer signed with id-kp-OCSPSigning, about exactly our
 * certificate (CertID), current (thisUpdate/nextUpdate with a little clock skew) and, when it
 * carries a nonce, carrying ours. Anything else is a reason, never an exception. A delegated
 * responder's certificate is handed back with the verdict: unless it carries id-pkix-ocsp-nocheck,
 * its own revocation status must be checked too (RFC 6960 §4.2.2.2.1), which the caller does
 * (revocation.ts). Pure; no I/O.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CRL_REASONS } from './rev-types.js';
import type { CertInfo } from './types.js';
import { decodeStrict, ensurePkijsEngine, parseCertificate } from './x509.js';

ensurePkijsEngine();

const OID = {
  sha1: '1.3.14.3.2.26',
  nonce: '1.3.6.1.5.5.7.48.1.2',
  basic: '1.3.6.1.5.5.7.48.1.1',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  extKeyUsage: '2.5.29.37',
  noCheck: '1.3.6.1.5.5.7.48.1.5',
};
const HASH_BY_OID: Record<string, string> = {
  [OID.sha1]: 'sha1', '2.16.840.1.101.3.4.2.1': 'sha256', '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512',
};
const STATUS_TEXT: Record<number, string> = { 1: 'malformedRequest', 2: 'internalError', 3: 'tryLater', 5: 'sigRequired', 6: 'unauthorized' };

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

// Parsed pkijs certificates, by fingerprint: the same issuer is used for every check.
const parsed = new Map<string, pkijs.Certificate>();
export function pkijsCertificate(info: CertInfo): pkijs.Certificate {
  let c = parsed.get(info.fingerprint);
  if (!c) {
    c = new pkijs.Certificate({ schema: decodeStrict(info.der, 'certificate') });
    if (parsed.size >= 1000) parsed.delete(parsed.keys().next().value!);
    parsed.set(info.fingerprint, c);
  }
  return c;
}

/** The serial number as a BigInt (serials are positive; leading zero octets carry no meaning). */
export const serialOf = (i: asn1js.Integer): bigint => BigInt(`0x${Buffer.from(i.valueBlock.valueHexView).toString('hex') || '0'}`);

/** CertID hashes of an issuer with a given hash: of its subject Name's DER and its public key bits. */
function issuerHashes(issuer: pkijs.Certificate, hash: string): { name: Buffer; key: Buffer } {
  return {
    name: createHash(hash).update(new Uint8Array(issuer.subject.toSchema().toBER(false))).digest(),
    key: createHash(hash).update(issuer.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest(),
  };
}

export interface OcspRequest {
  der: Buffer;
  nonce: Buffer;
}

/** A request for `cert` (SHA-1 CertID: what every responder understands, RFC 5019) with a fresh 32-byte nonce. */
export function buildOcspRequest(cert: CertInfo, issuer: CertInfo, nonce: Buffer = randomBytes(32)): OcspRequest {
  const c = pkijsCertificate(cert);
  const h = issuerHashes(pkijsCertificate(issuer), 'sha1');
  const certId = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha1, algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: ab(h.name) }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: ab(h.key) }),
    serialNumber: new asn1js.Integer({ valueHex: ab(c.serialNumber.valueBlock.valueHexView) }),
  });
  const req = new pkijs.OCSPRequest();
  req.tbsRequest.requestList = [new pkijs.Request({ reqCert: certId })];
  req.tbsRequest.requestExtensions = [
    new pkijs.Extension({ extnID: OID.nonce, extnValue: new asn1js.OctetString({ valueHex: ab(nonce) }).toBER(false) }),
  ];
  return { der: Buffer.from(req.toSchema(true).toBER(false)), nonce };
}

export interface OcspCheckContext {
  cert: CertInfo;
  issuer: CertInfo;
  nonce: Buffer;
  at: Date;
  /** Tolerated clock difference with the responder (ms). */
  skewMs: number;
  /** A response without nextUpdate is believed only this long after its thisUpdate (ms). */
  maxAgeMs: number;
  /** Refuse a response that does not echo the nonce (many CA responders pre-produce answers and never do). */
  requireNonce?: boolean;
  /**
   * Accept answers signed by a delegated responder (default). Off when the certificate asked
   * about is itself a responder's or CRL signer's: a delegate must not vouch for itself.
   */
  delegation?: boolean;
}

export type OcspVerdict =
  | {
      ok: true; status: 'good' | 'revoked' | 'unknown'; revokedAt?: Date; revocationReason?: string; thisUpdate: Date; nextUpdate?: Date;
      /** The delegated responder that signed it (absent: the issuer itself), and whether it carries id-pkix-ocsp-nocheck. */
      responder?: { cert: CertInfo; noCheck: boolean };
    }
  | { ok: false; reason: string };

const fail = (reason: string): OcspVerdict => ({ ok: false, reason: `OCSP response not trusted: ${reason}` });

/** Check a DER OCSPResponse for `ctx.cert`. Never throws. */
export async function checkOcspResponse(der: Buffer, ctx: OcspCheckContext): Promise<OcspVerdict> {
  try {
    return await check(der, ctx);
  } catch (err) {
    return fail(`malformed (${(err as Error).message})`);
  }
}

async function check(der: Buffer, ctx: OcspCheckContext): Promise<OcspVerdict> {
  const resp = new pkijs.OCSPResponse({ schema: decodeStrict(der, 'OCSP response') });
  const code = resp.responseStatus.valueBlock.valueDec;
  if (code !== 0) return { ok: false, reason: `the OCSP responder answered ${STATUS_TEXT[code] ?? `status ${code}`}` };
  if (!resp.responseBytes || resp.responseBytes.responseType !== OID.basic) return fail('not a basic OCSP response');
  const basic = new pkijs.BasicOCSPResponse({ schema: decodeStrict(resp.responseBytes.response.valueBlock.valueHexView, 'BasicOCSPResponse') });
  const data = basic.tbsResponseData;

  const signer = await responderKey(basic, ctx);
  if (typeof signer === 'string') return fail(signer);
  const crypto = pkijs.getCrypto(true);
  const sigOk = await crypto.verifyWithPublicKey(data.tbsView, basic.signature, signer.key, basic.signatureAlgorithm).catch(() => false);
  if (!sigOk) return fail('its signature does not verify');

  const nonceExt = data.responseExtensions?.find((e) => e.extnID === OID.nonce);
  if (nonceExt) {
    // RFC 8954: the value is an OCTET STRING inside extnValue; some responders put the bare bytes.
    const inner = asn1js.fromBER(nonceExt.extnValue.valueBlock.valueHexView);
    const raw = Buffer.from(nonceExt.extnValue.valueBlock.valueHexView);
    const value = inner.offset === raw.length && inner.result instanceof asn1js.OctetString ? Buffer.from(inner.result.valueBlock.valueHexView) : raw;
    if (!value.equals(ctx.nonce)) return fail('its nonce is not the one we sent (a replayed answer?)');
  } else if (ctx.requireNonce) {
    return fail('it does not echo our nonce');
  }

  const single = await matchingResponse(data.responses, ctx);
  if (!single) return fail('it does not answer for this certificate');

  const at = ctx.at.getTime();
  if (single.thisUpdate.getTime() > at + ctx.skewMs) return fail(`its thisUpdate (${single.thisUpdate.toISOString()}) is in the future`);
  if (single.nextUpdate) {
    if (single.nextUpdate.getTime() < at - ctx.skewMs) return fail(`it expired at ${single.nextUpdate.toISOString()} (nextUpdate)`);
  } else if (single.thisUpdate.getTime() < at - ctx.maxAgeMs) {
    return fail(`it is too old (thisUpdate ${single.thisUpdate.toISOString()}, and no nextUpdate)`);
  }
  const times = {
    thisUpdate: single.thisUpdate, ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}),
    ...(signer.delegate ? { responder: { cert: signer.delegate, noCheck: !!pkijsCertificate(signer.delegate).extensions?.some((e) => e.extnID === OID.noCheck) } } : {}),
  };

  const st = single.certStatus as asn1js.BaseBlock;
  const tag = st.idBlock.tagNumber;
  if (st.idBlock.tagClass !== 3) return fail('malformed certStatus');
  if (tag === 0) return { ok: true, status: 'good', ...times };
  if (tag === 2) return { ok: true, status: 'unknown', ...times };
  if (tag !== 1) return fail('malformed certStatus');
  const parts = (st as asn1js.Constructed).valueBlock.value ?? [];
  const time = parts[0];
  if (!(time instanceof asn1js.GeneralizedTime)) return fail('malformed revocationTime');
  const out: OcspVerdict = { ok: true, status: 'revoked', revokedAt: time.toDate(), ...times };
  const reasonNode = (parts[1] as asn1js.Constructed | undefined)?.valueBlock?.value?.[0];
  if (reasonNode instanceof asn1js.Enumerated) out.revocationReason = CRL_REASONS[reasonNode.valueBlock.valueDec] ?? `reason ${reasonNode.valueBlock.valueDec}`;
  return out;
}

async function matchingResponse(responses: pkijs.SingleResponse[], ctx: OcspCheckContext): Promise<pkijs.SingleResponse | undefined> {
  const issuer = pkijsCertificate(ctx.issuer);
  const serial = serialOf(pkijsCertificate(ctx.cert).serialNumber);
  for (const r of responses) {
    const hash = HASH_BY_OID[r.certID.hashAlgorithm.algorithmId];
    if (!hash) continue;
    const h = issuerHashes(issuer, hash);
    if (
      serialOf(r.certID.serialNumber) === serial &&
      h.name.equals(Buffer.from(r.certID.issuerNameHash.valueBlock.valueHexView)) &&
      h.key.equals(Buffer.from(r.certID.issuerKeyHash.valueBlock.valueHexView))
    ) {
      return r;
    }
  }
  return undefined;
}

function matchesResponderId(c: pkijs.Certificate, id: unknown): boolean {
  if (id instanceof pkijs.RelativeDistinguishedNames) return c.subject.isEqual(id);
  if (id instanceof asn1js.OctetString) {
    const h = createHash('sha1').update(c.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
    return h.equals(Buffer.from(id.valueBlock.valueHexView));
  }
  return false;
}

/**
 * The key that may sign this response (RFC 6960 §4.2.2.2): the issuer's own, or that of a
 * certificate in the response which the issuer signed directly, with id-kp-OCSPSigning (and
 * digitalSignature when it restricts key usage), valid now. Whether the delegate itself is
 * revoked is the caller's question (the verdict's `responder`).
 */
async function responderKey(basic: pkijs.BasicOCSPResponse, ctx: OcspCheckContext): Promise<{ key: pkijs.PublicKeyInfo; delegate?: CertInfo } | string> {
  const issuer = pkijsCertificate(ctx.issuer);
  const id = basic.tbsResponseData.responderID;
  if (matchesResponderId(issuer, id)) return { key: issuer.subjectPublicKeyInfo };
  if (ctx.delegation === false) return 'it is not signed by the issuer itself, and a delegated responder is not taken for the status of a responder\'s or CRL signer\'s own certificate';
  const at = ctx.at.getTime();
  let why = 'it is not signed by the issuer, and carries no responder certificate';
  for (const c of basic.certs ?? []) {
    if (!matchesResponderId(c, id)) continue;
    if (!c.issuer.isEqual(issuer.subject)) {
      why = 'its responder certificate was not issued by the certificate\'s issuer';
      continue;
    }
    if (!(await c.verify(issuer).catch(() => false))) {
      why = 'its responder certificate is not signed by the certificate\'s issuer';
      continue;
    }
    const eku = c.extensions?.find((e) => e.extnID === OID.extKeyUsage)?.parsedValue as pkijs.ExtKeyUsage | undefined;
    if (!eku?.keyPurposes?.includes(OID.ocspSigning)) {
      why = 'its responder certificate lacks the OCSPSigning extended key usage';
      continue;
    }
    const info = parseCertificate(Buffer.from(c.toSchema().toBER(false)));
    if (info.keyUsage && !info.keyUsage.includes('digitalSignature')) {
      why = 'its responder certificate\'s key usage does not allow digital signatures';
      continue;
    }
    if (c.notBefore.value.getTime() > at + ctx.skewMs || c.notAfter.value.getTime() < at - ctx.skewMs) {
      why = 'its responder certificate is not valid at the time of the check';
      continue;
    }
    return { key: c.subjectPublicKeyInfo, delegate: info };
  }
  return why;
}
