/**
 * Header protection (RFC 9788) at the MIME level: the payload Postern builds, read back by Python's
 * email package (an independent parser: the protected fields are the payload root's header fields,
 * the legacy display element is the first text of each main body part); the protected section read
 * from it again; and the plan that makes it the message's header — the sender's hidden Subject
 * restored, a tampered or added outer Reply-To replaced and kept as X-Postern-Outer-Reply-To.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planProtection, protectedSection, protectHeaders, protectionField, rewriteOuter, splitHeader, withLegacyDisplay } from '../../../src/mime/index.js';
import { parseMail, type ParsedPart } from '../../helpers/mail-parse.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const headerOf = (b: Buffer) => splitHeader(b).header;
const field = (p: ParsedPart, name: string) => p.headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
/** A decoded text part, line ends as LF (Python's decoder gives either). */
const text = (p: ParsedPart) => p.payload!.toString('utf8').replace(/\r\n/g, '\n');
const TB = '../shared/corpora/thunderbird-comm-central/browser-openpgp-data/eml';

const message = crlf(`Received: from client.example.com by gw.example.com; Tue, 12 Mar 2024 10:00:00 +0000
From: Alice Lovelace <alice@example.com>
To: Bob Babbage <bob@partner.example>
Cc: carol@partner.example
Bcc: secret-watcher@example.com
Subject: The FooCorp contract
Comments: draft for legal
Keywords: contract, foocorp
Date: Tue, 12 Mar 2024 10:00:00 +0000
Message-ID: <hp1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8; format=flowed
Content-Transfer-Encoding: 8bit

Bob, the terms are attached. Grüße
`);

