/**
 * Crypto anywhere in a MIME tree: every signed or encrypted structure below some entity — S/MIME
 * and PGP/MIME parts inside multipart/mixed or alternative, armour in a text or HTML body or in an
 * attachment, a detached signature file beside the file it signs, a forwarded message — each with
 * its IMAP part number (RFC 3501 §6.4.5), so that what is signed and what is not can be named.
 *
 * This only finds; it decrypts nothing and verifies nothing. The openers (smime/open.ts,
 * openpgp/open.ts) open what is the whole message themselves and report what this finds below
 * it as partly signed, or as ciphertext left as it is (EFAIL: never decrypted into a message
 * someone else wrote around it).
 *
 * Untrusted input: any entity. The walk is iterative and bounded in depth, in parts, in findings
 * and in the bytes decoded to look for armour; past a bound it stops and says so (truncated).
 */
import { decodeBody, multipartLayout, readEntity, type Entity } from './entity.js';
import { parseParams } from './header-fields.js';
import { checkMimeLimits } from './limits.js';

export type CryptoMethod = 'smime' | 'pgp';

export type CryptoNodeKind =
  /** application/pkcs7-mime enveloped-data or authEnveloped-data (or a .p7m file that is). */
  | 'smime-encrypted'
  /** multipart/signed with an S/MIME signature. */
  | 'smime-signed'
  /** application/pkcs7-mime signed-data: the content is inside the signature. */
  | 'smime-opaque'
  /** PGP/MIME multipart/encrypted, Exchange's rewrite of it, or a binary OpenPGP message file. */
  | 'pgp-encrypted'
  /** multipart/signed with an OpenPGP signature. */
  | 'pgp-signed'
  /** An armoured OpenPGP message in a text or a file: encrypted, or only signed (the opener reads which). */
  | 'pgp-armour'
  /** A clear-signed text (-----BEGIN PGP SIGNED MESSAGE-----) in a text or a file. */
  | 'pgp-cleartext'
  /** A detached OpenPGP signature file (x.sig, x.asc) beside the file x it signs. */
  | 'pgp-signature-file';

export interface CryptoNode {
  kind: CryptoNodeKind;
  method: CryptoMethod;
  /** IMAP part number ("2", "1.3"). */
  part: string;
  /** The entity, header and body. */
  raw: Buffer;
  /** The file name it has, if any. */
  name: string;
  /** Armour found in a text/html body (its text is in markup). */
  html: boolean;
  /** Armour that is the whole text of its part, nothing written around it. */
  whole: boolean;
  /** Inside a signed structure (multipart/signed content): part of what that signature covers. */
  insideSigned: boolean;
  /** For a signature file: the file it signs. */
  target?: { part: string; raw: Buffer };
}

export interface CryptoTree {
  nodes: CryptoNode[];
  /** Parts with content (leaves, ciphertext and opaque signatures included; signature parts not), for "what is not signed". */
  leaves: string[];
  /** A bound stopped the walk: there may be more than was found. */
  truncated: boolean;
}

const MAX_DEPTH = 20;
const MAX_PARTS = 500;
const MAX_NODES = 50;
/** Decoded bytes of a text body searched for armour, and of a file (armour or packets start it). */
const TEXT_SNIFF = 1 << 20;
const FILE_SNIFF = 64 << 10;
/** Bodies searched for armour or packets, in all. */
const MAX_SNIFFED = 50;
/** A forwarded message is decoded to be walked only up to this size. */
const MAX_ENCAPSULATED = 8 << 20;

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const SMIME_SIGNATURE = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const CMS_KIND: Record<string, 'signed' | 'enveloped'> = {
  '2a864886f70d010702': 'signed',
  '2a864886f70d010703': 'enveloped',
  '2a864886f70d0109100117': 'enveloped',
};
const ARMOUR = /(?:^|\n)[ \t\u00a0\u00c2]*-----BEGIN PGP (MESSAGE|SIGNED MESSAGE|SIGNATURE)-----/g;

const lower = (s: string | undefined) => (s ?? '').trim().toLowerCase();

export function fileName(e: Entity): string {
  const disp = parseParams(e.headers.get('content-disposition')?.[0] ?? '');
  return (disp.params.get('filename')?.trim() || e.type.params.get('name')?.trim() || '').slice(0, 255);
}

/** The first bytes of a body with its transfer encoding undone (never the whole of a large one). */
function head(e: Entity, limit: number): Buffer {
  const raw = e.encoding === 'base64' ? e.body.subarray(0, Math.ceil((limit * 4) / 3) + 4096) : e.body.subarray(0, limit + 4096);
  return decodeBody({ body: raw, encoding: e.encoding }).subarray(0, limit);
}

/** The CMS content type at the start of a DER ContentInfo. */
export function cmsKind(der: Buffer): 'signed' | 'enveloped' | null {
  if (der[0] !== 0x30 || der[1] === undefined) return null;
  const at = der[1] < 0x80 || der[1] === 0x80 ? 2 : 2 + (der[1] & 0x7f);
  if (der[at] !== 0x06) return null;
  const len = der[at + 1] ?? 0;
  return CMS_KIND[der.subarray(at + 2, at + 2 + len).toString('hex')] ?? null;
}

