/**
 * PKCS#12 (RFC 7292) reading and writing, done here rather than in pkijs because pkijs only knows
 * PBES2, while admins bring legacy files (pbeWithSHAAnd3-KeyTripleDES-CBC keys, RC2-40 certificate
 * bags — and Node's OpenSSL 3 has no RC2 without the legacy provider, so RC2 decryption is here too).
 * The MAC is checked before anything is decrypted: that is what tells a wrong password apart from a
 * broken file. Passwords and key bytes never reach an error message.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import * as asn1js from 'asn1js';
import { PkiError } from './errors.js';
import type { CertInfo, PrivateKeyInfo } from './types.js';
import { children, decodeStrict, publicKeysEqual } from './x509.js';

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  envelopedData: '1.2.840.113549.1.7.3',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbmac1: '1.2.840.113549.1.5.14',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** Digest OIDs of MacData, and PBKDF2 PRFs (hmacWithSHA*). */
const DIGESTS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.4': 'sha224', '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512',
};
const PRFS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1', '1.2.840.113549.2.8': 'sha224', '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384', '1.2.840.113549.2.11': 'sha512',
};
const PBES2_CIPHERS: Record<string, { name: string; keyLen: number }> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLen: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLen: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLen: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLen: 24 },
};
/** RFC 7292 appendix C: the PKCS#12 PBE algorithms (all SHA-1 based). RC4 ones are refused. */
const PKCS12_PBE: Record<string, { cipher: 'des-ede3-cbc' | 'des-ede-cbc' | 'rc2'; keyLen: number; label: string }> = {
  '1.2.840.113549.1.12.1.3': { cipher: 'des-ede3-cbc', keyLen: 24, label: 'pbeWithSHAAnd3-KeyTripleDES-CBC' },
  '1.2.840.113549.1.12.1.4': { cipher: 'des-ede-cbc', keyLen: 16, label: 'pbeWithSHAAnd2-KeyTripleDES-CBC' },
  '1.2.840.113549.1.12.1.5': { cipher: 'rc2', keyLen: 16, label: 'pbeWithSHAAnd128BitRC2-CBC' },
  '1.2.840.113549.1.12.1.6': { cipher: 'rc2', keyLen: 5, label: 'pbeWithSHAAnd40BitRC2-CBC' },
};
/** Iteration counts above this are refused: a hostile file must not pin a CPU for minutes. */
const MAX_ITERATIONS = 10_000_000;
const MAX_KDF12_ITERATIONS = 2_000_000; // the PKCS#12 KDF runs in JS, so a lower cap
/** What exportPkcs12 writes: PBKDF2 and MAC iterations (the MAC must be as costly: it checks the same password). */
export const EXPORT_ITERATIONS = 100_000;

// ---------------------------------------------------------------- primitives

const oidOf = (n: asn1js.AsnType | undefined): string => (n instanceof asn1js.ObjectIdentifier ? n.valueBlock.toString() : '');
const intOf = (n: asn1js.AsnType | undefined, dflt?: number): number => {
  if (n === undefined && dflt !== undefined) return dflt;
  if (!(n instanceof asn1js.Integer)) throw new PkiError('PKCS#12: expected an INTEGER');
  return n.valueBlock.valueDec;
};
/** Content octets of an OCTET STRING or [n] IMPLICIT OCTET STRING, primitive or constructed (BER). */
function octets(n: asn1js.AsnType | undefined): Buffer {
  if (!n) throw new PkiError('PKCS#12: missing OCTET STRING');
  const parts = children(n);
  if (n.idBlock.isConstructed) return Buffer.concat(parts.map(octets));
  return Buffer.from((n as asn1js.OctetString).valueBlock.valueHexView);
}
/** Content of [0] EXPLICIT: its only child. */
const explicit0 = (n: asn1js.AsnType | undefined): asn1js.AsnType | undefined =>
  n && n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 0 ? children(n)[0] : undefined;

/** BMPString of the password plus two zero bytes, as RFC 7292 B.1 wants it for the PKCS#12 KDF. */
function bmpPassword(password: string): Buffer {
  const b = Buffer.from(`${password}\0`, 'utf16le');
  return b.swap16();
}