describe('protectHeaders (outbound)', () => {
  it('encrypted, obscure: hp="cipher" payload with every header field, HP-Outer for what stays outside, Subject [...] and a legacy display', async () => {
    const p = protectHeaders(message, { encrypted: true, confidentiality: 'obscure', legacyDisplay: true });
    expect(p.hidden.sort()).toEqual(['comments', 'keywords', 'subject']);
    expect(p.legacyDisplay).toBe(true);
    const outer = await parseMail(p.message);
    expect(field(outer, 'Subject')).toEqual(['[...]']);
    expect(field(outer, 'Comments')).toEqual([]);
    expect(field(outer, 'Keywords')).toEqual([]);
    expect(field(outer, 'From')).toEqual(['Alice Lovelace <alice@example.com>']);
    expect(field(outer, 'Received')).toHaveLength(1);

    const root = await parseMail(p.payload);
    expect(root.defects).toEqual([]);
    expect(root.params.hp).toBe('cipher');
    expect(root.params['protected-headers']).toBe('v1');
    expect(root.params['hp-legacy-display']).toBe('1');
    expect(field(root, 'Subject')).toEqual(['The FooCorp contract']);
    expect(field(root, 'Comments')).toEqual(['draft for legal']);
    expect(field(root, 'Message-ID')).toEqual(['<hp1@example.com>']);
    // Trace fields and Bcc are not the author's to protect (and Bcc would show inside).
    expect(field(root, 'Received')).toEqual([]);
    expect(field(root, 'Bcc')).toEqual([]);
    const hpOuter = field(root, 'HP-Outer');
    expect(hpOuter).toContain('Subject: [...]');
    expect(hpOuter).toContain('From: Alice Lovelace <alice@example.com>');
    expect(hpOuter).toContain('Cc: carol@partner.example');
    expect(hpOuter.some((v) => /^(Comments|Keywords|Received|Bcc):/.test(v))).toBe(false);
    // The legacy display: the hidden Subject, an empty line, then the text (now UTF-8, 7-bit).
    expect(text(root)).toBe('Subject: The FooCorp contract\n\nBob, the terms are attached. Grüße\n');
    expect(root.params.format).toBe('flowed');
    expect(p.payload.toString('latin1')).not.toMatch(/[\x80-\xff]/);
  });

  it('encrypted, copy: the outer header stays, HP-Outer records it all, no legacy display', async () => {
    const p = protectHeaders(message, { encrypted: true, confidentiality: 'copy', legacyDisplay: true });
    expect(p.hidden).toEqual([]);
    expect(p.legacyDisplay).toBe(false);
    expect(field(await parseMail(p.message), 'Subject')).toEqual(['The FooCorp contract']);
    const root = await parseMail(p.payload);
    expect(field(root, 'HP-Outer')).toContain('Subject: The FooCorp contract');
    expect(root.params['hp-legacy-display']).toBeUndefined();
  });

  it('signed only: hp="clear", no HP-Outer, the outer header as it was', async () => {
    const p = protectHeaders(message, { encrypted: false, confidentiality: 'obscure', legacyDisplay: true });
    const root = await parseMail(p.payload);
    expect(root.params.hp).toBe('clear');
    expect(field(root, 'HP-Outer')).toEqual([]);
    expect(field(root, 'Subject')).toEqual(['The FooCorp contract']);
    expect(field(await parseMail(p.message), 'Subject')).toEqual(['The FooCorp contract']);
  });

  it('an 8-bit Subject goes inside as encoded-words; an earlier hp= claim in the body is replaced by ours', async () => {
    const m = crlf('From: a@example.com\nSubject: Grüße zum Quartal\nContent-Type: text/plain; hp="clear"; protected-headers=v1\n\nx\n');
    const p = protectHeaders(m, { encrypted: true, confidentiality: 'obscure', legacyDisplay: false });
    const root = await parseMail(p.payload);
    expect(root.params.hp).toBe('cipher');
    expect(field(root, 'Subject')).toEqual(['Grüße zum Quartal']);
    expect(p.payload.toString('latin1').match(/hp=/g)).toHaveLength(1);
    expect(headerOf(p.payload).toString('latin1')).toMatch(/^Subject: =\?UTF-8\?B\?/m);
  });

  it('legacy display in every part of a multipart/alternative, never in an attachment; a part it cannot decode is left as it is', async () => {
    const m = crlf(`From: a@example.com
Subject: <b>terms</b> & conditions
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

plain text
--alt
Content-Type: text/html; charset=us-ascii

<html><body><p>html text</p></body></html>
--alt--
--mix
Content-Type: text/plain; charset=us-ascii
Content-Disposition: attachment; filename="notes.txt"

attached notes
--mix--
`);
    const p = protectHeaders(m, { encrypted: true, confidentiality: 'obscure', legacyDisplay: true });
    const root = await parseMail(p.payload);
    expect(root.defects).toEqual([]);
    const [alt, attachment] = root.parts;
    const [plain, html] = alt!.parts;
    expect(plain!.params['hp-legacy-display']).toBe('1');
    expect(text(plain!)).toBe('Subject: <b>terms</b> & conditions\n\nplain text');
    expect(text(html!)).toBe('<html><body>\n<div class="header-protection-legacy-display"><pre>Subject: &lt;b&gt;terms&lt;/b&gt; &amp; conditions</pre></div>\n<p>html text</p></body></html>');
    expect(attachment!.params['hp-legacy-display']).toBeUndefined();
    expect(attachment!.payload!.toString()).toBe('attached notes');

    const odd = crlf('Content-Type: text/plain; charset=x-no-such-charset\n\ntext\n');
    expect(withLegacyDisplay(odd, ['Subject: s'])).toBeNull();
    const notUtf8 = Buffer.concat([crlf('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n'), Buffer.from([0x47, 0xfc, 0x0d, 0x0a])]);
    expect(withLegacyDisplay(notUtf8, ['Subject: s'])).toBeNull();
  });
});

