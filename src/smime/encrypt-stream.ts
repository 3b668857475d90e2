/**
 * S/MIME encryption of content that streams (the worker's large-message path): the same CMS
 * objects as encrypt.ts — EnvelopedData, or AuthEnvelopedData for AES-GCM, with the very same
 * RecipientInfos (recipientInfo() of encrypt.ts: RSA PKCS#1 v1.5 or OAEP, ECDH) — but written as
 * BER with indefinite lengths (X.690 8.1.3.6), so the size need not be known before the end, and
 * the encryptedContent as a constructed OCTET STRING of chunks (RFC 5652 §6.1 allows it; openssl
 * cms -stream and gpgsm write the same form, and every CMS reader must accept it).
 *
 *   ContentInfo  30 80  06 <oid>  A0 80
 *     (Auth)EnvelopedData  30 80  02 01 v  31 <recipientInfos>
 *       EncryptedContentInfo  30 80  06 <id-data>  <algorithm>  A0 80  04 <n> <chunk> …  00 00  00 00
 *       [AuthEnvelopedData: 04 10 <GCM tag>]
 *     00 00  00 00  00 00
 */
import { randomBytes } from 'node:crypto';
import { SmimeError } from './errors.js';
import { isGcm, keyLength, startContentCipher } from './env-content.js';
import { lengthBytes, oid, OID, setOf, smallInt, tlv } from './env-der.js';
import { checkEncryptOptions, recipientInfo, type EncryptOptions } from './encrypt.js';
import type { SmimeRecipient } from './recipient-keys.js';

const EOC = Buffer.from([0x00, 0x00]);
const OCTETS = Buffer.from([0x04]);
/** Ciphertext bytes per OCTET STRING segment: large enough that the 4-byte headers do not matter. */
const SEGMENT = 64 * 1024;

/** BER header of an element with indefinite length. */
const open = (tag: number): Buffer => Buffer.from([tag, 0x80]);

/**
 * The DER-less CMS object for `content` (id-data) encrypted to every recipient, as BER chunks.
 * The content key is made and wrapped before the first chunk; it is wiped when the stream ends,
 * fails or is abandoned.
 */
export async function* encryptChunks(content: AsyncIterable<Buffer>, recipients: readonly SmimeRecipient[], opts: EncryptOptions = {}): AsyncGenerator<Buffer> {
  const { cipher, unique } = checkEncryptOptions(recipients, opts);
  const cek = randomBytes(keyLength(cipher));
  try {
    let infos: { der: Buffer; v0: boolean }[];
    let enc: ReturnType<typeof startContentCipher>;
    try {
      infos = unique.map((r) => recipientInfo(r, cek, opts));
      enc = startContentCipher(cipher, cek);
    } catch (err) {
      if (err instanceof SmimeError) throw err;
      throw new SmimeError('encryption failed inside the crypto library', 'bad-key', { cause: err });
    }
    const gcm = isGcm(cipher);
    // EnvelopedData version: 0 when every RecipientInfo is version 0 (ktri), else 2 (RFC 5652 §6.1); AuthEnvelopedData: 0.
    const version = gcm ? 0 : infos.every((i) => i.v0) ? 0 : 2;
    yield Buffer.concat([
      open(0x30),
      oid(gcm ? OID.authEnvelopedData : OID.envelopedData),
      open(0xa0),
      open(0x30),
      smallInt(version),
      setOf(infos.map((i) => i.der)),
      open(0x30),
      oid(OID.data),
      enc.algorithm,
      open(0xa0),
    ]);
    let pending: Buffer[] = [];
    let size = 0;
    // A segment's OCTET STRING header, then its ciphertext as the cipher gave it: no copy.
    const flush = (): Buffer[] => {
      const out = [Buffer.concat([OCTETS, lengthBytes(size)]), ...pending];
      pending = [];
      size = 0;
      return out;
    };
    for await (const chunk of content) {
      const out = enc.update(chunk);
      if (!out.length) continue;
      pending.push(out);
      size += out.length;
      if (size >= SEGMENT) yield* flush();
    }
    const last = enc.final();
    if (last.length) {
      pending.push(last);
      size += last.length;
    }
    const closing: Buffer[] = [];
    if (size) closing.push(...flush());
    closing.push(EOC, EOC); // the [0] of the ciphertext, EncryptedContentInfo
    if (gcm) closing.push(tlv(0x04, enc.tag()!));
    closing.push(EOC, EOC, EOC); // (Auth)EnvelopedData, [0], ContentInfo
    yield Buffer.concat(closing);
  } finally {
    cek.fill(0);
  }
}
