/**
 * The streamed facts reader against the whole-message one: for every mail of the shared corpora
 * and for generated ones (nested multiparts, boundaries cut at every chunk edge, preambles and
 * epilogues, missing final boundaries, CRLF and LF, armour in a late part, Exchange's PGP/MIME,
 * signatures around the message, random trees with junk), messageFactsStreamed fed in 1-byte,
 * odd-sized and whole chunks deep-equals messageFacts — or says it is unsure, only where one pass
 * cannot know (the part limit, a header past its cap, a delimiter line cut off).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageFacts, splitHeader } from '../../../src/mime/index.js';
import { messageFactsStreamed } from '../../../src/mime/facts-stream.js';
import { HEADER_CAP } from '../../../src/mime/facts-reader.js';

const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');

async function* chunked(buf: Buffer, size: number | number[]): AsyncGenerator<Buffer> {
  const sizes = Array.isArray(size) ? size : [size];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield buf.subarray(at, at + n);
    at += n;
  }
}

/** The streamed facts of `buf` in chunks of `size`, with the bytes before the body checked against splitHeader. */
async function streamed(buf: Buffer, size: number | number[], known = false) {
  const r = await messageFactsStreamed(chunked(buf, size), known ? buf.length : undefined);
  if (r.kind === 'facts') {
    expect(r.head.equals(buf.subarray(0, splitHeader(buf).bodyOffset))).toBe(true);
  }
  return r;
}

