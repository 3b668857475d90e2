/**
 * OpenPGP corpora written by others, opened by Postern's inbound path; a table of case, expected,
 * got is printed.
 *
 * 1. Thunderbird's browser tests (browser-openpgp-data, states from expected-openpgp-and-browser-
 *    smime.tsv). The keys are set up as those tests do: Alice's secret key (the -with-pp file,
 *    decrypted here with its passphrase) is the decryption key, Bob's public key is "accepted as
 *    verified" (trusted), Alice's own public key is present but not vouched for (Thunderbird shows
 *    her signatures as "unverified"), and no other key is known. Carol's revoked secret key is
 *    added for the one test that imports it. Mapping: encrypted:ok → decrypted (and the test's
 *    text is in the result); NOT-encrypted:ok → not decrypted; signed:verified → valid;
 *    signed:unverified / unknown → unknown or untrusted; signed:ok → a good signature (valid or
 *    untrusted); signed:mismatch → mismatch; NOT-signed:X → no content signature with status X.
 *    Signatures count only with scope "whole" (one over ciphertext, "outer", or over one part,
 *    "partial", is not the message's — as in Thunderbird).
 * 2. GnuPG's test messages (gnupg-tests/openpgp/samplemsgs), keys converted by gpg from its agent
 *    key files, each message wrapped as a PGP/MIME body or an inline text body.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBody, multipartLayout, readEntity } from '../../src/mime/entity.js';
import { pgpOpenMessage, preparePgpDecryptionKey, preparePgpVerificationKey, type PgpDecryptionKey, type PgpOpenResult, type PgpVerificationKey } from '../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';

const CORPORA = join(import.meta.dirname, '../../../shared/corpora');
const TB = join(CORPORA, 'thunderbird-comm-central');
const DATA = join(TB, 'browser-openpgp-data');
const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);
const textOf = async (m: Buffer) => leaves(await parseMail(m)).map((l) => l.payload?.toString('utf8') ?? '').join('\n');
const printTable = (title: string, rows: string[][]) => {
  const w = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  console.log(`\n${title}\n${'case'.padEnd(w)}  ${'expected'.padEnd(w1)}  got\n${rows.map((r) => `${r[0]!.padEnd(w)}  ${r[1]!.padEnd(w1)}  ${r[2]}`).join('\n')}`);
};

/** What the test's message should show when decrypted (from the Thunderbird tests' assertions). */
const TEXTS: [RegExp, string][] = [
  [/^bob-enc-/, 'My real name is not Bob.'],
  [/^enc-to-carol/, 'billie-jean'],
  [/^encrypted-and-signed-alice-to-bob-nonascii/, 'Detta är krypterat!'],
  [/(0xf231550c4f47e38e|outer-|inner-smime)/, ''],
];
const MSG_TEXT = 'Sundays are nothing without callaloo.';

/**
 * Rows whose states are not all about the message as it arrives, with the reason, and what is
 * checked instead: a second phase (the output opened again, an attachment opened on its own, a
 * changed acceptance), or a state left out.
 */
const PHASES: Record<string, { phase: 'reopen' | 'attachment' | 'untrust-bob' | 'drop'; states: string; why: string }[]> = {
  testPermanentDecrypt: [{ phase: 'reopen', states: 'NOT-encrypted:ok', why: 'the permanently decrypted copy: Postern\'s output, opened again, is not encrypted' }],
  testOpenForwardedEncrypted: [{ phase: 'attachment', states: 'encrypted:ok', why: 'the attached message opened in its own window: Postern opens the message/rfc822 part alone' }],
  testOpenAndShowAttachedEml: [{ phase: 'attachment', states: 'signed:ok', why: 'the attached signed message opened on its own (in the mail itself that signature is only partial)' }],
  testUpdateMessageSignature: [{ phase: 'untrust-bob', states: 'signed:unverified', why: 'after the user changes Bob\'s key acceptance to unverified' }],
  testOuterPgpSigInnerPgpEncryptedInsideMixed: [{ phase: 'drop', states: 'encrypted:ok', why: 'the test asserts NOT-encrypted and signed:unknown (the outer signature); "encrypted:ok" is its negated assertion read twice' }],
};

