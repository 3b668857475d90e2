/**
 * The table of address spellings (issue 14): each spelling with the canonical form it gets, or
 * the refusal. The comparison key column shows which spellings Postern treats as one mailbox.
 */
import { describe, expect, it } from 'vitest';
import { addressKey, canonicalAddress, canonicalDomain, domainOfAddress, parseAddress, sameAddress } from '../../../src/core/address.js';

const FW = (s: string) => [...s].map((c) => (/[a-z]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! - 0x61 + 0xff41) : c)).join('');

// [written, SMTPUTF8?, canonical | refusal, comparison key]
const TABLE: [string, boolean, string, string?][] = [
  // plain, and case: the domain is lower-cased, the local part keeps its case; the key lowers both
  ['alice@example.com', false, 'alice@example.com', 'alice@example.com'],
  ['Alice@EXAMPLE.COM', false, 'Alice@example.com', 'alice@example.com'],
  ['ALICE@Example.Com', false, 'ALICE@example.com', 'alice@example.com'],
  // IDN: U-label and A-label are one domain
  ['bob@bücher.example', true, 'bob@xn--bcher-kva.example', 'bob@xn--bcher-kva.example'],
  ['bob@BÜCHER.example', true, 'bob@xn--bcher-kva.example', 'bob@xn--bcher-kva.example'],
  ['bob@xn--bcher-kva.example', false, 'bob@xn--bcher-kva.example', 'bob@xn--bcher-kva.example'],
  ['bob@XN--BCHER-KVA.EXAMPLE', false, 'bob@xn--bcher-kva.example', 'bob@xn--bcher-kva.example'],
  ['x@faß.de', true, 'x@xn--fa-hia.de'], // non-transitional UTS #46: ß stays ß
  // full-width letters and full stops: compatibility-mapped to the ASCII domain
  [`victim@${FW('example')}.com`, true, 'victim@example.com', 'victim@example.com'],
  [`bob@${FW('partner')}.example`, true, 'bob@partner.example', 'bob@partner.example'],
  ['bob@partner．example', true, 'bob@partner.example'],
  ['bob@partner。example', true, 'bob@partner.example'],
  // default-ignorables and controls: refused, never silently deleted
  ['victim@exam\u00adple.com', true, 'ignorable'],
  ['bob@part\u00adner.example', true, 'ignorable'],
  ['bob@part\u200bner.example', true, 'ignorable'],
  ['bob@part\u200dner.example', true, 'ignorable'],
  ['bob@part\u2060ner.example', true, 'ignorable'],
  ['bob@partner.exam\ufe0fple', true, 'ignorable'],
  ['bob@\u202epartner.example', true, 'ignorable'],
  ['bo\u00adb@partner.example', true, 'ignorable'],
  ['bob\u200b@partner.example', true, 'ignorable'],
  ['bob\x00@partner.example', false, 'ignorable'],
  // quoting: needless quotes removed, quoted pairs resolved, needed quotes kept minimal
  ['"carol"@other.example', false, 'carol@other.example', 'carol@other.example'],
  ['"Carol"@Other.Example', false, 'Carol@other.example', 'carol@other.example'],
  ['"ca\\rol"@other.example', false, 'carol@other.example', 'carol@other.example'],
  ['"first.last"@other.example', false, 'first.last@other.example'],
  ['"john smith"@other.example', false, '"john smith"@other.example'],
  ['"a\\"b"@other.example', false, '"a\\"b"@other.example'],
  ['"a..b"@other.example', false, '"a..b"@other.example'],
  ['""@other.example', false, '""@other.example'],
  ['"a"b"@other.example', false, 'syntax'],
  ['a..b@other.example', false, 'syntax'],
  ['.a@other.example', false, 'syntax'],
  ['a(b)@other.example', false, 'syntax'],
  // trailing root dot: the same DNS name
  ['alice@example.com.', false, 'alice@example.com', 'alice@example.com'],
  ['alice@example.com..', false, 'domain'],
  // 8-bit without SMTPUTF8: refused (RFC 6531 §3.5); with it, NFC and kept
  ['jörg@example.com', false, 'utf8'],
  ['jörg@example.com', true, 'jörg@example.com', 'jörg@example.com'],
  ['jo\u0308rg@example.com', true, 'jörg@example.com', 'jörg@example.com'],
  ['JÖRG@example.com', true, 'JÖRG@example.com', 'jörg@example.com'],
  [`${FW('alice')}@example.com`, true, `${FW('alice')}@example.com`, 'alice@example.com'],
  // domains that are no mail domain
  ['a@xn--a.com', false, 'domain'],
  ['a@xn--example-.com', false, 'domain'], // a fake A-label that decodes to plain "example"
  ['a@ex_ample.com', false, 'domain'],
  ['a@-example.com', false, 'domain'],
  ['a@0x7f.1', false, 'domain'],
  ['a@1.2.3.4', false, 'domain'],
  ['a@１２７.０.０.１', true, 'domain'],
  ['a@[192.0.2.1]', false, 'domain'],
  ['a@', false, 'syntax'],
  ['@example.com', false, 'syntax'],
  ['example.com', false, 'syntax'],
];

describe('canonical addresses: the table of spellings', () => {
  it.each(TABLE)('%j (SMTPUTF8 %s) → %s', (written, utf8, expected, key) => {
    const r = parseAddress(written, { utf8 });
    if (['syntax', 'ignorable', 'domain', 'utf8'].includes(expected)) {
      expect(r.ok, JSON.stringify(r)).toBe(false);
      if (!r.ok) expect(r.problem).toBe(expected);
      return;
    }
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.address).toBe(expected);
    expect(r.original).toBe(written);
    if (key) expect(addressKey(written)).toBe(key);
    // Canonical is a fixed point: canonicalising again changes nothing.
    expect(canonicalAddress(r.address, { utf8: true })).toBe(r.address);
  });

  it('one mailbox, whatever the spelling (by key)', () => {
    const spellings = ['Victim@example.com', `victim@${FW('example')}.com`, '"victim"@EXAMPLE.com', 'victim@example.com.', 'VICTIM@Example.COM'];
    for (const s of spellings) expect(sameAddress(s, 'victim@example.com'), s).toBe(true);
    expect(sameAddress('bob@bücher.example', 'bob@xn--bcher-kva.example')).toBe(true);
    expect(sameAddress('bob@example.com', 'bob@examp1e.com')).toBe(false);
    // A Cyrillic look-alike is another domain (and stays one): it is simply not ours.
    expect(domainOfAddress('bob@ex\u0430mple.com')).toBe('xn--exmple-4nf.com');
    expect(sameAddress('bob@ex\u0430mple.com', 'bob@example.com')).toBe(false);
  });

  it('domains alone', () => {
    expect(canonicalDomain(' Example.COM ')).toBe('example.com');
    expect(canonicalDomain('bücher.example')).toBe('xn--bcher-kva.example');
    expect(canonicalDomain('exam\u00adple.com')).toBeNull();
    expect(canonicalDomain('a'.repeat(64) + '.com')).toBeNull();
    expect(canonicalDomain('localhost')).toBe('localhost');
  });
});
