/**
 * S/MIME decryption of EnvelopedData and AuthEnvelopedData addressed to keys we hold. Input is
 * hostile mail: whatever arrives, the caller gets a Decrypted or a SmimeError with a code, never
 * another exception. Recipient infos are matched by issuer+serial and by subjectKeyIdentifier
 * (ktri and kari), and every matching key is tried, since a user may hold several keys for one
 * certificate identity after a renewal. Failures that could serve as a padding oracle (PKCS#1
 * v1.5, OAEP, key unwrap, CBC padding) all end as 'decrypt-failed' with one text; a PKCS#1 block
 * that does not unpad yields a synthetic key instead of an error (rsa-pkcs1.ts).
 */
import { LimitExceededError } from '../core/limits.js';
import { SmimeError } from './errors.js';
import { readAuthEnvelopedData } from './auth-enveloped.js';
import {
  decryptContent, decryptFailed, DECRYPT_FAILED_TEXT, INTEGRITY_TEXT, readContentAlgorithm, type ContentAlgorithm,
} from './env-content.js';
import { malformed, OID, raw, readAlgId, serialHex } from './env-der.js';
import { readContentInfo, readEnvelopedData, unsupportedContentType, type Envelope } from './env-enveloped.js';
import { CURVE_BY_OID, KDF_BY_OID, recipientKek, unwrapKey, WRAP_BY_OID } from './env-kari.js';
import { describeOaep, nameToString, readOaepParams, type Kari, type Ktri, type Rid } from './env-recipient-info.js';
import { materialOfKey, ridMatches, type KeyMaterial, type SmimeDecryptionKey } from './recipient-keys.js';
import { decryptPkcs1, oaepDecode, rsaRaw } from '../pki/index.js';

export interface Decrypted {
  content: Buffer;
  structure: 'enveloped-data' | 'authEnveloped-data';
  /** 'AES-256-CBC', 'AES-128-GCM', '3DES-CBC' … */
  cipher: string;
  /** 'RSA PKCS#1 v1.5', 'RSA-OAEP (SHA-256)', 'RSA-OAEP (SHA-256, MGF1-SHA-1)', 'ECDH P-256' … */
  keyTransport: string;
  /** ECDH only: the KDF and key wrap, e.g. 'SHA-256 KDF, AES-128 key wrap'. */
  keyWrap?: string;
  /** True only for AuthEnvelopedData whose tag verified. */
  authenticated: boolean;
  recipientFingerprint: string;
  /** The inner content type OID (id-data for S/MIME). */
  contentType: string;
}

interface KeyResult {
  cek: Buffer | null;
  keyTransport: string;
  keyWrap?: string;
}

const unsupported = (what: string) => new SmimeError(`${what} is not supported`, 'unsupported');
const hashLabel = (h: string) => h.toUpperCase().replace(/^SHA/, 'SHA-');

function ktriKey(ri: Ktri, m: KeyMaterial, keyLen: number): KeyResult {
  const rsa = m.rsa!;
  if (ri.keyAlg.oid === OID.rsaEncryption) {
    return { cek: decryptPkcs1(rsa.privateKey, rsa.rejection, rsa.k, ri.encryptedKey, keyLen), keyTransport: 'RSA PKCS#1 v1.5' };
  }
  if (ri.keyAlg.oid === OID.rsaesOaep) {
    const p = readOaepParams(ri.keyAlg.params);
    const em = ri.encryptedKey.length <= rsa.k ? rsaRaw(rsa.privateKey, ri.encryptedKey) : null;
    return { cek: oaepDecode(em, rsa.k, p), keyTransport: describeOaep(p) };
  }
  throw unsupported(`key transport ${ri.keyAlg.oid}`);
}

function kariKey(ri: Kari, encryptedKey: Buffer, m: KeyMaterial): KeyResult {
  const ec = m.ec!;
  if ('unsupported' in ri.originator) throw unsupported(ri.originator.unsupported);
  const kdfHash = KDF_BY_OID[ri.keyAlg.oid];
  if (!kdfHash) throw unsupported(`key agreement scheme ${ri.keyAlg.oid}`);
  if (!ri.keyAlg.params) throw malformed('the key agreement algorithm names no key wrap');
  const wrapOid = readAlgId(ri.keyAlg.params, 'key wrap algorithm').oid;
  const wrap = WRAP_BY_OID[wrapOid];
  if (!wrap) throw unsupported(`key wrap algorithm ${wrapOid}`);
  const keyTransport = `ECDH ${ec.curve}`;
  const keyWrap = `${hashLabel(kdfHash)} KDF, ${wrap.label} key wrap`;
  const sentCurve = ri.originator.curveOid ? CURVE_BY_OID[ri.originator.curveOid] : ec.curve;
  if (sentCurve !== ec.curve) return { cek: null, keyTransport, keyWrap };
  const kek = recipientKek(ec.curve, ec.scalar, ri.originator.point, kdfHash, wrapOid, raw(ri.keyAlg.params), ri.ukm);
  return { cek: kek && unwrapKey(wrapOid, kek, encryptedKey), keyTransport, keyWrap };
}