async function expectSame(buf: Buffer, label: string, sizes: (number | number[])[] = [buf.length || 1, 1, 7, [3, 11, 2, 64], 4093]): Promise<void> {
  const want = messageFacts(buf);
  for (const size of sizes) {
    for (const known of [false, true]) {
      const r = await streamed(buf, size, known);
      // A header block past the cap (a file that is no mail: armoured data without an empty line) is read whole.
      if (r.kind === 'unsure' && splitHeader(buf).header.length > HEADER_CAP) {
        expect(r.reason).toBe(`a part header of more than ${HEADER_CAP} bytes`);
        continue;
      }
      expect(r.kind, `${label} in chunks of ${String(size)}: ${r.kind === 'unsure' ? r.reason : ''}`).toBe('facts');
      if (r.kind === 'facts') expect(r.facts, `${label} in chunks of ${String(size)}`).toEqual(want);
    }
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const lf = (s: string) => Buffer.from(s.replace(/\r\n/g, '\n'), 'latin1');

describe('messageFactsStreamed', () => {
  it('equals messageFacts on every file of the shared corpora, in any chunking', async () => {
    let n = 0;
    for (const path of await files(CORPORA)) {
      if ((await stat(path)).size > 2_000_000) continue;
      const buf = await readFile(path);
      await expectSame(buf, path, buf.length <= 20_000 ? [buf.length || 1, 1, 5, 4093] : [buf.length, 13, 4093, 65536]);
      n++;
    }
    expect(n).toBeGreaterThan(500);
  }, 300_000);

  const B64 = Buffer.alloc(3000, 7).toString('base64').replace(/.{76}/g, '$&\r\n');
  const generated: Record<string, string> = {
    'nested multiparts with preamble and epilogue': `From: a@example.org\r\nSubject: nested\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nhello\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--inner--\r\ninner epilogue\r\n--outer\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${B64}\r\n--outer--\r\nepilogue\r\n`,
    'missing final boundary': `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\nContent-Disposition: attachment; filename=cut.bin\r\n\r\nno end`,
    'missing inner final boundary': `Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain; name=x.txt\r\n\r\nx\r\n--o\r\nContent-Type: image/png; name=y.png\r\n\r\ny\r\n--o--\r\n`,
    'armour in a late part': `Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nintro\r\n--m\r\nContent-Type: image/gif; name=p.gif\r\n\r\nGIF\r\n--m\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n-----BEGIN PGP MESSAGE=\r\n-----\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n--m--\r\n`,
    'Exchange-mangled PGP/MIME': `Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n \r\n\r\n--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--x--\r\n`,
    'almost Exchange-mangled (text not blank)': `Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\n--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\ndata\r\n--x--\r\n`,
    'signed around encrypted S/MIME': `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s\r\n\r\n--s\r\nContent-Type: application/pkcs7-mime; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggFA\r\n--s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\r\nsig\r\n--s--\r\n`,
    'PGP/MIME encrypted': `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=e\r\n\r\n--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--e\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--e--\r\n`,
    'empty parts, delimiters back to back, white space after them': `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b \t\r\n\r\n--b\r\nContent-Type: text/plain; name=t.txt\r\n\r\n--b-not\r\n--bb\r\n--b--\r\n`,
    'a multipart whose header ends at its delimiter': `Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n--o\r\nContent-Type: multipart/related; boundary=r\r\nContent-Disposition: attachment; filename=odd\r\n\r\n--o--\r\n`,
    'boundaries that are prefixes of each other': `Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\nContent-Type: text/plain; name=1.txt\r\n\r\n1\r\n--ab\r\nContent-Type: text/plain; name=2.txt\r\n\r\n2\r\n--ab--\r\n`,
    'digest of messages': `Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n--d\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--d--\r\n`,
    'no header at all': `\r\n--x\r\nbody`,
    'header only': `Subject: only a header\r\nContent-Type: multipart/mixed; boundary=b`,
    'parts without headers or bodies': `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b\r\nContent-Type: text/plain\r\n--b\r\n\r\n\r\n--b--`,
    'lone CRs and doubled line ends': `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=a\r\r\n\r\nx\r\r\n--b\r\nContent-Type: text/plain\r\n\r\n\r-----BEGIN PGP MESSAGE-----\r\n\r\n--b--\r\n`,
  };
  for (const [name, text] of Object.entries(generated)) {
    it(`equals messageFacts: ${name} (CRLF and LF)`, async () => {
      await expectSame(crlf(text), `${name}, CRLF`);
      await expectSame(lf(text), `${name}, LF`);
      await expectSame(Buffer.from(text, 'latin1'), `${name}, as written`);
    });
  }

  it('equals messageFacts on random trees with junk, in random chunkings', async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: T[]) => xs[rnd(xs.length)]!;
    const eol = () => pick(['\r\n', '\n', '\r\n', '\r\n', '\r', ' \r\n']);
    const leaf = (): string => {
      const type = pick(['text/plain', 'text/html', 'application/octet-stream', 'application/pkcs7-mime', 'message/rfc822', 'application/pgp-encrypted', 'image/png']);
      const disp = pick(['', `Content-Disposition: attachment; filename="f${rnd(9)}"${eol()}`, `Content-Disposition: inline${eol()}`]);
      const body = pick(['', 'hello', '-----BEGIN PGP MESSAGE-----', '-----BEGIN PGP SIGNED MESSAGE-----', ' ', '--', 'MIAGCSqGSIb3DQEHA6CA', '--b1', '--b2--']);
      return `Content-Type: ${type}${eol()}${disp}${pick([eol(), ''])}${body}`;
    };
    const tree = (depth: number, names: string[]): string => {
      if (depth > 3 || rnd(3) === 0) return leaf();
      const b = pick(['b1', 'b2', 'b1x', 'b']);
      const type = pick(['multipart/mixed', 'multipart/signed; protocol="application/pgp-signature"', 'multipart/alternative', 'multipart/encrypted; protocol="application/pgp-encrypted"', 'multipart/digest']);
      const kids = Array.from({ length: rnd(4) }, () => tree(depth + 1, [...names, b]));
      const close = pick([`--${b}--${eol()}`, `--${b}--`, '', `--${b}`, `--${b}${eol()}`, `--${names[0] ?? b}${eol()}`]);
      return `Content-Type: ${type}; boundary=${b}${eol()}${eol()}${pick(['', 'preamble' + eol()])}${kids.map((k) => `--${b}${pick(['', ' ', '\t'])}${eol()}${k}${eol()}`).join('')}${close}${pick(['', 'epilogue'])}`;
    };
    let unsure = 0;
    for (let i = 0; i < 400; i++) {
      const buf = Buffer.from(`Subject: random ${i}${eol()}${tree(0, [])}`, 'latin1');
      const want = messageFacts(buf);
      for (const size of [buf.length, 1, [rnd(7) + 1, rnd(30) + 1]]) {
        const r = await streamed(buf, size);
        if (r.kind === 'unsure') {
          // Only the cut-off delimiter line can make a small message unsure.
          expect(r.reason).toBe('a delimiter line without its line end');
          unsure++;
          continue;
        }
        expect(r.facts, JSON.stringify(buf.toString('latin1'))).toEqual(want);
      }
    }
    expect(unsure).toBeLessThan(400);
  }, 120_000);

  it('says unsure where one pass cannot know: the part limit, a huge part header, a cut-off delimiter line', async () => {
    const many = crlf(`Content-Type: multipart/mixed; boundary=b\n\n${'--b\nContent-Type: text/plain\n\nx\n'.repeat(1000)}--b--\n`);
    expect(await messageFactsStreamed(chunked(many, 4096))).toEqual({ kind: 'unsure', reason: '1000 MIME parts or more' });
    const bigHeader = crlf(`Content-Type: multipart/mixed; boundary=b\n\n--b\nX-Long: ${'a'.repeat(300_000)}\n\nx\n--b--\n`);
    expect((await messageFactsStreamed(chunked(bigHeader, 4096))).kind).toBe('unsure');
    const cut = crlf(`Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: text/plain\n\nx\n--i\n--o--\n`);
    expect(await messageFactsStreamed(chunked(cut, 5))).toEqual({ kind: 'unsure', reason: 'a delimiter line without its line end' });
    // 999 parts: still exact.
    const most = crlf(`Content-Type: multipart/mixed; boundary=b\n\n${'--b\nContent-Type: text/plain; name=a\n\nx\n'.repeat(999)}--b--\n`);
    await expectSame(most, '999 parts', [most.length, 1001]);
  });

  it('equals messageFacts on 10,000 nested multiparts (split down to the depth limit, opaque below) and on multiparts cut off after their first delimiter', async () => {
    const deep = crlf(`${Array.from({ length: 10_000 }, (_, i) => `Content-Type: multipart/mixed; boundary=d${i}\n\n--d${i}\n`).join('')}Content-Type: text/plain\n\n-----BEGIN PGP MESSAGE-----\n`);
    await expectSame(deep, '10,000 levels', [deep.length, 4093]);
    const named = crlf(`Content-Type: multipart/mixed; boundary=o\n\n${Array.from({ length: 60 }, (_, i) => `--o\nContent-Type: multipart/mixed; boundary=n${i}\nContent-Disposition: attachment; filename=level${i}\n\n--n${i}\n`).join('')}--o--\n`);
    // Each inner multipart's only delimiter line is cut off by the outer one: no parts, named opaque parts as messageFacts sees them.
    await expectSame(named, 'named multiparts in a row', [named.length, 1, 97]);
  });

  it('follows a 20 MB attachment in 64 KB chunks to the text part after it, and stops early on a single part', async () => {
    const b64 = Buffer.alloc(15_000_000, 1).toString('base64').replace(/.{76}/g, '$&\r\n');
    const msg = crlf(`From: a@example.org\nContent-Type: multipart/mixed; boundary="=_b"\n\n--=_b\nContent-Type: text/plain\n\nsee attached\n--=_b\nContent-Type: application/zip; name="big.zip"\nContent-Transfer-Encoding: base64\n\n`);
    const tail = crlf(`\n--=_b\nContent-Type: text/plain\n\n-----BEGIN PGP SIGNED MESSAGE-----\n--=_b--\n`);
    const whole = Buffer.concat([msg, Buffer.from(b64, 'latin1'), tail]);
    await expectSame(whole, '20 MB mixed', [65536]);
    // A single part: reading stops once the header and the sniffed prefix are in.
    const single = Buffer.concat([crlf('Subject: one part\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n'), Buffer.from(b64, 'latin1')]);
    let read = 0;
    const counting = async function* () {
      for await (const c of chunked(single, 65536)) {
        read += c.length;
        yield c;
      }
    };
    const r = await messageFactsStreamed(counting(), single.length);
    expect(r.kind === 'facts' && r.facts).toEqual(messageFacts(single));
    expect(read).toBeLessThan(3 * 65536);
  }, 120_000);
});