describe('protectedSection and planProtection (inbound)', () => {
  const outerOf = (p: { message: Buffer }) => p.message;

  it('reads back what protectHeaders wrote; the hidden Subject is restored, nothing is flagged', () => {
    const p = protectHeaders(message, { encrypted: true, confidentiality: 'obscure', legacyDisplay: true });
    const s = protectedSection(headerOf(p.payload))!;
    expect(s.form).toBe('rfc9788');
    expect(s.hp).toBe('cipher');
    expect(s.fields.get('subject')).toEqual(['The FooCorp contract']);
    expect(s.outer!.get('subject')).toEqual(['[...]']);
    expect(s.outer!.has('comments')).toBe(false);
    const plan = planProtection(outerOf(p), s, true);
    expect(plan.changes).toEqual([{ name: 'subject', kind: 'restored' }]);
    expect(plan.rebind).toBe(false);
    const out = rewriteOuter(p.message, plan).toString('latin1');
    expect(out).toMatch(/^Subject: The FooCorp contract\r$/m);
    expect(out).toMatch(/^X-Postern-Outer-Subject: \[\.\.\.\]\r$/m);
    expect(protectionField('smime', plan, { decrypted: true, signed: false, authenticated: true })).toEqual([
      'X-Postern-Header-Protection',
      'protected; method=smime; form=rfc9788; hp=cipher; protected-by=encryption; restored="Subject"',
    ]);
  });

  it('an outer Reply-To the author did not write is removed, a changed Cc replaced, each kept as X-Postern-Outer-*', () => {
    const p = protectHeaders(message, { encrypted: true, confidentiality: 'obscure', legacyDisplay: false });
    const s = protectedSection(headerOf(p.payload))!;
    const tampered = Buffer.from(
      p.message.toString('latin1').replace('Cc: carol@partner.example\r\n', 'Cc: carol@partner.example, mallory@evil.example\r\nReply-To: mallory@evil.example\r\n'),
      'latin1',
    );
    const plan = planProtection(tampered, s, true);
    expect(plan.changes).toEqual([
      { name: 'cc', kind: 'replaced' },
      { name: 'reply-to', kind: 'replaced' },
      { name: 'subject', kind: 'restored' },
    ]);
    const out = rewriteOuter(tampered, plan).toString('latin1');
    const head = out.slice(0, out.indexOf('\r\n\r\n') + 2);
    expect(head).toMatch(/^Cc: carol@partner\.example\r$/m);
    expect(head).not.toMatch(/^Reply-To:/m);
    expect(head).toMatch(/^X-Postern-Outer-Reply-To: mallory@evil\.example\r$/m);
    expect(head).toMatch(/^X-Postern-Outer-Cc: carol@partner\.example, mallory@evil\.example\r$/m);
    expect(out.slice(out.indexOf('\r\n\r\n'))).toBe(p.message.toString('latin1').slice(p.message.toString('latin1').indexOf('\r\n\r\n')));
    expect(protectionField('pgp', plan, { decrypted: true, signed: true, authenticated: true })[1]).toBe(
      'replaced; method=pgp; form=rfc9788; hp=cipher; protected-by=encryption,signature; restored="Subject"; replaced="Cc,Reply-To"',
    );
  });

  it('a From: that differs asks for the signatures to be bound again; re-folding and re-encoding are no difference', () => {
    const s = protectedSection(crlf('Content-Type: text/plain; hp="clear"\nFrom: Alice Lovelace <alice@example.com>\nTo: bob@partner.example,\n carol@partner.example\nSubject: =?utf-8?q?caf=C3=A9?=\n\n'))!;
    const same = crlf('From: "Alice Lovelace" <ALICE@example.com>\nTo: bob@partner.example, carol@partner.example\nSubject: café\n\nx');
    expect(planProtection(same, s, false).changes).toEqual([]);
    const forged = crlf('From: ceo@example.com\nTo: bob@partner.example, carol@partner.example\nSubject: café\n\nx');
    const plan = planProtection(forged, s, false);
    expect(plan.changes).toEqual([{ name: 'from', kind: 'replaced' }]);
    expect(plan.rebind).toBe(true);
    const rebound = rewriteOuter(forged, plan, forged, new Set(['from'])).toString('latin1');
    expect(rebound).toMatch(/^From: Alice Lovelace <alice@example\.com>\r$/m);
    expect(rebound).not.toMatch(/X-Postern-Outer/);
  });

  it('Thunderbird\'s protected-headers="v1" is read; outer fields it lacks are only removed where a reply is addressed from them', async () => {
    const eml = await readFile(join(TB, 'signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml'));
    const inner = eml.subarray(eml.indexOf('Content-Type: multipart/mixed; boundary="PNIE'));
    const s = protectedSection(headerOf(Buffer.from(inner.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')))!;
    expect(s.form).toBe('v1');
    expect(s.hp).toBeNull();
    expect(s.outer).toBeNull();
    expect(s.fields.get('subject')).toEqual(['Signed Unencrypted']);
    const outer = Buffer.from(eml.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    expect(planProtection(outer, s, false).changes).toEqual([]);
    const withReplyTo = Buffer.from(outer.toString('latin1').replace('Subject: Signed Unencrypted\r\n', 'Subject: Signed Unencrypted\r\nReply-To: mallory@evil.example\r\nIn-Reply-To: <x@y>\r\n'), 'latin1');
    expect(planProtection(withReplyTo, s, false).changes).toEqual([{ name: 'reply-to', kind: 'replaced' }]);
  });

  it('random bytes in either header never throw: a section is read or not, a plan is made, the rewrite keeps the body', () => {
    let seed = 9788;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const pieces = ['From:', 'To:', 'Cc:', 'Reply-To:', 'Subject:', 'HP-Outer:', 'Sender:', 'Date:', ' ', '\t', '\r\n', '\r\n ', '\n', '\r', '<', '>', '"', '@', ',', ':', ';', '(', ')', '=?utf-8?b?', '?=', '=?x?q?', '\\', 'a@b', '\u00e9', '\0', 'hp="cipher"', 'protected-headers=v1'];
    const junk = (n: number) => Array.from({ length: n }, () => pieces[Math.floor(rnd() * pieces.length)]).join('');
    for (let i = 0; i < 300; i++) {
      const inner = Buffer.from(`Content-Type: text/plain; ${rnd() < 0.5 ? 'hp=cipher' : 'protected-headers=v1'}\r\n${junk(60)}\r\n\r\n`, 'utf8');
      const outer = Buffer.from(`${junk(60)}\r\n\r\nbody ${i}`, rnd() < 0.5 ? 'utf8' : 'latin1');
      const s = protectedSection(inner);
      if (!s) continue;
      const plan = planProtection(outer, s, rnd() < 0.5);
      const out = rewriteOuter(outer, plan);
      expect(out.toString('latin1').endsWith(`body ${i}`)).toBe(true);
      expect(protectionField('smime', plan, null)[1]).not.toMatch(/[\r\n]/);
    }
  });

  it('hostile sections: no hp, an hp= value RFC 9788 does not define, HP-Outer without a name, a flood of fields', () => {
    expect(protectedSection(crlf('Content-Type: text/plain\nFrom: a@b\n\n'))).toBeNull();
    expect(protectedSection(crlf('Content-Type: text/plain; hp=maybe\nFrom: a@b\n\n'))).toBeNull();
    expect(protectedSection(Buffer.alloc(0))).toBeNull();
    const s = protectedSection(crlf('Content-Type: text/plain; hp=cipher\nHP-Outer: no colon here\nHP-Outer: : empty name\nHP-Outer: Subject: [...]\nSubject: s\n\n'))!;
    expect([...s.outer!.keys()]).toEqual(['subject']);
    const flood = crlf(`Content-Type: text/plain; hp=clear\n${Array.from({ length: 5000 }, (_, i) => `X-F${i}: v`).join('\n')}\nFrom: late@example.com\n\n`);
    const f = protectedSection(flood)!;
    expect(f.fields.size).toBeLessThanOrEqual(500);
    // A From: beyond the bound is not in the section: an outer From: is then kept, never replaced by nothing.
    expect(planProtection(crlf('From: a@example.com\n\nx'), f, false).changes).toEqual([]);
    // A line longer than RFC 5322 allows would make the next hop refuse the message: no section.
    expect(protectedSection(crlf(`Content-Type: text/plain; hp=clear\nSubject: ${'x'.repeat(1000)}\n\n`))).toBeNull();
    expect(protectedSection(crlf(`Content-Type: text/plain; hp=clear\nSubject: ${'x'.repeat(900)}\n ${'y'.repeat(900)}\n\n`))!.fields.get('subject')![0]).toHaveLength(1801);
  });
});