interface Candidate {
  key: SmimeDecryptionKey;
  unwrap: () => KeyResult;
}

function candidates(env: Envelope, keys: readonly SmimeDecryptionKey[], alg: ContentAlgorithm): Candidate[] {
  const held = keys.map((key) => ({ key, m: materialOfKey(key) }));
  const out: Candidate[] = [];
  const match = (rid: Rid, kind: 'rsa' | 'ec', unwrap: (m: KeyMaterial) => KeyResult) => {
    for (const { key, m } of held) if (m[kind] && ridMatches(m, rid)) out.push({ key, unwrap: () => unwrap(m) });
  };
  for (const ri of env.recipientInfos) {
    if (ri.type === 'ktri') match(ri.rid, 'rsa', (m) => ktriKey(ri, m, alg.spec.keyLen));
    if (ri.type === 'kari') for (const rek of ri.recipients) match(rek.rid, 'ec', (m) => kariKey(ri, rek.encryptedKey, m));
  }
  return out;
}

function readEnvelope(der: Buffer): Envelope {
  const { contentType, content } = readContentInfo(der);
  if (contentType === OID.envelopedData) return readEnvelopedData(content);
  if (contentType === OID.authEnvelopedData) return readAuthEnvelopedData(content);
  throw unsupportedContentType(contentType);
}

/** The synchronous core of decrypt(). */
export function decryptSync(der: Buffer, keys: readonly SmimeDecryptionKey[]): Decrypted {
  const env = readEnvelope(der);
  const authenticated = env.structure === 'authEnveloped-data';
  const alg = readContentAlgorithm(env.contentAlg.oid, env.contentAlg.params, authenticated);
  const found = candidates(env, keys, alg);
  if (found.length === 0) {
    const n = env.recipientInfos.length;
    throw new SmimeError(`the message is encrypted to ${n} recipient${n === 1 ? '' : 's'}, none of them a key Postern holds`, 'no-recipient');
  }
  const failures: SmimeError[] = [];
  for (const c of found) {
    let r: KeyResult;
    try {
      r = c.unwrap();
    } catch (err) {
      failures.push(err instanceof SmimeError ? err : decryptFailed());
      continue;
    }
    if (!r.cek) {
      failures.push(decryptFailed());
      continue;
    }
    try {
      const content = decryptContent(alg, r.cek, env.encryptedContent, env.mac, env.aad);
      return {
        content, structure: env.structure, cipher: alg.spec.label, keyTransport: r.keyTransport,
        ...(r.keyWrap ? { keyWrap: r.keyWrap } : {}), authenticated, recipientFingerprint: c.key.fingerprint, contentType: env.contentType,
      };
    } catch (err) {
      failures.push(err instanceof SmimeError ? err : decryptFailed());
    } finally {
      r.cek.fill(0);
    }
  }
  // One error for all the keys tried: a tag mismatch says the most, then a failed decryption.
  const first = (code: string) => failures.find((f) => f.code === code);
  throw first('integrity') ?? first('decrypt-failed') ?? failures[0] ?? decryptFailed();
}

/** Never anything but SmimeError, whatever the input. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    // A limit is not a decryption failure: it says which limit, for the hold reason.
    if (err instanceof LimitExceededError) throw err;
    if (err instanceof SmimeError) {
      // Fresh errors with the fixed texts: no cause chain that might say where decryption failed.
      if (err.code === 'decrypt-failed') throw new SmimeError(DECRYPT_FAILED_TEXT, 'decrypt-failed');
      if (err.code === 'integrity') throw new SmimeError(INTEGRITY_TEXT, 'integrity');
      throw err;
    }
    throw malformed('the structure could not be read', err);
  }
}

export async function decrypt(der: Buffer, keys: SmimeDecryptionKey[]): Promise<Decrypted> {
  return guarded(() => decryptSync(der, keys));
}

/** Who an enveloped message is addressed to, for "not addressed to us" reasons. */
export function envelopeRecipients(der: Buffer): { issuer?: string; serial?: string; subjectKeyId?: string }[] {
  return guarded(() => {
    const out: { issuer?: string; serial?: string; subjectKeyId?: string }[] = [];
    const add = (rid: Rid) =>
      out.push(rid.kind === 'ski' ? { subjectKeyId: rid.ski.toString('hex') } : { issuer: nameToString(rid.issuer), serial: serialHex(rid.serial) });
    for (const ri of readEnvelope(der).recipientInfos) {
      if (ri.type === 'ktri') add(ri.rid);
      if (ri.type === 'kari') ri.recipients.forEach((r) => add(r.rid));
    }
    return out;
  });
}