/** RFC 7292 appendix B.2 key derivation (ID 1 = key, 2 = IV, 3 = MAC key). */
export function pkcs12Kdf(hash: string, password: Buffer, salt: Buffer, iterations: number, id: 1 | 2 | 3, n: number): Buffer {
  if (iterations < 1 || iterations > MAX_KDF12_ITERATIONS) throw new PkiError(`PKCS#12: unreasonable iteration count ${iterations}`, 'unsupported');
  const u = createHash(hash).digest().length;
  const v = hash === 'sha384' || hash === 'sha512' ? 128 : 64;
  const fill = (src: Buffer) => {
    const len = src.length ? v * Math.ceil(src.length / v) : 0;
    const out = Buffer.alloc(len);
    for (let i = 0; i < len; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const out: Buffer[] = [];
  for (let done = 0; done < n; done += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    out.push(A);
    if (done + u >= n) break;
    const B = fill(A);
    // I_j = (I_j + B + 1) mod 2^(8v), for each v-byte block of I.
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const x = I[j + k]! + B[k]! + carry;
        I[j + k] = x & 0xff;
        carry = x >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}

// RC2 (RFC 2268), decryption only: just enough for legacy pbeWithSHAAnd40BitRC2-CBC certificate bags.
const PITABLE = Buffer.from(
  [
    'd978f9c419ddb5ed28e9fd794aa0d89d',
    'c67e37832b76538e624c6488448bfba2',
    '179a59f587b34f1361456d8d09817d32',
    'bd8f40eb86b77b0bf09521225c6b4e82',
    '54d66593ce60b21c7356c014a78cf1dc',
    '1275ca1f3bbee4d1423dd430a33cb626',
    '6fbf0eda4669075727f21d9bbc944303',
    'f811c7f690ef3ee706c3d52fc8661ed7',
    '08e8eade8052eef784aa72ac354d6a2a',
    '961ad2715a1549744b9fd05e0418a4ec',
    'c2e0416e0f51cbcc2491af50a1f47039',
    '997c3a8523b8b47afc02365b25559731',
    '2d5dfa98e38a92ae05df2910676cbac9',
    'd300e6cfe19ea82c6316013f58e289a9',
    '0d38341bab33ffb0bb480c5fb9b1cd2e',
    'c5f3db47e5a59c770aa62068fe7fc1ad',
  ].join(''),
  'hex',
);

function rc2Decrypt(key: Buffer, effectiveBits: number, iv: Buffer, data: Buffer): Buffer {
  if (data.length === 0 || data.length % 8) throw new PkiError('PKCS#12: RC2 ciphertext is not a whole number of blocks');
  const L = Buffer.alloc(128);
  key.copy(L);
  const T = key.length;
  for (let i = T; i < 128; i++) L[i] = PITABLE[(L[i - 1]! + L[i - T]!) & 0xff]!;
  const T8 = Math.ceil(effectiveBits / 8);
  const TM = 0xff >> (8 * T8 - effectiveBits);
  L[128 - T8] = PITABLE[L[128 - T8]! & TM]!;
  for (let i = 127 - T8; i >= 0; i--) L[i] = PITABLE[L[i + 1]! ^ L[i + T8]!]!;
  const K = new Uint16Array(64);
  for (let i = 0; i < 64; i++) K[i] = L[2 * i]! | (L[2 * i + 1]! << 8);
  const S = [1, 2, 3, 5];
  const out = Buffer.alloc(data.length);
  let prev = iv;
  for (let off = 0; off < data.length; off += 8) {
    const R = [0, 1, 2, 3].map((i) => data.readUInt16LE(off + 2 * i));
    let j = 63;
    const rmix = () => {
      for (let i = 3; i >= 0; i--) {
        const s = S[i]!;
        R[i] = ((R[i]! >>> s) | (R[i]! << (16 - s))) & 0xffff;
        R[i] = (R[i]! - K[j--]! - (R[(i + 3) & 3]! & R[(i + 2) & 3]!) - (~R[(i + 3) & 3]! & R[(i + 1) & 3]!)) & 0xffff;
      }
    };
    const rmash = () => {
      for (let i = 3; i >= 0; i--) R[i] = (R[i]! - K[R[(i + 3) & 3]! & 63]!) & 0xffff;
    };
    for (const [rounds, mash] of [[5, true], [6, true], [5, false]] as const) {
      for (let r = 0; r < rounds; r++) rmix();
      if (mash) rmash();
    }
    for (let i = 0; i < 4; i++) out.writeUInt16LE(R[i]! ^ prev.readUInt16LE(2 * i), off + 2 * i);
    prev = data.subarray(off, off + 8);
  }
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > 8 || !out.subarray(out.length - pad).every((b) => b === pad)) throw new PkiError('bad padding', 'wrong-password');
  return out.subarray(0, out.length - pad);
}

/** Decrypt with a PBES2 or PKCS#12-PBE AlgorithmIdentifier. A padding failure means a wrong password. */
export function pbeDecrypt(algId: asn1js.AsnType, data: Buffer, password: string): Buffer {
  const [oidNode, params] = children(algId);
  const oid = oidOf(oidNode);
  try {
    if (oid === OID.pbes2) {
      const [kdf, enc] = children(params);
      if (oidOf(children(kdf)[0]) !== OID.pbkdf2) throw new PkiError(`PBES2 with key derivation ${oidOf(children(kdf)[0])} is not supported (only PBKDF2)`, 'unsupported');
      const [salt, iter, third, fourth] = children(children(kdf)[1]);
      const prfNode = third instanceof asn1js.Sequence ? third : fourth;
      const prf = prfNode ? PRFS[oidOf(children(prfNode)[0])] : 'sha1';
      const [encOid, ivNode] = children(enc);
      const cipher = PBES2_CIPHERS[oidOf(encOid)];
      if (!prf || !cipher) throw new PkiError(`PBES2 with ${prf ? `cipher ${oidOf(encOid)}` : 'an unknown PRF'} is not supported`, 'unsupported');
      const iterations = intOf(iter);
      if (iterations < 1 || iterations > MAX_ITERATIONS) throw new PkiError(`unreasonable PBKDF2 iteration count ${iterations}`, 'unsupported');
      const key = pbkdf2Sync(Buffer.from(password, 'utf8'), octets(salt), iterations, cipher.keyLen, prf);
      const d = createDecipheriv(cipher.name, key, octets(ivNode));
      return Buffer.concat([d.update(data), d.final()]);
    }
    const pbe = PKCS12_PBE[oid];
    if (!pbe) throw new PkiError(`encryption algorithm ${oid || '(none)'} is not supported; re-export the file with AES (openssl pkcs12 -export without -legacy)`, 'unsupported');
    const [salt, iter] = children(params);
    const pw = bmpPassword(password);
    const key = pkcs12Kdf('sha1', pw, octets(salt), intOf(iter, 1), 1, pbe.keyLen);
    const iv = pkcs12Kdf('sha1', pw, octets(salt), intOf(iter, 1), 2, 8);
    if (pbe.cipher === 'rc2') return rc2Decrypt(key, pbe.keyLen * 8, iv, data);
    const d = createDecipheriv(pbe.cipher, key, iv);
    return Buffer.concat([d.update(data), d.final()]);
  } catch (err) {
    if (err instanceof PkiError && err.code !== 'wrong-password') throw err;
    throw new PkiError('wrong password: the data does not decrypt with it', 'wrong-password', { cause: err });
  }
}

// ---------------------------------------------------------------- reading

export interface Pkcs12Contents {
  /** DER certificates, in file order. */
  certificates: Buffer[];
  /** Unencrypted PKCS#8 DER private keys (secrets). */
  keys: Buffer[];
}

function verifyMac(macData: asn1js.AsnType, authSafe: Buffer, password: string | undefined): boolean {
  const [digestInfo, saltNode, iterNode] = children(macData);
  const [algId, digest] = children(digestInfo);
  const algOid = oidOf(children(algId)[0]);
  if (algOid === OID.pbmac1) throw new PkiError('PKCS#12 with a PBMAC1 integrity check is not supported; re-export it with openssl pkcs12 -export -macalg sha256', 'unsupported');
  const hash = DIGESTS[algOid];
  if (!hash) throw new PkiError(`PKCS#12 MAC digest ${algOid} is not supported`, 'unsupported');
  const expected = octets(digest);
  const key = pkcs12Kdf(hash, bmpPassword(password ?? ''), octets(saltNode), intOf(iterNode, 1), 3, createHash(hash).digest().length);
  const actual = createHmac(hash, key).update(authSafe).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function readSafeContents(der: Buffer, password: string, out: Pkcs12Contents): void {
  for (const bag of children(decodeStrict(der, 'PKCS#12 SafeContents'))) {
    const [idNode, valueWrap] = children(bag);
    const value = explicit0(valueWrap);
    if (!value) throw new PkiError('PKCS#12: a SafeBag has no value');
    switch (oidOf(idNode)) {
      case OID.keyBag:
        out.keys.push(Buffer.from((value as asn1js.BaseBlock).valueBeforeDecodeView));
        break;
      case OID.shroudedKeyBag: {
        const [alg, enc] = children(value);
        if (!alg) throw new PkiError('PKCS#12: malformed shrouded key bag');
        out.keys.push(pbeDecrypt(alg, octets(enc), password));
        break;
      }
      case OID.certBag: {
        const [certId, certValue] = children(value);
        // sdsiCertificate and other kinds carry nothing Postern can use.
        if (oidOf(certId) === OID.x509Certificate) out.certificates.push(octets(explicit0(certValue)));
        break;
      }
      case OID.safeContentsBag:
        readSafeContents(Buffer.from((value as asn1js.BaseBlock).valueBeforeDecodeView), password, out);
        break;
      default: // CRL and secret bags: nothing to import
    }
  }
}

/** Whether `der` looks like a PFX: SEQUENCE { INTEGER 3, ContentInfo, ... }. */
export function looksLikePkcs12(root: asn1js.AsnType): boolean {
  const [v, ci] = children(root);
  return v instanceof asn1js.Integer && v.valueBlock.valueDec === 3 && ci instanceof asn1js.Sequence && ci.valueBlock.value[0] instanceof asn1js.ObjectIdentifier;
}

/** Read a PKCS#12 file. A missing password is tried as the empty one (a common export default). */
export function readPkcs12(der: Buffer, password: string | undefined): Pkcs12Contents {
  const root = decodeStrict(der, 'PKCS#12');
  if (!looksLikePkcs12(root)) throw new PkiError('not a PKCS#12 file');
  const [, authSafeCi, macData] = children(root);
  const [typeNode, content] = children(authSafeCi);
  if (oidOf(typeNode) !== OID.data) throw new PkiError('PKCS#12 with public-key integrity mode is not supported; export it with a password', 'unsupported');
  const authSafe = octets(explicit0(content));
  if (macData) {
    if (!verifyMac(macData, authSafe, password)) {
      throw password === undefined || password === ''
        ? new PkiError('this PKCS#12 file is password-protected: give its password', 'password-required')
        : new PkiError('wrong password for the PKCS#12 file (its integrity check fails)', 'wrong-password');
    }
  }
  const out: Pkcs12Contents = { certificates: [], keys: [] };
  try {
    for (const ci of children(decodeStrict(authSafe, 'PKCS#12 AuthenticatedSafe'))) {
      const [t, c] = children(ci);
      const type = oidOf(t);
      if (type === OID.data) readSafeContents(octets(explicit0(c)), password ?? '', out);
      else if (type === OID.encryptedData) {
        const [, eci] = children(explicit0(c));
        const [, alg, encContent] = children(eci);
        if (!alg || !encContent) throw new PkiError('PKCS#12: malformed EncryptedData');
        readSafeContents(pbeDecrypt(alg, octets(encContent), password ?? ''), password ?? '', out);
      } else if (type === OID.envelopedData) {
        throw new PkiError('PKCS#12 with public-key privacy mode (envelopedData) is not supported', 'unsupported');
      }
    }
  } catch (err) {
    out.keys.forEach((k) => k.fill(0));
    if (err instanceof PkiError && err.code === 'wrong-password' && password === undefined) {
      throw new PkiError('this PKCS#12 file is password-protected: give its password', 'password-required');
    }
    throw err;
  }
  return out;
}

// ---------------------------------------------------------------- writing

const seq = (...value: asn1js.AsnType[]) => new asn1js.Sequence({ value });
const oidNode = (value: string) => new asn1js.ObjectIdentifier({ value });
const octetNode = (b: Uint8Array) => new asn1js.OctetString({ valueHex: b });
const ctx0 = (...value: asn1js.AsnType[]) => new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value });
const der = (n: asn1js.AsnType) => Buffer.from(n.toBER(false));

/** PBES2: PBKDF2-HMAC-SHA256 (EXPORT_ITERATIONS) + AES-256-CBC; returns [AlgorithmIdentifier, ciphertext]. */
function pbes2Encrypt(plain: Buffer, password: string): [asn1js.AsnType, Buffer] {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, EXPORT_ITERATIONS, 32, 'sha256');
  const c = createCipheriv('aes-256-cbc', key, iv);
  const enc = Buffer.concat([c.update(plain), c.final()]);
  key.fill(0);
  const params = seq(
    seq(oidNode(OID.pbkdf2), seq(octetNode(salt), new asn1js.Integer({ value: EXPORT_ITERATIONS }), seq(oidNode(OID.hmacWithSHA256), new asn1js.Null()))),
    seq(oidNode(OID.aes256cbc), octetNode(iv)),
  );
  return [seq(oidNode(OID.pbes2), params), enc];
}

