/**
 * Is the whole body of a message already ciphertext — S/MIME EnvelopedData or AuthEnvelopedData
 * (application/pkcs7-mime, or a .p7m), PGP/MIME (multipart/encrypted, or the form Exchange
 * rewrites it into) — possibly inside detached signatures, which carry no content of their own?
 * Outbound mail a user's client encrypted is not encrypted again (worker/transform.ts).
 *
 * Only the structure is read here; the bytes it returns are checked by the method that knows them
 * (a CMS EnvelopedData that parses, OpenPGP packets that are session keys and encrypted data),
 * because a label is not proof: a part that says enveloped-data may hold anything. Armour inside a
 * text part never counts: a text body can hold armour and plaintext beside it, or a signed-only
 * message that looks the same from outside.
 *
 * Untrusted input: any message. Bounded: three signature layers at most, no recursion.
 */
import { decodeBody, multipartLayout, readEntity, type Entity } from './entity.js';
import { cmsKind, fileName } from './crypto-tree.js';

export type BodyCiphertext = { method: 'smime'; der: Buffer } | { method: 'pgp'; data: Buffer };

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const SIGNATURES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);
const lower = (s: string | undefined) => (s ?? '').trim().toLowerCase();

/** The two parts of PGP/MIME's control and data, when they are that (RFC 3156 §4). */
function pgpData(control: Entity | undefined, data: Entity | undefined): Buffer | null {
  if (control?.type.type !== 'application/pgp-encrypted' || data?.type.type !== 'application/octet-stream') return null;
  if (!/^\s*Version:\s*1\s*$/m.test(decodeBody(control).toString('latin1'))) return null;
  return decodeBody(data);
}

export function bodyCiphertext(message: Buffer): BodyCiphertext | null {
  let e = readEntity(message);
  for (let layer = 0; layer < 4; layer++) {
    const t = e.type.type;
    const boundary = e.type.params.get('boundary');
    if (PKCS7_MIME.has(t) || (t === 'application/octet-stream' && /\.p7m$/i.test(fileName(e)))) {
      const der = decodeBody(e);
      return cmsKind(der) === 'enveloped' ? { method: 'smime', der } : null;
    }
    if (!boundary || !t.startsWith('multipart/')) return null;
    const { parts, closed } = multipartLayout(e.body, boundary, 4);
    if (!closed) return null;
    const entities = parts.map((p) => readEntity(p));
    if (t === 'multipart/signed' && parts.length === 2 && SIGNATURES.has(entities[1]!.type.type)) {
      e = entities[0]!;
      continue;
    }
    if (t === 'multipart/encrypted' && lower(e.type.params.get('protocol')) === 'application/pgp-encrypted' && parts.length === 2) {
      const data = pgpData(entities[0], entities[1]);
      return data ? { method: 'pgp', data } : null;
    }
    if (t === 'multipart/mixed') {
      // Exchange: [an empty text/plain,] application/pgp-encrypted, application/octet-stream.
      const rest = entities.length === 3 && entities[0]!.type.type === 'text/plain' && decodeBody(entities[0]!).toString('latin1').trim() === '' ? entities.slice(1) : entities;
      const data = rest.length === 2 ? pgpData(rest[0], rest[1]) : null;
      return data ? { method: 'pgp', data } : null;
    }
    return null;
  }
  return null;
}
