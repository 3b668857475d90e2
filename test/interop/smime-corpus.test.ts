/**
 * Thunderbird's S/MIME test corpus (made by the NSS test suite, expected verdicts from
 * Thunderbird's own tests): every message is opened by Postern's inbound S/MIME path with Bob's
 * (and Fran's) keys and TestCA as the only anchor, and what Postern reports — decrypted?
 * signed? validly? the expected text? — must match. A table of case, expected, got is printed.
 *
 * Verdict mapping: enc = the message was decrypted; sig = a signature covering the content was
 * found (one over ciphertext only, scope "outer", does not count, as in Thunderbird); sig_good =
 * every such signature is valid (chain to TestCA, key usage, From: binding, signing time vs Date:).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMessage, prepareDecryptionKey, prepareTrustStore, type OpenResult, type SmimeDecryptionKey } from '../../src/smime/index.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';

const TB = join(import.meta.dirname, '../../../shared/corpora/thunderbird-comm-central');
const DATA = join(TB, 'mailnews-test-data-smime');
/** The first CERTIFICATE block (openssl's exports carry "Bag Attributes" text before it). */
const pemDer = (pem: string) => Buffer.from(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(pem)![1]!.replace(/\s+/g, ''), 'base64');
const pemKeyDer = async (file: string) => {
  const { createPrivateKey } = await import('node:crypto');
  return createPrivateKey(await readFile(file, 'utf8')).export({ format: 'der', type: 'pkcs8' });
};

interface Case {
  filename: string;
  enc?: boolean;
  sig?: boolean;
  sig_good?: boolean;
  check_text?: string | boolean;
}

async function keys(): Promise<SmimeDecryptionKey[]> {
  const out: SmimeDecryptionKey[] = [];
  for (const who of ['Bob', 'Fran', 'Fran-ec', 'Alice', 'Dave']) {
    const cert = pemDer(await readFile(join(TB, 'derived-pem', `${who}.cert.pem`), 'utf8'));
    out.push(prepareDecryptionKey(cert, await pemKeyDer(join(TB, 'derived-pem', `${who}.key.pem`))));
  }
  return out;
}

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

async function verdict(r: OpenResult, wantText = true): Promise<{ enc: boolean; sig: boolean; sig_good: boolean; text: string }> {
  const content = r.signatures.filter((s) => s.scope !== 'outer');
  if (!wantText) return { enc: r.encryption?.status === 'decrypted', sig: content.length > 0, sig_good: content.length > 0 && content.every((s) => s.status === 'valid'), text: '' };
  // The text as Python's email package reads the result (an independent MIME parser).
  const parsed = await parseMail(r.message);
  const text = leaves(parsed)
    .map((l) => l.payload?.toString('latin1') ?? '')
    .join('\n');
  return { enc: r.encryption?.status === 'decrypted', sig: content.length > 0, sig_good: content.length > 0 && content.every((s) => s.status === 'valid'), text };
}

