/**
 * Webmail's reading of a stored message (mail-view.ts), its HTML sanitiser (mail-html.ts) and the
 * download header (RFC 6266). The browser-side proof that nothing runs is in
 * test/integration/webmail-pages.test.ts; here each rule is pinned one by one.
 */
import { describe, expect, it } from 'vitest';
import { attachmentDisposition, readForView, sanitizeMailHtml } from '../../../src/portal/webmail/index.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const opts = (o: Partial<Parameters<typeof sanitizeMailHtml>[1]> = {}) => ({ showImages: false, blockedText: 'image', cidUrl: () => null, ...o });

describe('webmail: reading a message for the page', () => {
  it('shows the HTML alternative, keeps cid images and files by number, names files safely', () => {
    const msg = crlf(`From: a@example.com
Subject: x
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: multipart/alternative; boundary="a"

--a
Content-Type: text/plain; charset=utf-8

plain text
--a
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<p>caf=E9 <img src=3D"cid:logo@x"></p>
--r
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--
--a--
--m
Content-Type: application/pdf; name="../../etc/passwd"
Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fr%C3%A9sum%C3%A9%E2%80%AEfdp.exe
Content-Transfer-Encoding: base64

JVBERi0xLjcK
--m
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

attached text
--m--
`);
    const v = readForView(msg);
    expect(v.bodies).toEqual([{ kind: 'html', html: '<p>café <img src="cid:logo@x"></p>' }]);
    expect(v.files.map((f) => [f.n, f.name, f.type, f.cid ?? null])).toEqual([
      [0, 'attachment-1.png', 'image/png', 'logo@x'],
      [1, '_.._résumé_fdp.exe', 'application/pdf', null],
      [2, 'notes.txt', 'text/plain', null],
    ]);
    expect(v.files[1]!.data.toString('latin1')).toBe('%PDF-1.7\n');
    expect(v.files[1]!.name).not.toMatch(/[\/\\]|\u202e/);
    expect(v.files[2]!.data.toString()).toBe('attached text');
  });

  it('shows plain text (format=flowed joined, controls replaced) and a forwarded message as an .eml file', () => {
    const msg = crlf(`Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain; charset=utf-8; format=flowed

a soft\u0007 
break
--m
Content-Type: message/rfc822

Subject: Forwarded one

inner
--m--
`);
    const v = readForView(msg);
    expect(v.bodies).toEqual([{ kind: 'text', text: 'a soft\uFFFD break' }]);
    expect(v.files.map((f) => f.name)).toEqual(['Forwarded one.eml']);
  });
});

describe('webmail: sanitising a mail\'s HTML', () => {
  it('drops script, style, iframe, object, form, svg and every event handler', () => {
    const out = sanitizeMailHtml(
      `<p onclick="x()" onmouseover="y()" style="color:red" class="card" id="main">hi</p><script>window.__pwned=1</script><style>body{display:none}</style>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object><embed src="x"><form action="https://evil.example/"><input name="p"><button>go</button></form>
<svg onload="alert(1)"><script>alert(2)</script></svg><math><mi>x</mi></math><meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/">
<details open ontoggle="alert(3)">d</details><img src=x onerror="alert(4)">`,
      opts(),
    );
    expect(out.html).not.toMatch(/<(script|style|iframe|object|embed|form|input|button|svg|math|meta|base|details)\b/i);
    expect(out.html).not.toMatch(/\bon[a-z]+\s*=/i);
    expect(out.html).not.toMatch(/style=|class="card"|id=/);
    expect(out.html).not.toContain('__pwned');
    expect(out.html).toContain('<p>hi</p>');
  });

  it('keeps http(s) and mailto links, opened without opener or referrer; drops javascript:, data: and paths of the portal', () => {
    const out = sanitizeMailHtml(
      `<a href="https://partner.example/x?a=1&amp;b=2">ok</a><a href="mailto:a@example.com">m</a><a href="javascript:alert(1)">j</a><a href=" jav&#x09;ascript:alert(1)">j2</a>
<a href="data:text/html,<script>alert(1)</script>">d</a><a href="/webmail/logout">p</a><a href="//evil.example/">r</a><a href="vbscript:x">v</a>`,
      opts(),
    );
    expect(out.html).toContain('<a href="https://partner.example/x?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">ok</a>');
    expect(out.html).toContain('<a href="mailto:a@example.com" rel="noopener noreferrer" target="_blank">m</a>');
    const hrefs = [...out.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(hrefs).toEqual(['https://partner.example/x?a=1&amp;b=2', 'mailto:a@example.com']);
  });

  it('blocks remote images until asked, then allows https: only; cid: images from the message; data: images never', () => {
    const src = `<img src="https://tracker.example/p.gif" alt="logo"><img src="http://tracker.example/q.gif"><img src="cid:pic@x"><img src="cid:none@x" alt="gone"><img src="data:image/png;base64,AAAA"><img srcset="https://t.example/a 1x">`;
    const cidUrl = (cid: string) => (cid === 'cid:pic@x' ? '/webmail/m/7/inline/0' : null);
    const blocked = sanitizeMailHtml(src, opts({ cidUrl }));
    expect(blocked.blocked).toBe(2);
    expect(blocked.html).not.toContain('tracker.example');
    expect(blocked.html).toContain('<span class="blocked-image">[image: logo]</span>');
    expect(blocked.html).toContain('<img src="/webmail/m/7/inline/0" />');
    expect(blocked.html).toContain('<span>[gone]</span>');
    expect(blocked.html).not.toMatch(/data:|srcset|t\.example/);
    const shown = sanitizeMailHtml(src, opts({ cidUrl, showImages: true }));
    expect(shown.html).toContain('<img alt="logo" src="https://tracker.example/p.gif" />');
    expect(shown.html).not.toContain('http://tracker.example/q.gif');
    expect(shown.blocked).toBe(1);
  });
});

describe('webmail: download header', () => {
  it('names the file in ASCII and in UTF-8 (RFC 6266), with nothing that breaks out of the header', () => {
    expect(attachmentDisposition('résumé "final"; x.pdf')).toBe(`attachment; filename="r_sum_ _final_; x.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20x.pdf`);
    expect(attachmentDisposition('a\r\nSet-Cookie: x')).not.toMatch(/[\r\n]/);
    expect(attachmentDisposition("it's (1).txt")).toContain("filename*=UTF-8''it%27s%20%281%29.txt");
  });
});