interface Keys {
  decrypt: PgpDecryptionKey[];
  bob: PgpVerificationKey;
  alice: PgpVerificationKey;
  benny: PgpVerificationKey;
}

function check(states: string[], r: PgpOpenResult, text: string | null, expectText: string | null): string[] {
  const wrong: string[] = [];
  const content = r.signatures.filter((s) => s.scope === 'whole');
  const decrypted = r.encryption?.status === 'decrypted';
  const allowed: Record<string, string[]> = { verified: ['valid'], unverified: ['unknown', 'untrusted'], unknown: ['unknown', 'untrusted'], ok: ['valid', 'untrusted'], mismatch: ['mismatch'] };
  for (const s of states) {
    const [what, state] = s.split(':') as [string, string];
    if (what === 'encrypted' && state === 'ok' && !decrypted) wrong.push(`${s}: not decrypted (${r.encryption?.reason ?? 'no encryption found'})`);
    if (what === 'encrypted' && state === 'notok' && r.encryption?.status !== 'failed') wrong.push(`${s}: ${r.encryption?.status ?? 'none'}`);
    if (what === 'NOT-encrypted' && decrypted) wrong.push(`${s}: decrypted`);
    if (what === 'signed' && !(content.length && content.every((c) => allowed[state]!.includes(c.status)))) wrong.push(`${s}: ${content.map((c) => c.status).join(',') || 'no content signature'}`);
    if (what === 'NOT-signed' && content.some((c) => (allowed[state] ?? [state]).includes(c.status))) wrong.push(`${s}: present`);
  }
  if (expectText !== null && text !== null && !text.includes(expectText)) wrong.push(`text "${expectText}" missing`);
  return wrong;
}

const show = (r: PgpOpenResult) =>
  [r.encryption ? `enc=${r.encryption.status}` : 'enc=-', ...r.signatures.map((s) => `sig(${s.scope})=${s.status}`), ...(r.problems.length ? ['problem'] : [])].join(' ');

