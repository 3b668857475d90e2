/**
 * Header protection inbound (RFC 9788), opened by Postern's own S/MIME and OpenPGP paths:
 * - messages in the shapes of RFC 9788's examples (Appendix C), made by openssl cms with the RFC
 *   9216 keys of the shared corpus (Alice signs, Bob decrypts). The RFC's own example files are
 *   not in the corpus and this machine cannot fetch them, so the messages are built here from the
 *   RFC's text: hp="clear" signed-only (multipart/signed and opaque signed-data), hp="cipher"
 *   encrypted only with a legacy display element and HP-Outer, signed then encrypted;
 * - Thunderbird's own protected-headers="v1" mail from the corpus (outer Subject "..."), its
 *   multi-From message among them (the one verdict header protection changes: mismatch → valid).
 * Each read as it came (the protected fields in force, the hidden Subject restored), then with its
 * outer header tampered (a Reply-To added: replaced, kept as X-Postern-Outer-Reply-To), a forged
 * outer From: (the signature bound again to the protected one), and signed by nobody we trust (ignored).
 */
import { createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.js';
import { pgpOpenMessage, pgpResultHeaders, preparePgpDecryptionKey, preparePgpVerificationKey, type PgpDecryptionKey, type PgpVerificationKey } from '../../../src/openpgp/index.js';
import { openMessage, prepareDecryptionKey, prepareTrustStore, resultHeaders, type SmimeDecryptionKey, type TrustStore } from '../../../src/smime/index.js';
import { openProtected } from '../../../src/worker/header-protection.js';
import { tempDir } from '../../helpers/config.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../../helpers/pki-openssl.js';

const CORPORA = join(import.meta.dirname, '../../../../shared/corpora');
const RFC9216 = join(CORPORA, 'rfc9216-smime-example-keys');
const KEYS = join(RFC9216, 'keys-and-cms-from-davidi67-examples-cms/certs-and-keys');
const CA = join(RFC9216, 'certs-from-wbond-certvalidator/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem');
const TB = join(CORPORA, 'thunderbird-comm-central/browser-openpgp-data');

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const der = async (pemFile: string) => Buffer.from((await readFile(pemFile, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const headOf = (m: Buffer) => m.toString('latin1').slice(0, m.indexOf('\r\n\r\n') + 2);
const fieldsOf = (h: [string, string][], name: string) => h.filter(([n]) => n === name).map(([, v]) => v);

const DATE = new Date().toUTCString();
const OUTER = `From: Alice Lovelace <alice@smime.example>\r\nTo: Bob Babbage <bob@smime.example>\r\nSubject: The FooCorp contract\r\nDate: ${DATE}\r\nMessage-ID: <hp-rfc9788@smime.example>\r\n`;
/** The protected fields as RFC 9788's examples write them, after the root part's Content-Type. */
const PROTECTED = OUTER;
const HP_OUTER = OUTER.replace('Subject: The FooCorp contract', 'Subject: [...]').split('\r\n').filter(Boolean).map((l) => `HP-Outer: ${l}\r\n`).join('');

describe('header protection inbound: RFC 9788 shapes (RFC 9216 keys, openssl cms) and Thunderbird v1 mail', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let trust: TrustStore;
  let keys: SmimeDecryptionKey[];
  let rogueCa: Issued, rogueAlice: Issued;
  let n = 0;
  const log = silentLogger();

  /** openssl cms with IN/OUT files; the output with CRLF line ends. */
  async function cms(args: string[], input: string): Promise<string> {
    const i = join(dir, `in-${n}`);
    const o = join(dir, `out-${n++}`);
    await writeFile(i, input, 'latin1');
    await run('openssl', ['cms', ...args.map((a) => (a === 'IN' ? i : a === 'OUT' ? o : a))]);
    return crlf(await readFile(o, 'latin1'));
  }
  const alice = ['-signer', join(KEYS, 'lamps-alice.crt'), '-inkey', join(KEYS, 'lamps-alice.p8.pem')];
  const sign = (payload: string, opts: string[] = alice, opaque = false) => cms(['-sign', ...(opaque ? ['-nodetach'] : []), '-in', 'IN', '-out', 'OUT', ...opts], payload);
  const encrypt = (entity: string) => cms(['-encrypt', '-aes256', '-in', 'IN', '-out', 'OUT', join(KEYS, 'lamps-bob.encrypt.crt')], entity);
  /** A whole message: the outer header, then openssl's output (its MIME-Version and entity). */
  const mail = (outer: string, cmsOut: string) => Buffer.from(outer + cmsOut, 'latin1');
  const openS = (m: Buffer) =>
    openProtected(m, async (x) => {
      const r = await openMessage(x, { trust, keysFor: async () => keys });
      return { result: r, headers: resultHeaders(r) };
    }, 'smime', log, 'test');

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-hp-inbound-'));
    trust = prepareTrustStore([await der(CA)], []);
    const bobKey = createPrivateKey(await readFile(join(KEYS, 'lamps-bob.decrypt.p8.pem'), 'utf8')).export({ format: 'der', type: 'pkcs8' });
    keys = [prepareDecryptionKey(await der(join(KEYS, 'lamps-bob.encrypt.crt')), bobKey)];
    rogueCa = await opensslCa(dir, 'Rogue');
    rogueAlice = await opensslMailbox(dir, rogueCa, 'alice@smime.example');
  }, 60_000);
  afterAll(async () => cleanup?.());

  describe('signed only, hp="clear"', () => {
    const payload = `Content-Type: text/plain; charset="us-ascii"; hp="clear"\r\n${PROTECTED}\r\nThe contract is attached in my next mail.\r\n`;

    it('multipart/signed and opaque signed-data read as they came: protected by the signature, nothing changed', async () => {
      for (const opaque of [false, true]) {
        const m = mail(OUTER, await sign(payload, alice, opaque));
        const { result, headers } = await openS(m);
        expect(fieldsOf(headers, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=alice@smime.example']);
        expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=smime; form=rfc9788; hp=clear; protected-by=signature']);
        expect(headOf(result.message)).not.toMatch(/X-Postern-Outer/);
      }
    });

    it('a Reply-To added outside and a changed Subject are replaced by the protected fields, the outer ones kept', async () => {
      const m = mail(OUTER.replace('Subject: The FooCorp contract', 'Subject: URGENT: wire the money') + 'Reply-To: Mallory <mallory@evil.example>\r\n', await sign(payload));
      const { result, headers } = await openS(m);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['replaced; method=smime; form=rfc9788; hp=clear; protected-by=signature; replaced="Reply-To,Subject"']);
      const head = headOf(result.message);
      expect(head).not.toMatch(/^Reply-To:/m);
      expect(head).toMatch(/^Subject: The FooCorp contract\r$/m);
      expect(head).toMatch(/^X-Postern-Outer-Reply-To: Mallory <mallory@evil\.example>\r$/m);
      expect(head).toMatch(/^X-Postern-Outer-Subject: URGENT: wire the money\r$/m);
    });

    it('a forged outer From: — the signature is bound again to the protected From: it covers, which replaces the forged one', async () => {
      const m = mail(OUTER.replace('From: Alice Lovelace <alice@smime.example>', 'From: CEO <ceo@smime.example>'), await sign(payload));
      const { result, headers } = await openS(m);
      expect(fieldsOf(headers, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=alice@smime.example']);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['replaced; method=smime; form=rfc9788; hp=clear; protected-by=signature; replaced="From"']);
      expect(headOf(result.message)).toMatch(/^From: Alice Lovelace <alice@smime\.example>\r$/m);
      expect(headOf(result.message)).toMatch(/^X-Postern-Outer-From: CEO <ceo@smime\.example>\r$/m);
    });

    it('signed by a certificate nobody here trusts, or claiming an author the signer is not: the protected fields are ignored, the outer header stays', async () => {
      const rogue = ['-signer', rogueAlice.cert, '-inkey', rogueAlice.key];
      const m = mail(OUTER + 'Reply-To: mallory@evil.example\r\n', await sign(payload, rogue));
      const { result, headers } = await openS(m);
      expect(fieldsOf(headers, 'X-Postern-Signature')[0]).toMatch(/^untrusted; /);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['ignored; method=smime; form=rfc9788; hp=clear; differs="Reply-To"; reason="neither decryption nor a valid signature covers the protected header fields"']);
      expect(result.message.equals(m)).toBe(true);
      // Alice signs a payload naming Carol as author, sent with Alice outside: Alice's signature cannot make Carol the author.
      const carol = payload.replace('From: Alice Lovelace <alice@smime.example>', 'From: Carol <carol@smime.example>');
      const c = mail(OUTER, await sign(carol));
      const r2 = await openS(c);
      expect(fieldsOf(r2.headers, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=alice@smime.example']);
      expect(fieldsOf(r2.headers, 'X-Postern-Header-Protection')).toEqual(['ignored; method=smime; form=rfc9788; hp=clear; differs="From"; reason="no valid signature covers the protected header fields as the protected From: shows them"']);
      expect(headOf(r2.result.message)).toMatch(/^From: Alice Lovelace <alice@smime\.example>\r$/m);
    });
  });

  describe('encrypted, hp="cipher"', () => {
    const obscured = OUTER.replace('Subject: The FooCorp contract', 'Subject: [...]');
    const legacyPart = `Content-Type: text/plain; charset="us-ascii"; hp="cipher"; hp-legacy-display="1"\r\n${PROTECTED}${HP_OUTER}\r\nSubject: The FooCorp contract\r\n\r\nThe terms are fine with me.\r\n`;

    it('encrypted only, with a legacy display element: decrypted, the Subject restored as the sender hid it (HP-Outer), integrity stated', async () => {
      const { result, headers } = await openS(mail(obscured, await encrypt(legacyPart)));
      expect(fieldsOf(headers, 'X-Postern-Encryption')[0]).toMatch(/^decrypted; method=smime; cipher=AES-256-CBC; .*integrity=unauthenticated$/);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=smime; form=rfc9788; hp=cipher; protected-by=encryption; integrity=unauthenticated; restored="Subject"']);
      const head = headOf(result.message);
      expect(head).toMatch(/^Subject: The FooCorp contract\r$/m);
      expect(head).toMatch(/^X-Postern-Outer-Subject: \[\.\.\.\]\r$/m);
      expect(result.message.toString('latin1')).toContain('The terms are fine with me.');
    });

    it('signed then encrypted, multipart/alternative with the element in both parts; an outer Subject changed on the way is flagged, not restored', async () => {
      const alt = `Content-Type: multipart/alternative; boundary="alt"; hp="cipher"\r\n${PROTECTED}${HP_OUTER}\r\n--alt\r\nContent-Type: text/plain; charset=us-ascii; hp-legacy-display=1\r\n\r\nSubject: The FooCorp contract\r\n\r\nFine.\r\n--alt\r\nContent-Type: text/html; charset=us-ascii; hp-legacy-display=1\r\n\r\n<html><body><div class="header-protection-legacy-display"><pre>Subject: The FooCorp contract</pre></div><p>Fine.</p></body></html>\r\n--alt--\r\n`;
      const sealed = await encrypt(await sign(alt));
      const ok = await openS(mail(obscured, sealed));
      expect(fieldsOf(ok.headers, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=alice@smime.example']);
      expect(fieldsOf(ok.headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=smime; form=rfc9788; hp=cipher; protected-by=encryption,signature; restored="Subject"']);
      const changed = await openS(mail(OUTER.replace('Subject: The FooCorp contract', 'Subject: Re: invoice') + 'Cc: mallory@evil.example\r\n', sealed));
      expect(fieldsOf(changed.headers, 'X-Postern-Header-Protection')).toEqual(['replaced; method=smime; form=rfc9788; hp=cipher; protected-by=encryption,signature; replaced="Cc,Subject"']);
      expect(headOf(changed.result.message)).not.toMatch(/^Cc:/m);
      expect(headOf(changed.result.message)).toMatch(/^X-Postern-Outer-Cc: mallory@evil\.example\r$/m);
    });
  });

  describe("Thunderbird's protected-headers=\"v1\" (OpenPGP, from the corpus)", () => {
    let decrypt: PgpDecryptionKey[];
    let bob: PgpVerificationKey;
    const openP = (m: Buffer) =>
      openProtected(m, async (x) => {
        const r = await pgpOpenMessage(x, { keysFor: async () => decrypt, verificationKeysFor: async () => [bob] });
        return { result: r, headers: pgpResultHeaders(r) };
      }, 'pgp', log, 'test');
    const eml = async (name: string) => Buffer.from(crlf(await readFile(join(TB, 'eml', name), 'latin1')), 'latin1');

    beforeAll(async () => {
      decrypt = [await preparePgpDecryptionKey(await readFile(join(TB, 'keys/alice@openpgp.example-0xf231550c4f47e38e-secret.asc')))];
      bob = await preparePgpVerificationKey(await readFile(join(TB, 'keys/bob@openpgp.example-0xfbfcc82a015e7330-pub.asc')), { trusted: true });
    });

    it('signed and encrypted, outer Subject "...": decrypted, the protected Subject restored', async () => {
      const { result, headers } = await openP(await eml('signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e.eml'));
      expect(fieldsOf(headers, 'X-Postern-Signature')[0]).toMatch(/^valid; method=pgp; signer=bob@openpgp\.example/);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=pgp; form=v1; protected-by=encryption,signature; restored="Subject"']);
      expect(headOf(result.message)).toMatch(/^Subject: Signed Encrypted\r$/m);
    });

    it('unsigned and encrypted, with a Reply-To and another To put outside: both replaced (the reply goes to the author)', async () => {
      const m = await eml('unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml');
      const tampered = Buffer.from(m.toString('latin1').replace('To: alice@openpgp.example\r\n', 'To: alice@openpgp.example, mallory@evil.example\r\nReply-To: mallory@evil.example\r\n'), 'latin1');
      const { result, headers } = await openP(tampered);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['replaced; method=pgp; form=v1; protected-by=encryption; restored="Subject"; replaced="To,Reply-To"']);
      const head = headOf(result.message);
      expect(head).toMatch(/^To: alice@openpgp\.example\r$/m);
      expect(head).not.toMatch(/^Reply-To:/m);
      expect(head).toMatch(/^X-Postern-Outer-Reply-To: mallory@evil\.example\r$/m);
      expect(head).toMatch(/^Subject: Unsigned Encrypted\r$/m);
    });

    it('two From: fields outside (Eve added), one inside: the protected From: is the author, the signature is bound to it', async () => {
      // Thunderbird (which did not read protected From: then) says "mismatch" for this message, and
      // so does Postern's opening alone; with header protection the delivered message shows only
      // the signed From: — Bob's, whose signature it is — and keeps Eve's outside as X-Postern-Outer-From.
      const m = await eml('signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-multi-from.eml');
      const alone = await pgpOpenMessage(m, { keysFor: async () => decrypt, verificationKeysFor: async () => [bob] });
      expect(alone.signatures.map((s) => s.status)).toEqual(['mismatch']);
      const { result, headers } = await openP(m);
      expect(fieldsOf(headers, 'X-Postern-Signature')[0]).toMatch(/^valid; method=pgp; signer=bob@openpgp\.example/);
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['replaced; method=pgp; form=v1; protected-by=encryption,signature; restored="Subject"; replaced="From"']);
      const head = headOf(result.message);
      expect(head.match(/^From: .*$/gm)).toEqual(['From: Bob Babbage <bob@openpgp.example>']);
      expect(head.match(/^X-Postern-Outer-From: .*$/gm)).toEqual(['X-Postern-Outer-From: Eve <eve@openpgp.example>', 'X-Postern-Outer-From: Bob Babbage <bob@openpgp.example>']);
    });

    it('signed only (v1 inside multipart/signed): protected by the signature as it came', async () => {
      const { headers } = await openP(await eml('signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml'));
      expect(fieldsOf(headers, 'X-Postern-Header-Protection')).toEqual(['protected; method=pgp; form=v1; protected-by=signature']);
    });
  });
});
