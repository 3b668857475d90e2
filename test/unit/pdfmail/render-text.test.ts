/**
 * The pieces under the mail PDF that decide what a reader sees: text made drawable (controls and
 * bidi overrides out), wrapping, format=flowed, file names made safe and distinct, sizes.
 */
import { describe, expect, it } from 'vitest';
import { distinctNames, emlName, safeName } from '../../../src/pdfmail/file-names.js';
import { htmlToReadable } from '../../../src/pdfmail/html-text.js';
import { decodeText } from '../../../src/pdfmail/mail-content.js';
import { readableSize } from '../../../src/pdfmail/mail-pages.js';
import { drawable, oneLine, textLines, unflow, wrapLine } from '../../../src/pdfmail/text.js';

/** Every character one unit wide: wrapping becomes counting. */
const chars = (s: string) => [...s].length;

describe('text made drawable', () => {
  it('drops bidi controls and the BOM, replaces other controls and lone surrogates, keeps line ends and tabs', () => {
    expect(drawable('a\u202Eb\u2066c\u200Fd\uFEFFe')).toBe('abcde');
    expect(drawable('bell\x07 esc\x1b del\x7f c1\x85 lone\uD800!')).toBe('bell\uFFFD esc\uFFFD del\uFFFD c1\uFFFD lone\uFFFD!');
    expect(drawable('tab\there\r\nnext\fpage')).toBe('tab\there\r\nnext\npage');
    expect(drawable('😀 ok')).toBe('😀 ok');
    expect(oneLine('Subject\r\n continued\tand\ttabbed')).toBe('Subject  continued and tabbed');
  });

  it('expands tabs to stops every eight characters, per line', () => {
    expect(textLines('a\tb\r\nabcdefgh\tc\n\td')).toEqual(['a       b', 'abcdefgh        c', '        d']);
  });

  it('wraps at spaces, breaks a word longer than the line, and keeps indentation', () => {
    expect(wrapLine('the quick brown fox jumps', 10, chars)).toEqual(['the quick', 'brown fox', 'jumps']);
    expect(wrapLine('abcdefghijklmnopqrstuvwxy', 10, chars)).toEqual(['abcdefghij', 'klmnopqrst', 'uvwxy']);
    // A word wider than the line starts where the line has room, so no line is left half empty.
    expect(wrapLine('see https://example.com/a/very/long/path now', 12, chars)).toEqual(['see https://', 'example.com/', 'a/very/long/', 'path now']);
    expect(wrapLine('    indented text', 30, chars)).toEqual(['    indented text']);
    expect(wrapLine('', 10, chars)).toEqual(['']);
    expect(wrapLine('中文字符串没有空格也能换行', 5, chars)).toEqual(['中文字符串', '没有空格也', '能换行']);
  });

  it('joins format=flowed soft breaks (RFC 3676), undoes space-stuffing, honours DelSp and quote depth', () => {
    expect(unflow('one \r\ntwo\r\n three', false)).toBe('one two\nthree');
    expect(unflow('Zusam- \r\nmen', true)).toBe('Zusam-men');
    expect(unflow('> quoted \r\n> text\r\n>> deeper\r\nplain', false)).toBe('> quoted text\n>> deeper\nplain');
    expect(unflow('-- \r\nsignature', false)).toBe('-- \nsignature');
  });

  it('decodes charsets, an unknown one as Latin-1, none as UTF-8 when the bytes are', () => {
    expect(decodeText(Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]), 'KOI8-R')).toBe('Привет');
    expect(decodeText(Buffer.from([0x93, 0x65, 0x94]), 'windows-1252')).toBe('“e”');
    expect(decodeText(Buffer.from([0x84, 0x96, 0x80, 0x81]), 'ISO-8859-1')).toBe('„–€\x81');
    expect(decodeText(Buffer.from('caf\xe9', 'latin1'), 'x-no-such-charset')).toBe('café');
    expect(decodeText(Buffer.from('café'), undefined)).toBe('café');
    expect(decodeText(Buffer.from('caf\xe9', 'latin1'), 'us-ascii')).toBe('café');
    expect(decodeText(Buffer.from([0x82, 0xa0]), 'shift_jis')).toBe('あ');
  });

  it('turns HTML into text with numbered links, and survives markup nested 100,000 deep', () => {
    const r = htmlToReadable('<p>Read <a href="https://a.example/x">this</a>, <a href="https://a.example/x">again</a> and <a href="ftp://f.example/">that</a>.</p><img src="x.png" alt="Logo">');
    expect(r.text).toContain('Read this [1], again [1] and that [2].');
    expect(r.text).toContain('[Logo]');
    expect(r.links).toEqual(['https://a.example/x', 'ftp://f.example/']);
    const deep = htmlToReadable(`${'<div>'.repeat(100_000)}deep${'</div>'.repeat(10)}`);
    expect(typeof deep.text).toBe('string');
  });
});

describe('file names', () => {
  it('takes out path separators, leading dots, control characters and bidi overrides', () => {
    expect(safeName('../../etc/passwd')).toBe('_.._etc_passwd');
    expect(safeName('..\\..\\boot.ini')).toBe('_.._boot.ini');
    expect(safeName('invoice\u202Efdp.exe')).toBe('invoice_fdp.exe');
    expect(safeName('a\x00b\x1fc\r\nd.txt')).toBe('a_b_c__d.txt');
    expect(safeName('report.pdf. . ')).toBe('report.pdf');
    expect(safeName('CON.txt')).toBe('_CON.txt');
    expect(safeName('..')).toBe('');
    expect(safeName('  ')).toBe('');
    expect(safeName('Übersicht – Q3.xlsx')).toBe('Übersicht – Q3.xlsx');
  });

  it('shortens a long name and keeps its extension', () => {
    const name = safeName(`${'x'.repeat(300)}.docx`);
    expect([...name].length).toBe(120);
    expect(name.endsWith('.docx')).toBe(true);
    expect(safeName(`${'😀'.repeat(200)}.txt`)).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('names empty ones attachment-N.bin and numbers repeats, case-insensitively', () => {
    expect(distinctNames(['a.pdf', '', 'A.pdf', 'a.pdf', '../', 'notes'])).toEqual(['a.pdf', 'attachment-2.bin', 'A (2).pdf', 'a (3).pdf', 'attachment-5.bin', 'notes']);
  });

  it('names a forwarded message by its file name, else its subject, with .eml', () => {
    expect(emlName('fwd.eml', 'x', 1)).toBe('fwd.eml');
    expect(emlName('', 'Re: Angebot/Preise', 1)).toBe('Re_ Angebot_Preise.eml');
    expect(emlName('', '', 3)).toBe('forwarded-message-3.eml');
  });

  it('gives sizes as a file manager does', () => {
    expect(readableSize(13)).toBe('13 bytes');
    expect(readableSize(4300)).toBe('4.2 KB');
    expect(readableSize(48000)).toBe('47 KB');
    expect(readableSize(30 * 1024 * 1024)).toBe('30 MB');
  });
});
