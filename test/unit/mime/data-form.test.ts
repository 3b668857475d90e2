/**
 * The DATA form of BINARYMIME messages (mime/data-form.ts, binary-scan.ts): binary parts come out
 * as base64 that Python's email package (the independent reader) decodes to exactly the original
 * bytes; everything else byte for byte; the result fits DATA. Streamed in 1-byte, odd and large
 * chunks, the layout and the output are the same as from the whole message. Signed binary content
 * is prohibited, an unreadable structure unconvertible — never truncated.
 */
import { describe, expect, it } from 'vitest';
import { dataFormBuffer, dataFormChunks, dataFormOf, scanBinary, scanBinaryChunks, type DataForm } from '../../../src/mime/index.js';
import { binaryMultipart, binaryParts, binarySingle, dataProblem, hostileBytes, signedBinary } from '../../helpers/binary-mail.js';
import { parseMail, type ParsedPart } from '../../helpers/mail-parse.js';

function* chunked(buf: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

async function* chunkedAsync(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  yield* chunked(buf, size);
}

function convertible(f: DataForm): Extract<DataForm, { kind: 'convertible' }> {
  if (f.kind !== 'convertible') throw new Error(`not convertible: ${f.reason}`);
  return f;
}

async function converted(message: Buffer): Promise<Buffer> {
  const form = convertible(dataFormOf(scanBinary(message)));
  const out = await dataFormBuffer(form, message);
  expect(out.length, 'the announced length').toBe(form.length);
  return out;
}

/** The same output whatever the chunk sizes of the scan and of the reads. */
async function streamedLikeWhole(message: Buffer, sizes: number[]): Promise<void> {
  const whole = await converted(message);
  for (const size of sizes) {
    const form = convertible(dataFormOf(await scanBinaryChunks(chunkedAsync(message, size))));
    const parts: Buffer[] = [];
    for (const c of dataFormChunks(form, message.length, (o, l) => chunked(message.subarray(o, o + l), size))) parts.push(c);
    expect(Buffer.concat(parts).equals(whole), `chunks of ${size}`).toBe(true);
  }
}

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

describe('the DATA form of a BINARYMIME message', () => {
  it('re-encodes binary parts to base64 that Python decodes to the original bytes; the text and the structure stay', async () => {
    const p = binaryParts(2 * 1024 * 1024);
    const message = binaryMultipart(p);
    const out = await converted(message);
    expect(dataProblem(out)).toBeNull();
    const parsed = await parseMail(out);
    expect(parsed.defects).toEqual([]);
    const got = leaves(parsed);
    expect(got.map((l) => l.cte)).toEqual(['8bit', 'base64', 'base64', 'base64']);
    // Python gives text with its own line ends.
    expect(got[0]!.payload!.toString('utf8')).toBe(p.text.toString('utf8').replace(/\r\n/g, '\n'));
    expect(got[1]!.payload!.equals(p.hostile)).toBe(true);
    expect(got[2]!.payload!.equals(p.large)).toBe(true);
    expect(got[3]!.payload!.equals(p.line)).toBe(true);
    // Header fields other than Content-Transfer-Encoding are the original bytes.
    const text = out.toString('latin1');
    expect(text.startsWith(message.subarray(0, message.indexOf('preamble')).toString('latin1'))).toBe(true);
    expect(text).toContain('Content-Type: application/octet-stream; name="large.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n');
    expect(text).toContain('\r\n--bin-boundary-42--\r\n');
  });

  it('gives the same bytes streamed in any chunk sizes as from the whole message', async () => {
    const p = binaryParts(300_000);
    await streamedLikeWhole(binaryMultipart(p), [1, 3, 7, 4093, 1 << 20]);
    await streamedLikeWhole(binarySingle(hostileBytes()), [1, 2, 5, 4096]);
    const signedClean = Buffer.from(signedBinary(Buffer.from('clean 7-bit text')).toString('latin1').replace('Content-Transfer-Encoding: binary\r\n', ''), 'latin1');
    await streamedLikeWhole(signedClean, [1, 4, 64]);
  });

  it('adds MIME-Version and the encoding to a non-MIME message whose body is binary', async () => {
    const body = hostileBytes();
    const out = await converted(binarySingle(body, { mime: false }));
    expect(dataProblem(out)).toBeNull();
    const text = out.toString('latin1');
    expect(text).toMatch(/^MIME-Version: 1\.0\r\n/);
    expect(text).toContain('\r\nContent-Transfer-Encoding: base64\r\n\r\n');
    const parsed = await parseMail(out);
    expect(parsed.payload!.equals(body)).toBe(true);
  });

  it('leaves a message that fits DATA as it is, and relabels "binary" content that fits as 7bit or 8bit', async () => {
    const plain = Buffer.from('From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n');
    const form = convertible(dataFormOf(scanBinary(plain)));
    expect(form.edits).toEqual([]);
    expect(await dataFormBuffer(form, plain)).toBe(plain);
    const labelled = binarySingle(Buffer.from('Grüße\r\n', 'utf8'));
    const out = await converted(labelled);
    expect(out.toString('latin1')).toContain('Content-Transfer-Encoding: 8bit\r\n\r\n');
    expect(out.subarray(out.length - 'Grüße\r\n'.length * 2).toString('utf8')).toContain('Grüße\r\n');
    expect(dataFormOf(scanBinary(labelled)).kind === 'convertible' && convertible(dataFormOf(scanBinary(labelled))).eightBit).toBe(true);
  });

  it('re-encodes a base64 part written with bare LF line ends to clean base64 of the same bytes', async () => {
    const data = hostileBytes();
    const b64 = data.toString('base64').replace(/.{60}/g, '$&\n');
    const message = Buffer.from(`From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\n`, 'latin1');
    const out = await converted(message);
    expect(dataProblem(out)).toBeNull();
    expect((await parseMail(out)).payload!.equals(data)).toBe(true);
  });

  it('converts the binary parts of an attached message/rfc822 and relabels it', async () => {
    const data = hostileBytes();
    const inner = binarySingle(data, { messageId: 'inner@example.com' });
    const message = Buffer.concat([
      Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n', 'latin1'),
      inner,
      Buffer.from('\r\n--x--\r\n'),
    ]);
    const out = await converted(message);
    expect(dataProblem(out)).toBeNull();
    // Nothing 8-bit is left once the binary part is base64: 7bit.
    expect(out.toString('latin1')).toContain('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n');
    const got = leaves(await parseMail(out));
    expect(got.at(-1)!.payload!.equals(data)).toBe(true);
  });

  it('never touches a signed part: binary content under multipart/signed is prohibited, clean signed content passes byte for byte', async () => {
    const bad = dataFormOf(scanBinary(signedBinary(hostileBytes())));
    expect(bad.kind).toBe('prohibited');
    expect(bad.kind !== 'convertible' && bad.reason).toMatch(/multipart\/signed/);
    const clean = signedBinary(Buffer.from('only 7-bit lines\r\n'));
    // Labelled binary but clean: relabelling would change signed bytes, so that is prohibited too.
    expect(dataFormOf(scanBinary(clean)).kind).toBe('prohibited');
    const unlabelled = Buffer.from(clean.toString('latin1').replace('Content-Transfer-Encoding: binary\r\n', ''), 'latin1');
    expect(convertible(dataFormOf(scanBinary(unlabelled))).edits).toEqual([]);
  });

  it('converts a binary part beside a signed part (outside the signature)', async () => {
    const data = hostileBytes();
    const signed = signedBinary(Buffer.from('x')).toString('latin1').replace('Content-Transfer-Encoding: binary\r\n', '');
    const inner = signed.slice(signed.indexOf('MIME-Version'));
    const message = Buffer.concat([
      Buffer.from(`From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n${inner.slice(inner.indexOf('Content-Type'))}\r\n--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n`, 'latin1'),
      data,
      Buffer.from('\r\n--outer--\r\n'),
    ]);
    const out = await converted(message);
    expect(dataProblem(out)).toBeNull();
    expect(leaves(await parseMail(out)).at(-1)!.payload!.equals(data)).toBe(true);
    // The signed entity's bytes are all still there.
    expect(out.includes(Buffer.from('--signed-inner\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n', 'latin1'))).toBe(true);
  });

  it('calls a structure it cannot read exactly unconvertible, never guesses or truncates', () => {
    const bareLfHeader = Buffer.from('From: a@example.com\nContent-Transfer-Encoding: binary\n\nbody\r\n');
    expect(dataFormOf(scanBinary(bareLfHeader))).toMatchObject({ kind: 'unconvertible', reason: expect.stringMatching(/bare LF/) });
    const qp = Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc\0def\r\n');
    expect(dataFormOf(scanBinary(qp))).toMatchObject({ kind: 'unconvertible', reason: expect.stringMatching(/quoted-printable part .* NUL/) });
    const preamble = Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nbinary\0preamble\r\n--b\r\n\r\nx\r\n--b--\r\n');
    expect(dataFormOf(scanBinary(preamble))).toMatchObject({ kind: 'unconvertible', reason: expect.stringMatching(/preamble .* NUL/) });
    const headerRuns = Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n--b\r\n\r\nx\r\n--b--\r\n');
    expect(dataFormOf(scanBinary(headerRuns))).toMatchObject({ kind: 'unconvertible', reason: expect.stringMatching(/runs into a delimiter/) });
  });

  it('takes a delimiter only after CRLF: "\\n--b" inside binary content is data', async () => {
    const data = Buffer.from('before\n--b\r\nnot a part\n--b--\nafter\0', 'latin1');
    const message = Buffer.concat([Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n'), data, Buffer.from('\r\n--b--\r\n')]);
    const out = await converted(message);
    const got = leaves(await parseMail(out));
    expect(got).toHaveLength(1);
    expect(got[0]!.payload!.equals(data)).toBe(true);
  });
});