async function runCorpus(file: string, allowSha1: boolean): Promise<void> {
  const cases = JSON.parse(await readFile(join(TB, file), 'utf8')) as Case[];
  const ks = await keys();
  const trust = prepareTrustStore([pemDer(await readFile(join(DATA, 'TestCA.pem'), 'utf8'))], []);
  const rows: string[][] = [];
  const wrong: string[] = [];
  for (const c of cases) {
    const message = await readFile(join(DATA, c.filename));
    const r = await openMessage(message, { trust, allowSha1, keysFor: async () => ks });
    const expectText = c.check_text === true ? 'This is a test message from Alice to Bob.' : c.check_text || null;
    const got = await verdict(r, expectText !== null);
    const want = { enc: c.enc ?? false, sig: c.sig ?? false, sig_good: c.sig_good ?? false };
    const textOk = expectText === null || got.text.includes(expectText);
    const same = want.enc === got.enc && want.sig === got.sig && want.sig_good === got.sig_good && textOk;
    const show = (v: { enc: boolean; sig: boolean; sig_good: boolean }) => `enc=${+v.enc} sig=${+v.sig} good=${+v.sig_good}`;
    const why = [r.encryption?.reason, ...r.signatures.map((s) => `${s.scope}:${s.status}${s.reason ? ` (${s.reason})` : ''}`), ...r.problems].filter(Boolean).join('; ');
    rows.push([c.filename, show(want), show(got) + (textOk ? '' : ' TEXT MISSING'), same ? 'ok' : `DIFFERS ${why}`]);
    if (!same) wrong.push(`${c.filename}: expected ${show(want)}, got ${show(got)}${textOk ? '' : ' (text missing)'} — ${why}`);
  }
  const width = Math.max(...rows.map((r) => r[0]!.length));
  console.log(`\n${file} (allow_sha1=${allowSha1})\n${'case'.padEnd(width)}  expected                 got\n${rows.map((r) => `${r[0]!.padEnd(width)}  ${r[1]!.padEnd(24)} ${r[2]!.padEnd(24)} ${r[3]}`).join('\n')}`);
  expect(wrong, wrong.join('\n')).toEqual([]);
  expect(rows.length).toBe(cases.length);
}

describe('Thunderbird S/MIME corpus: Postern reports the expected verdicts', () => {
  it('test_smime_decrypt: all cases', async () => runCorpus('expected-verdicts.test_smime_decrypt.json', false), 60_000);
  it('test_smime_decrypt_allow_sha1: all cases', async () => runCorpus('expected-verdicts.test_smime_decrypt_allow_sha1.json', true), 60_000);
});

describe('browser S/MIME cases: the attacks are not rewarded', () => {
  const BROWSER = join(TB, 'browser-smime-data');
  const trustOf = async () => prepareTrustStore([pemDer(await readFile(join(BROWSER, 'TestCA.pem'), 'utf8'))], []);

  it('EFAIL: encrypted parts inside multipart/alternative are not decrypted', async () => {
    const r = await openMessage(await readFile(join(BROWSER, 'multipart-alternative.eml')), { trust: await trustOf(), keysFor: async () => keys() });
    expect(r.encryption?.status).toBe('not-decrypted');
    expect(r.message.equals(await readFile(join(BROWSER, 'multipart-alternative.eml')))).toBe(true);
  });

  it('a signed part inside multipart/mixed (a list footer added) is reported as partly signed, never as the signed message', async () => {
    for (const f of ['alice.dsig.SHA256.multipart.in.mixed.eml', 'alice.dsig.SHA256.multipart.in.mixed.with.header.eml']) {
      const r = await openMessage(await readFile(join(BROWSER, f)), { trust: await trustOf(), keysFor: async () => keys() });
      expect(r.signatures.length, f).toBeGreaterThan(0);
      expect(r.signatures.every((s) => s.scope === 'partial'), f).toBe(true);
    }
  });

  it('opaque signed and encrypted messages open to their text', async () => {
    for (const f of ['alice.sig.SHA256.opaque.eml', 'alice.sig.SHA256.opaque.env.eml', 'alice.html.sig.SHA256.opaque.env.eml', 'alice.dsig.SHA256.multipart.env.eml']) {
      const r = await openMessage(await readFile(join(BROWSER, f)), { trust: await trustOf(), keysFor: async () => keys() });
      const v = await verdict(r);
      expect(v.sig_good, f).toBe(true);
      expect(v.text, f).toMatch(/This is a test message from Alice to Bob/);
    }
  });

  it('nested-sigs: a signed message forwarded inside another signed message counts only for its own signature', async () => {
    const r = await openMessage(await readFile(join(BROWSER, 'nested-sigs.eml')), { trust: await trustOf(), keysFor: async () => keys() });
    // The outer signature covers the forwarded message as data; it is the only whole-message one.
    expect(r.signatures.filter((s) => s.scope === 'whole')).toHaveLength(1);
  });
});