function bagAttributes(friendlyName: string | undefined, localKeyId: Buffer | undefined): asn1js.AsnType[] {
  const attrs: asn1js.AsnType[] = [];
  if (friendlyName) attrs.push(seq(oidNode(OID.friendlyName), new asn1js.Set({ value: [new asn1js.BmpString({ value: friendlyName })] })));
  if (localKeyId) attrs.push(seq(oidNode(OID.localKeyId), new asn1js.Set({ value: [octetNode(localKeyId)] })));
  return attrs.length ? [new asn1js.Set({ value: attrs })] : [];
}

/**
 * Write a PFX: certificates in one PBES2-encrypted SafeContents, the key in a shrouded key bag,
 * HMAC-SHA256 integrity (PKCS#12 KDF), all at EXPORT_ITERATIONS. `keyCertIndex` is the certificate
 * that gets the key's localKeyId (so importers pair them).
 */
export function writePkcs12(opts: { pkcs8: Buffer; certificates: Buffer[]; keyCertIndex: number; password: string; friendlyName?: string }): Buffer {
  const keyId = opts.certificates[opts.keyCertIndex] ? createHash('sha1').update(opts.certificates[opts.keyCertIndex]!).digest() : randomBytes(20);
  const certBags = opts.certificates.map((c, i) =>
    seq(
      oidNode(OID.certBag),
      ctx0(seq(oidNode(OID.x509Certificate), ctx0(octetNode(c)))),
      ...bagAttributes(i === opts.keyCertIndex ? opts.friendlyName : undefined, i === opts.keyCertIndex ? keyId : undefined),
    ),
  );
  const [certAlg, certEnc] = pbes2Encrypt(der(seq(...certBags)), opts.password);
  const encryptedData = seq(
    new asn1js.Integer({ value: 0 }),
    seq(oidNode(OID.data), certAlg, new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: certEnc })),
  );
  const [keyAlg, keyEnc] = pbes2Encrypt(opts.pkcs8, opts.password);
  const keyBag = seq(oidNode(OID.shroudedKeyBag), ctx0(seq(keyAlg, octetNode(keyEnc))), ...bagAttributes(opts.friendlyName, keyId));
  const authSafe = der(
    seq(seq(oidNode(OID.encryptedData), ctx0(encryptedData)), seq(oidNode(OID.data), ctx0(octetNode(der(seq(keyBag)))))),
  );
  const macSalt = randomBytes(16);
  const macKey = pkcs12Kdf('sha256', bmpPassword(opts.password), macSalt, EXPORT_ITERATIONS, 3, 32);
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  macKey.fill(0);
  const pfx = seq(
    new asn1js.Integer({ value: 3 }),
    seq(oidNode(OID.data), ctx0(octetNode(authSafe))),
    seq(seq(seq(oidNode(OID.sha256), new asn1js.Null()), octetNode(mac)), octetNode(macSalt), new asn1js.Integer({ value: EXPORT_ITERATIONS })),
  );
  return der(pfx);
}