/** The tag of the first OpenPGP packet (old or new format), or null when the bytes are not one. */
export function firstPacketTag(data: Buffer): number | null {
  const b = data[0];
  if (b === undefined || (b & 0x80) === 0) return null;
  return b & 0x40 ? b & 0x3f : (b >> 2) & 0x0f;
}

/** S/MIME: what a pkcs7-mime (or .p7m) leaf is, by smime-type, else by its content. */
function smimeKind(e: Entity): CryptoNodeKind | null {
  const name = lower(fileName(e));
  const candidate = PKCS7_MIME.has(e.type.type) || (e.type.type === 'application/octet-stream' && /\.p7m$/.test(name));
  const st = lower(e.type.params.get('smime-type'));
  const sniffed = cmsKind(head(e, 64));
  if (!candidate && !(e.type.type === 'application/octet-stream' && sniffed)) return null;
  if (st === 'enveloped-data' || st === 'authenveloped-data') return 'smime-encrypted';
  if (st === 'signed-data') return 'smime-opaque';
  if (st) return null; // certs-only, compressed-data: nothing secret, nothing signed
  return sniffed === 'enveloped' ? 'smime-encrypted' : sniffed === 'signed' ? 'smime-opaque' : candidate && /\.p7m$/.test(name) ? 'smime-encrypted' : null;
}

/** Exchange's rewrite of PGP/MIME: multipart/mixed of [empty text/plain,] application/pgp-encrypted, application/octet-stream. */
function isExchangePgp(parts: Entity[]): boolean {
  const types = parts.map((p) => p.type.type);
  const tail = types.slice(-2).join(' ') === 'application/pgp-encrypted application/octet-stream';
  return tail && (parts.length === 2 || (parts.length === 3 && types[0] === 'text/plain' && decodeBody(parts[0]!).toString('latin1').trim() === ''));
}

interface Item {
  raw: Buffer;
  part: string;
  depth: number;
  insideSigned: boolean;
  /** A message/rfc822 body: its parts are numbered under `part` (part.1 …), not beside it. */
  encapsulated: boolean;
  fallback: string;
}

const childNumber = (parent: string, i: number) => (parent ? `${parent}.${i + 1}` : String(i + 1));

/**
 * The crypto structures below `entity` (a whole message, or an entity inside one whose part
 * number is `prefix`; '' for the message body itself). The root counts too when it is a leaf (an
 * HTML body with armour) — an opener that handled the root itself passes what is left.
 */
