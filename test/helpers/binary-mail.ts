/**
 * BINARYMIME messages (RFC 3030) for the tests: content no DATA transaction could carry — all 256
 * byte values, bare CR and LF, NUL, a line of 100 000 octets, a large random binary part — and a
 * check that a message does fit DATA (CRLF lines of at most 998 octets, no NUL).
 */
import { randomBytes } from 'node:crypto';

const CRLF = '\r\n';

/** Every byte value, then bare CR, bare LF, NUL runs and "\r\n.\r\n" (the end of DATA, smuggled). */
export function hostileBytes(): Buffer {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  return Buffer.concat([all, Buffer.from('a\rb\nc\r\r\n\n\0\0\0\r\n.\r\n.\nQUIT\r\n', 'latin1'), all.reverse()]);
}

/** One line of `n` octets (no line break at all). */
export const longLine = (n: number) => Buffer.alloc(n, 0x41);

export interface BinaryParts {
  hostile: Buffer;
  large: Buffer;
  line: Buffer;
  text: Buffer;
}

export function binaryParts(largeBytes = 2 * 1024 * 1024): BinaryParts {
  return { hostile: hostileBytes(), large: randomBytes(largeBytes), line: longLine(100_000), text: Buffer.from('Grüße, the report is attached.\r\n', 'utf8') };
}

/** A multipart/mixed message with a UTF-8 text and three binary parts (the leaves in that order). */
export function binaryMultipart(p: BinaryParts, opts: { from?: string; to?: string; messageId?: string } = {}): Buffer {
  const b = 'bin-boundary-42';
  const head =
    `From: ${opts.from ?? 'alice@example.com'}${CRLF}To: ${opts.to ?? 'bob@partner.example'}${CRLF}Subject: binary report${CRLF}` +
    `Message-ID: <${opts.messageId ?? 'bin1@example.com'}>${CRLF}MIME-Version: 1.0${CRLF}Content-Type: multipart/mixed; boundary="${b}"${CRLF}${CRLF}`;
  const part = (headers: string, body: Buffer) => [Buffer.from(`--${b}${CRLF}${headers}${CRLF}${CRLF}`, 'latin1'), body, Buffer.from(CRLF)];
  return Buffer.concat([
    Buffer.from(head + `preamble${CRLF}`, 'latin1'),
    ...part('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit', p.text),
    ...part('Content-Type: application/octet-stream; name="hostile.bin"\r\nContent-Transfer-Encoding: binary', p.hostile),
    ...part('Content-Type: application/octet-stream; name="large.bin"\r\nContent-Transfer-Encoding: binary', p.large),
    ...part('Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 8bit', p.line),
    Buffer.from(`--${b}--${CRLF}`, 'latin1'),
  ]);
}

/** A single-part message whose whole body is `body`, labelled binary (or unlabelled, and without MIME-Version). */
export function binarySingle(body: Buffer, opts: { mime?: boolean; messageId?: string } = {}): Buffer {
  const mime = opts.mime ?? true;
  const head =
    `From: alice@example.com${CRLF}To: bob@partner.example${CRLF}Subject: one binary body${CRLF}Message-ID: <${opts.messageId ?? 'bin2@example.com'}>${CRLF}` +
    (mime ? `MIME-Version: 1.0${CRLF}Content-Type: application/octet-stream${CRLF}Content-Transfer-Encoding: binary${CRLF}` : '') +
    CRLF;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** A multipart/signed (as a client made it) whose signed content holds a binary part. */
export function signedBinary(body: Buffer): Buffer {
  const o = 'signed-outer';
  const i = 'signed-inner';
  return Buffer.concat([
    Buffer.from(
      `From: alice@example.com${CRLF}To: bob@partner.example${CRLF}Subject: signed binary${CRLF}Message-ID: <signed-bin@example.com>${CRLF}MIME-Version: 1.0${CRLF}` +
        `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${o}"${CRLF}${CRLF}` +
        `--${o}${CRLF}Content-Type: multipart/mixed; boundary="${i}"${CRLF}${CRLF}--${i}${CRLF}Content-Type: text/plain${CRLF}${CRLF}see attached${CRLF}` +
        `--${i}${CRLF}Content-Type: application/octet-stream${CRLF}Content-Transfer-Encoding: binary${CRLF}${CRLF}`,
      'latin1',
    ),
    body,
    Buffer.from(`${CRLF}--${i}--${CRLF}${CRLF}--${o}${CRLF}Content-Type: application/pkcs7-signature; name=smime.p7s${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}MIIBogYJKoZIhvcNAQcCoIIBkzCCAY8CAQExDTALBglghkgBZQMEAgEwCwYJKoZIhvcNAQcB${CRLF}--${o}--${CRLF}`, 'latin1'),
  ]);
}

/** Why `message` would not survive DATA (a NUL, a bare CR or LF, a line over 998 octets), or null. */
export function dataProblem(message: Buffer): string | null {
  if (message.includes(0)) return 'NUL';
  let line = 0;
  for (let i = 0; i < message.length; i++) {
    const c = message[i]!;
    if (c === 0x0d) {
      if (message[i + 1] !== 0x0a) return `bare CR at ${i}`;
      continue;
    }
    if (c === 0x0a) {
      if (message[i - 1] !== 0x0d) return `bare LF at ${i}`;
      line = 0;
      continue;
    }
    if (++line > 998) return `a line over 998 octets at ${i}`;
  }
  return null;
}