/**
 * A password-protected PKCS#12 of a key and its chain — the only way private keys leave the store.
 * PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for key and certificates, HMAC-SHA256 MAC, all at
 * EXPORT_ITERATIONS (100 000): what OpenSSL 3 and NSS read, stronger than OpenSSL's 2048 default.
 * One of `certificates` must belong to the key; it gets the key's localKeyId and friendlyName.
 */
export async function exportPkcs12(opts: { key: PrivateKeyInfo; certificates: CertInfo[]; password: string; friendlyName?: string }): Promise<Buffer> {
  if (!opts.password) throw new PkiError('a PKCS#12 export needs a non-empty password', 'password-required');
  let spki: Buffer;
  try {
    spki = createPublicKey(createPrivateKey({ key: opts.key.pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new PkiError('the private key to export is not a valid PKCS#8 key', 'invalid', { cause: err });
  }
  const keyCertIndex = opts.certificates.findIndex((c) => publicKeysEqual(spki, c.spki));
  if (keyCertIndex < 0) throw new PkiError('none of the certificates to export belongs to the private key', 'invalid');
  return writePkcs12({ pkcs8: opts.key.pkcs8, certificates: opts.certificates.map((c) => c.der), keyCertIndex, password: opts.password, friendlyName: opts.friendlyName });
}