describe('Thunderbird OpenPGP corpus: Postern reports the expected states', () => {
  let keys: Keys;
  const secret = async (f: string, passphrase?: string) => {
    let k = await openpgp.readPrivateKey({ armoredKey: readFileSync(join(DATA, 'keys', f), 'utf8') });
    if (passphrase) k = await openpgp.decryptKey({ privateKey: k, passphrase });
    return Buffer.from(k.write());
  };
  beforeAll(async () => {
    keys = {
      decrypt: [
        await preparePgpDecryptionKey(await secret('alice@openpgp.example-0xf231550c4f47e38e-secret-with-pp.asc', 'alice-passphrase')),
        await preparePgpDecryptionKey(await secret('carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc')),
      ],
      bob: await preparePgpVerificationKey(readFileSync(join(DATA, 'keys', 'bob@openpgp.example-0xfbfcc82a015e7330-pub.asc'))),
      alice: await preparePgpVerificationKey(readFileSync(join(DATA, 'keys', 'alice@openpgp.example-0xf231550c4f47e38e-pub.asc')), { trusted: false }),
      // The forger's own key, for the git-commit spoof (Thunderbird's test has it too: it says mismatch, not unknown).
      benny: await preparePgpVerificationKey(readFileSync(join(DATA, 'keys', 'benny-hashwell-0xc55ccd9c5ab482b2-pub.asc')), { trusted: false }),
    };
  });

  it('every row of expected-openpgp-and-browser-smime.tsv about browser-openpgp-data', async () => {
    const rows: string[][] = [];
    const wrong: string[] = [];
    const open = (m: Buffer, bobTrusted = true) =>
      pgpOpenMessage(m, { keysFor: async () => keys.decrypt, verificationKeysFor: async () => [bobTrusted ? keys.bob : { ...keys.bob, trusted: false }, keys.alice, keys.benny], inlineHtml: true });
    const tsv = readFileSync(join(TB, 'expected-openpgp-and-browser-smime.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    for (const [, test, files, statesText] of tsv) {
      // S/MIME files (data/…, ../smime/…) are the S/MIME corpus test's; a row naming both checks the OpenPGP file.
      const pgpFiles = files!.split(',').filter((f) => !f.includes('/'));
      if (!pgpFiles.length) continue;
      if (files!.includes('/')) rows.push([`${test} (S/MIME file)`, 'skipped', 'the S/MIME file of this row is checked by test/interop/smime-corpus.test.ts']);
      for (const file of pgpFiles) {
        const message = readFileSync(join(DATA, 'eml', file));
        const phases = PHASES[test!] ?? [];
        const later = new Set(phases.flatMap((p) => p.states.split(' ')));
        const states = (statesText ?? '').split(' ').filter((s) => s && !later.has(s));
        const r = await open(message);
        const expectText = r.encryption?.status === 'decrypted' || states.includes('encrypted:ok') ? (TEXTS.find(([re]) => re.test(file))?.[1] ?? null) : null;
        const text = expectText !== null ? await textOf(r.message) : null;
        const w = check(states, r, text, expectText === '' ? MSG_TEXT : expectText);
        rows.push([`${test} ${file}`, states.join(' ') || '(no state)', `${show(r)}${w.length ? `  DIFFERS: ${w.join('; ')}` : ''}`]);
        wrong.push(...w.map((x) => `${test} ${file}: ${x}`));
        for (const p of phases) {
          let pr: PgpOpenResult | null = null;
          if (p.phase === 'reopen') pr = await open(r.message);
          if (p.phase === 'untrust-bob') pr = await open(message, false);
          if (p.phase === 'attachment') {
            const e = readEntity(message);
            const att = multipartLayout(e.body, e.type.params.get('boundary')!).parts.map((x) => readEntity(x)).find((x) => x.type.type === 'message/rfc822');
            pr = await open(decodeBody(att!));
          }
          if (!pr) {
            rows.push([`  ↳ ${test}`, `${p.states} (left out)`, p.why]);
            continue;
          }
          const pw = check(p.states.split(' '), pr, null, null);
          rows.push([`  ↳ ${test} (${p.phase})`, p.states, `${show(pr)}${pw.length ? `  DIFFERS: ${pw.join('; ')}` : ''} — ${p.why}`]);
          wrong.push(...pw.map((x) => `${test} ${file} (${p.phase}): ${x}`));
        }
      }
    }
    printTable('Thunderbird browser-openpgp-data (expected-openpgp-and-browser-smime.tsv)', rows);
    expect(wrong, wrong.join('\n')).toEqual([]);
    expect(rows.length).toBeGreaterThan(38);
  }, 120_000);

  it('the cases no row states: EFAIL partial inline ciphertext, stripped and damaged signatures, the git-commit spoof', async () => {
    const open = (f: string) => pgpOpenMessage(readFileSync(join(DATA, 'eml', f)), { keysFor: async () => keys.decrypt, verificationKeysFor: async () => [keys.bob, keys.alice] });
    for (const f of ['partial-encrypt-for-alice-plaintext.eml', 'partial-encrypt-for-alice-html.eml']) {
      const r = await open(f);
      expect(r.encryption?.status, f).toBe('not-decrypted');
      expect(r.message.equals(readFileSync(join(DATA, 'eml', f))), f).toBe(true);
    }
    expect((await open('bob-to-alice-signed-damaged-signature.eml')).signatures).toMatchObject([{ status: 'invalid' }]);
    expect((await open('openpgp__stripped_sig.eml')).problems).toEqual(['multipart/signed with 1 parts instead of 2']);
    // gpg also calls this signature BAD: Thunderbird's test is about the parameter order only.
    expect((await open('dual-signed-uncommon-content-type.eml')).signatures).toMatchObject([{ status: 'invalid' }]);
    const spoof = await open('sigspoof-git-commit.eml');
    expect(spoof.encryption?.status).toBe('failed');
    expect(spoof.signatures).toMatchObject([{ status: 'unknown' }]);
    // With the forger's key, trusted even: the signature is good (over the commit), and still not this mail's.
    const withBenny = await pgpOpenMessage(readFileSync(join(DATA, 'eml', 'sigspoof-git-commit.eml')), {
      keysFor: async () => keys.decrypt,
      verificationKeysFor: async () => [{ ...keys.benny, trusted: true }],
    });
    expect(withBenny.signatures).toMatchObject([{ status: 'mismatch', reason: expect.stringMatching(/made for something else/) }]);
  });
});

/**
 * GnuPG's sample messages, with gpg 2.2 as the oracle on the same keys: what gpg decrypts (or
 * calls a good signature), Postern must decrypt (or verify as good); what gpg cannot read, Postern
 * must not report as decrypted. The keys: gpg reads its agent key files, exports them (with their
 * passphrases, 'def' / 'abc' or none), and openpgp.decryptKey unlocks them here.
 */
describe('GnuPG sample messages: Postern agrees with gpg', () => {
  // An interop peer missing is a failure, not a skip: npm test installs it (scripts/setup-test-deps.sh).
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  const G = join(CORPORA, 'gnupg-tests/openpgp');
  const S = join(G, 'samplemsgs');
  let gpg: GpgHome;
  let decrypt: PgpDecryptionKey[];
  let verifyKeys: PgpVerificationKey[];
  beforeAll(async () => {
    gpg = gpgHome();
    const agentKeys = join(gpg.home, 'private-keys-v1.d');
    mkdirSync(agentKeys, { mode: 0o700 });
    for (const f of readdirSync(join(G, 'privkeys'))) {
      const data = readFileSync(join(G, 'privkeys', f));
      const grip = f.replace(/\.(asc|key)$/, '');
      writeFileSync(join(agentKeys, `${grip}.key`), f.endsWith('.asc') ? spawnSync('gpg', ['--dearmor'], { input: data }).stdout : data);
    }
    for (const k of ['pubdemo.asc', 'pubring.asc', 'samplekeys/rsa-rsa-sample-1.asc', 'pubring.pkr.asc']) gpg.run(['--import', join(G, k)], undefined, true);
    const fprs = gpg.run(['--with-colons', '-K']).stdout.toString().split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]!);
    decrypt = [];
    verifyKeys = [];
    const seen = new Set<string>();
    for (const fpr of fprs) {
      for (const pp of ['', 'def', 'abc']) {
        const r = gpg.run(['--passphrase', pp, '--export-secret-keys', fpr], undefined, true);
        if (r.status !== 0 || !r.stdout.length) continue;
        try {
          let key = await openpgp.readPrivateKey({ binaryKey: new Uint8Array(r.stdout) });
          if (seen.has(key.getFingerprint())) break;
          if (!key.isDecrypted()) key = await openpgp.decryptKey({ privateKey: key, passphrase: pp });
          seen.add(key.getFingerprint());
          decrypt.push(await preparePgpDecryptionKey(Buffer.from(key.write())));
          break;
        } catch {
          // another passphrase, or a key openpgp.js does not read: gpg's verdicts say which
        }
      }
    }
    const pub = gpg.run(['--export']).stdout;
    for (const k of await openpgp.readKeys({ binaryKeys: new Uint8Array(pub) }).catch(() => [])) {
      try {
        verifyKeys.push(await preparePgpVerificationKey(Buffer.from(k.write())));
      } catch {
        // a public key openpgp.js cannot use: a signature by it is then 'unknown'
      }
    }
  }, 120_000);
  afterAll(() => gpg?.close());

  /** Why a sample is not compared, where that is principled. */
  const NOT_COMPARED: [RegExp, string][] = [
    [/\.gpg$|\.sig$/, 'binary duplicate of the .asc sample (or a detached signature over a plain file, which PGP/MIME cannot carry: multipart/signed is tested with gpg in message-gpg.test.ts)'],
    [/^sig-/, 'a detached signature over a plain file, not over a MIME entity: PGP/MIME cannot carry it'],
    [/^revoke-/, 'a key revocation certificate, not a message'],
    [/\.eml$/, 'whole messages from gpg-mail-tube: opened below without a gpg verdict to compare'],
  ];

  /**
   * Where Postern and gpg differ and the cause is not settled: listed, printed, and checked to stay
   * exactly so (a change either way shows up), instead of being left out silently.
   */
  // (The hidden-recipient samples enc-2-keys-hh/hr/rh were here: a retry with the next key read a
  // message whose bytes the first attempt had consumed. Every sample now agrees with gpg.)
  const OPEN_QUESTIONS: Record<string, string> = {};

  it('every sample in samplemsgs/', async () => {
    const rows: string[][] = [];
    const wrong: string[] = [];
    const opts = { keysFor: async () => decrypt, verificationKeysFor: async () => verifyKeys };
    for (const f of readdirSync(S).sort()) {
      const skip = NOT_COMPARED.find(([re]) => re.test(f));
      if (skip) {
        rows.push([f, 'not compared', skip[1]]);
        continue;
      }
      const armored = readFileSync(join(S, f), 'latin1');
      // gpg's verdict on the same keys (no password for the symmetric samples: a gateway has none).
      const g = gpg.run(['--status-fd', '2', '--decrypt'], armored, true);
      const gDecrypted = /\[GNUPG:\] DECRYPTION_OKAY/.test(g.stderr);
      const gGood = /\[GNUPG:\] GOODSIG/.test(g.stderr);
      const gSigned = /\[GNUPG:\] (GOODSIG|BADSIG|ERRSIG|EXPSIG|EXPKEYSIG|REVKEYSIG)/.test(g.stderr);
      const body = armored.includes('-----BEGIN PGP SIGNED MESSAGE-----') || !/\[GNUPG:\] (BEGIN_DECRYPTION|DECRYPTION_FAILED|NO_SECKEY|ENC_TO)/.test(g.stderr) ? 'inline' : 'pgp-mime';
      const msg =
        body === 'inline'
          ? Buffer.from(`From: someone@example.net\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored}`, 'latin1')
          : Buffer.from(`From: someone@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b--\r\n`, 'latin1');
      const r = await pgpOpenMessage(msg, opts);
      const decrypted = r.encryption?.status === 'decrypted';
      const good = r.signatures.some((s) => s.scope === 'whole' && ['valid', 'mismatch', 'untrusted'].includes(s.status));
      const expected = `${gDecrypted ? 'decrypted' : 'not decrypted'}${gSigned ? (gGood ? ', good sig' : ', sig not good') : ''}`;
      const got = `${decrypted ? 'decrypted' : `not decrypted (${r.encryption?.reason ?? 'no encryption'})`}${r.signatures.length ? `, ${r.signatures.map((s) => s.status).join('/')}` : ''}`;
      const same = decrypted === gDecrypted && (!gGood || good) && (gGood || !good);
      const question = OPEN_QUESTIONS[f];
      rows.push([f, expected, `${got}${same ? '' : question ? `  OPEN QUESTION: ${question}` : '  DIFFERS'}`]);
      if (!same && !question) wrong.push(`${f}: gpg ${expected}; Postern ${got}`);
      if (same && question) wrong.push(`${f}: now agrees with gpg — remove it from OPEN_QUESTIONS`);
      // Never the reverse: what gpg cannot decrypt, Postern must not report as decrypted.
      if (decrypted && !gDecrypted) wrong.push(`${f}: Postern decrypted what gpg could not`);
    }
    for (const f of readdirSync(S).filter((x) => x.endsWith('.eml'))) {
      const r = await pgpOpenMessage(readFileSync(join(S, f)), opts);
      rows.push([`${f} (as is)`, '—', `${r.encryption?.status ?? 'no encryption'}${r.signatures.map((s) => ` ${s.scope}:${s.status}`).join('')}`]);
    }
    printTable('GnuPG tests/openpgp/samplemsgs (gpg 2.2 on the same keys is the oracle)', rows);
    expect(wrong, wrong.join('\n')).toEqual([]);
  }, 120_000);
});
