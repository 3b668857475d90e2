import { describe, expect, it } from 'vitest';
import { canonicalEntity, decodeBody, encodeQuotedPrintable, joinMessage, multipartLayout, multipartSigned, readEntity, splitMessage, toCrlf } from '../../../src/mime/entity.js';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('body entity', () => {
  it('splits the outer header from the Content-* fields and joins them again', () => {
    const m = b('Received: x\r\nFrom: a@x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset=utf-8\r\nSubject: s\r\n\r\nbody\r\n');
    const { outer, entity } = splitMessage(m);
    expect(outer.toString()).toBe('Received: x\r\nFrom: a@x\r\nSubject: s\r\n');
    expect(entity.toString()).toBe('Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nbody\r\n');
    expect(joinMessage(outer, entity).toString()).toBe('Received: x\r\nFrom: a@x\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nbody\r\n');
  });

  it('states the RFC 2045 default type of a message without Content-Type', () => {
    expect(splitMessage(b('From: a@x\r\n\r\nhi\r\n')).entity.toString()).toBe('Content-Type: text/plain; charset=us-ascii\r\n\r\nhi\r\n');
  });

  it('turns bare LF and lone CR into CRLF, and leaves CRLF input as the same buffer', () => {
    expect(toCrlf(b('a\nb\rc\r\nd')).toString()).toBe('a\r\nb\r\nc\r\nd');
    const crlf = b('a\r\nb\r\n');
    expect(toCrlf(crlf)).toBe(crlf);
  });
});

describe('canonical form for signing', () => {
  it('keeps a 7-bit entity byte for byte', () => {
    const e = b('Content-Type: text/plain\r\n\r\nplain ascii\r\n');
    expect(canonicalEntity(e).equals(e)).toBe(true);
  });

  it('re-encodes 8-bit text as quoted-printable and binary parts as base64, inside multiparts too', () => {
    const e = b(
      'Content-Type: multipart/mixed; boundary="zz"\r\nContent-Transfer-Encoding: 8bit\r\n\r\npre\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\nFrom here\r\n--zz\r\nContent-Type: application/octet-stream\r\n\r\n\u00ff\u00fe\r\n--zz--\r\n',
    );
    const c = canonicalEntity(e).toString('latin1');
    expect(/[\x80-\xff]/.test(c)).toBe(false);
    expect(c).not.toMatch(/^Content-Transfer-Encoding: 8bit/m);
    expect(c).toContain('Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n=46rom here');
    const layout = multipartLayout(readEntity(Buffer.from(c, 'latin1')).body, 'zz');
    expect(layout.parts).toHaveLength(2);
    const bin = readEntity(layout.parts[1]!);
    expect(bin.encoding).toBe('base64');
    expect(decodeBody(bin).equals(Buffer.from('\u00ff\u00fe', 'utf8'))).toBe(true);
    const txt = readEntity(layout.parts[0]!);
    expect(decodeBody(txt).toString('utf8')).toBe('Grüße\r\nFrom here');
  });

  it('encodes quoted-printable lines of at most 76 characters with trailing white space protected', () => {
    const qp = encodeQuotedPrintable(Buffer.from(`${'x'.repeat(200)} \r\nend\t`, 'latin1'));
    expect(qp.split('\r\n').every((l) => l.length <= 76)).toBe(true);
    expect(qp).toMatch(/=20\r\nend=09$/);
  });

  it('builds multipart/signed whose first part is exactly the signed entity', () => {
    const e = b('Content-Type: text/plain\r\n\r\nsigned text\r\n');
    const signed = multipartSigned(e, { der: Buffer.from([1, 2, 3]), protocol: 'application/pkcs7-signature', micalg: 'sha-256', filename: 'smime.p7s', description: 'S/MIME Cryptographic Signature' });
    const r = readEntity(signed);
    expect(r.type.type).toBe('multipart/signed');
    const { parts } = multipartLayout(r.body, r.type.params.get('boundary')!);
    expect(parts[0]!.equals(e)).toBe(true);
    expect(decodeBody(readEntity(parts[1]!)).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });
});