export function cryptoTree(entity: Buffer, prefix = ''): CryptoTree {
  const tree: CryptoTree = { nodes: [], leaves: [], truncated: false };
  const stack: Item[] = [{ raw: entity, part: prefix, depth: 0, insideSigned: false, encapsulated: false, fallback: 'text/plain' }];
  const signatureFiles = new Set<string>();
  let parts = 0;
  let sniffed = 0;
  const add = (item: Item, e: Entity, node: Pick<CryptoNode, 'kind' | 'method' | 'part'> & Partial<CryptoNode>) => {
    if (tree.nodes.length >= MAX_NODES) tree.truncated = true;
    else tree.nodes.push({ raw: item.raw, name: fileName(e), html: false, whole: false, insideSigned: item.insideSigned, ...node });
  };
  while (stack.length) {
    const item = stack.pop()!;
    const e = readEntity(item.raw, item.fallback);
    const t = e.type.type;
    const boundary = e.type.params.get('boundary');
    if (t.startsWith('multipart/') && boundary) {
      // A multipart's own number is its position ('' for the message body); its parts are numbered under it.
      const self = item.part;
      if (item.depth >= MAX_DEPTH || parts >= MAX_PARTS) {
        tree.truncated = true;
        continue;
      }
      const layout = multipartLayout(e.body, boundary, MAX_PARTS - parts + 1);
      if (layout.parts.length > MAX_PARTS - parts) tree.truncated = true;
      const raws = layout.parts.slice(0, MAX_PARTS - parts);
      parts += raws.length;
      const protocol = lower(e.type.params.get('protocol'));
      if (t === 'multipart/encrypted') {
        // Crypto structure, not content: nothing inside can be read without the key.
        if (protocol === 'application/pgp-encrypted') add(item, e, { kind: 'pgp-encrypted', method: 'pgp', part: self || '1' });
        tree.leaves.push(self || '1');
        continue;
      }
      const fallback = t === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
      const children = raws.map((r) => readEntity(r, fallback));
      if (t === 'multipart/mixed' && isExchangePgp(children)) {
        add(item, e, { kind: 'pgp-encrypted', method: 'pgp', part: self || '1' });
        tree.leaves.push(self || '1');
        continue;
      }
      const signed = t === 'multipart/signed';
      if (signed) {
        const method: CryptoMethod | null = SMIME_SIGNATURE.has(protocol) ? 'smime' : protocol === 'application/pgp-signature' ? 'pgp' : null;
        if (method) add(item, e, { kind: method === 'smime' ? 'smime-signed' : 'pgp-signed', method, part: self || '1' });
      }
      const inner = item.insideSigned || signed;
      // The signature of a multipart/signed is its second part: structure, not content.
      for (let i = (signed ? Math.min(raws.length, 1) : raws.length) - 1; i >= 0; i--) {
        stack.push({ raw: raws[i]!, part: childNumber(self, i), depth: item.depth + 1, insideSigned: inner, encapsulated: false, fallback });
      }
      // Detached signature files beside the files they sign (gpg --detach-sign report.pdf: report.pdf.sig).
      const names = children.map(fileName);
      names.forEach((n, i) => {
        const target = /\.(sig|asc)$/i.test(n) ? names.findIndex((m, j) => j !== i && m !== '' && m === n.slice(0, -4)) : -1;
        if (target < 0 || (signed && i > 0)) return;
        if (sniffed++ >= MAX_SNIFFED) return void (tree.truncated = true);
        const text = head(children[i]!, FILE_SNIFF);
        if (!text.toString('latin1').includes('-----BEGIN PGP SIGNATURE-----') && firstPacketTag(text) !== 2) return;
        signatureFiles.add(childNumber(self, i));
        add({ ...item, raw: raws[i]!, insideSigned: inner }, children[i]!, { kind: 'pgp-signature-file', method: 'pgp', part: childNumber(self, i), target: { part: childNumber(self, target), raw: raws[target]! } });
      });
      continue;
    }
    // A leaf's own number: a body that is one part is "1" of its message (or of the forwarded one).
    const self = item.part === '' || item.encapsulated ? childNumber(item.part, 0) : item.part;
    if ((t === 'message/rfc822' || t === 'message/global') && item.depth < MAX_DEPTH && e.body.length <= MAX_ENCAPSULATED) {
      stack.push({ raw: decodeBody(e), part: self, depth: item.depth + 1, insideSigned: item.insideSigned, encapsulated: true, fallback: 'text/plain' });
      continue;
    }
    tree.leaves.push(self);
    const smime = smimeKind(e);
    if (smime) {
      add(item, e, { kind: smime, method: 'smime', part: self });
      continue;
    }
    const name = lower(fileName(e));
    const text = t.startsWith('text/');
    const file = !text && (t === 'application/octet-stream' || t.startsWith('application/pgp') || /\.(asc|pgp|gpg|txt)$/.test(name));
    if (!text && !file) continue;
    if (sniffed++ >= MAX_SNIFFED) {
      tree.truncated = true;
      continue;
    }
    const bytes = head(e, text ? TEXT_SNIFF : FILE_SNIFF);
    const tag = firstPacketTag(bytes);
    if (file && tag !== null && /\.(pgp|gpg)$/.test(name)) {
      // Binary OpenPGP: session keys first is ciphertext; a signature, one-pass signature, compressed or literal data a signed message.
      if (tag === 1 || tag === 3) add(item, e, { kind: 'pgp-encrypted', method: 'pgp', part: self });
      else if ([2, 4, 8, 11].includes(tag)) add(item, e, { kind: 'pgp-armour', method: 'pgp', part: self, whole: true });
      continue;
    }
    const html = t === 'text/html';
    // In HTML the armour follows a tag as often as a line break.
    const s = html ? bytes.toString('latin1').replace(/<[^>]*>/g, '\n') : bytes.toString('latin1');
    const found = new Set([...s.matchAll(ARMOUR)].map((m) => m[1]!));
    const trimmed = s.replace(/^[\s\u00a0\u00c2]+|[\s\u00a0\u00c2]+$/g, '');
    if (found.has('MESSAGE')) add(item, e, { kind: 'pgp-armour', method: 'pgp', part: self, html, whole: trimmed.startsWith('-----BEGIN PGP MESSAGE-----') && trimmed.endsWith('-----END PGP MESSAGE-----') });
    if (found.has('SIGNED MESSAGE')) add(item, e, { kind: 'pgp-cleartext', method: 'pgp', part: self, html, whole: trimmed.startsWith('-----BEGIN PGP SIGNED MESSAGE-----') && trimmed.endsWith('-----END PGP SIGNATURE-----') });
    // A bare signature block in a text body is a pasted signature: nothing it covers can be named.
  }
  tree.leaves = tree.leaves.filter((p) => !signatureFiles.has(p));
  tree.nodes.sort((a, b) => comparePart(a.part, b.part));
  tree.leaves.sort(comparePart);
  return tree;
}

/** Document order of part numbers ("2" < "2.1" < "10"). */
export function comparePart(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === undefined) return -1;
    if (y[i] === undefined) return 1;
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return 0;
}

/** Leaves outside a part (and outside everything under it): what a signature of that part does not cover. */
export function outside(leaves: readonly string[], part: string): string[] {
  return leaves.filter((l) => l !== part && !l.startsWith(`${part}.`));
}

/**
 * The methods whose crypto appears anywhere in a message (what the worker must open). A message
 * past the MIME limits throws LimitExceededError (limits.ts): it is not opened half-read.
 */
export function cryptoMethods(message: Buffer): CryptoMethod[] {
  checkMimeLimits(message);
  return [...new Set(cryptoTree(message).nodes.map((n) => n.method))];
}
