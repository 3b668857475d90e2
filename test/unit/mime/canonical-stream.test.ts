/**
 * The streamed canonical form of a multipart entity against canonicalEntity() on the whole: the
 * same bytes for 8-bit text parts beside base64 files, nested 8-bit alternatives, preambles and
 * epilogues clean or not, empty and missing parts, a missing final boundary, random trees — fed in
 * 1-byte, odd and whole chunks; null (the in-memory path) for a large 8-bit part.
 */
import { describe, expect, it } from 'vitest';
import { canonicalEntity, splitHeader, toCrlf } from '../../../src/mime/index.js';
import { canonicalMultipartChunks } from '../../../src/mime/canonical-stream.js';
import { sevenBitClean } from '../../../src/mime/entity.js';

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

async function streamedCanonical(entity: Buffer, size: number): Promise<Buffer | null> {
  const { bodyOffset } = splitHeader(entity);
  const make = await canonicalMultipartChunks(entity.subarray(0, bodyOffset), () => chunked(entity.subarray(bodyOffset), size));
  if (!make) return null;
  const out: Buffer[] = [];
  for await (const c of make()) out.push(c);
  return Buffer.concat(out);
}

async function expectSame(text: string | Buffer, label: string, sizes = [1, 7, 4093, 1 << 20]): Promise<void> {
  const entity = toCrlf(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
  // Only asked for an entity that is not canonical as a whole (canonicalScan said so).
  if (sevenBitClean(entity)) return;
  const want = canonicalEntity(entity);
  for (const size of sizes) {
    const got = await streamedCanonical(entity, size);
    expect(got, `${label} in chunks of ${size}`).not.toBeNull();
    expect(got!.toString('latin1'), `${label} in chunks of ${size}`).toBe(want.toString('latin1'));
  }
}

const B64 = Buffer.alloc(200_000, 9).toString('base64').replace(/.{76}/g, '$&\r\n');

describe('canonicalMultipartChunks', () => {
  const cases: Record<string, string> = {
    'an 8-bit text part beside a base64 file': `Content-Type: multipart/mixed; boundary="b"\nContent-Transfer-Encoding: 8bit\n\nThis is a multi-part message in MIME format.\n--b\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nGrüße aus Köln — anbei die Datei.\n\n--b\nContent-Type: application/pdf; name="a.pdf"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="a.pdf"\n\n${B64}\n--b--\n`,
    'a nested 8-bit alternative, an 8-bit epilogue': `Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nsüß\n--a\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<p>süß</p>\n--a--\n\n--o\nContent-Type: image/png; name=p.png\nContent-Transfer-Encoding: base64\n\n${B64}--o--\nepilog ü\n`,
    'a clean preamble and epilogue, an 8-bit binary part': `Content-Type: multipart/mixed; boundary=x\n\npreamble\n--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n\u00ff\u00fe\n--x\nContent-Type: text/plain\n\nplain\n--x--\nepilogue\n`,
    'an 8-bit preamble, empty parts, no final boundary': `Content-Type: multipart/mixed; boundary=x\n\npréambule\n--x\n--x\n\n--x\nContent-Type: text/plain; charset=utf-8\n\nnaïve`,
    'a message/rfc822 part with 8-bit content, an 8-bit header': `Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\nSubject: ü\n\nü\n--x\nContent-Type: text/plain; name="ü.txt"\n\nü\n--x--\n`,
    'a long line': `Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\n${'a'.repeat(2000)}\n--x--\n`,
  };
  for (const [name, text] of Object.entries(cases)) it(`equals canonicalEntity: ${name}`, () => expectSame(text, name));

  it('equals canonicalEntity on random trees', async () => {
    let seed = 99;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: T[]) => xs[rnd(xs.length)]!;
    const leaf = () => `Content-Type: ${pick(['text/plain', 'application/octet-stream', 'message/rfc822', 'text/html'])}\n${pick(['', 'Content-Transfer-Encoding: 8bit\n', 'Content-Transfer-Encoding: base64\n', 'Content-Transfer-Encoding: quoted-printable\n'])}\n${pick(['', 'ascii', 'ü', '--', ' trailing ', '.\nFrom x'])}`;
    const tree = (d: number): string => {
      if (d > 2 || rnd(3) === 0) return leaf();
      const b = pick(['p', 'q']) + d;
      return `Content-Type: multipart/${pick(['mixed', 'alternative'])}; boundary=${b}\n\n${pick(['', 'pré\n', 'pre\n'])}${Array.from({ length: rnd(4) }, () => `--${b}\n${tree(d + 1)}\n`).join('')}${pick([`--${b}--\n`, `--${b}--`, ''])}${pick(['', 'épi', 'epi'])}`;
    };
    let n = 0;
    for (let i = 0; i < 400; i++) {
      const t = tree(0);
      if (!t.startsWith('Content-Type: multipart/') || sevenBitClean(toCrlf(Buffer.from(t, 'utf8')))) continue;
      await expectSame(t, JSON.stringify(t), [1, 5, 1 << 20]);
      n++;
    }
    expect(n).toBeGreaterThan(100);
  });

  it('gives null where the in-memory path must do it: a large 8-bit part, a nested multipart too large to rebuild, a single part', async () => {
    const big8 = toCrlf(Buffer.from(`Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${'ü'.repeat(700_000)}\n--x--\n`, 'utf8'));
    expect(await streamedCanonical(big8, 65536)).toBeNull();
    const nested = toCrlf(Buffer.from(`Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\nü\n--i\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n${B64.repeat(8)}--i--\n--o--\n`, 'utf8'));
    expect(await streamedCanonical(nested, 65536)).toBeNull();
    expect(await streamedCanonical(toCrlf(Buffer.from('Content-Type: text/plain\n\nü\n', 'utf8')), 10)).toBeNull();
  });
});
