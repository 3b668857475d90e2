/**
 * The relay's TLS levels against a real Postfix next hop (smtpd_tls_* with certificates openssl
 * made in the test): verify delivers only with the test CA trusted and the MX name in the
 * certificate; encrypt takes a self-signed certificate but never sends in clear; DANE checks the
 * certificate against TLSA records of a fake resolver that marks them validated; REQUIRETLS mail
 * is never handed to Postfix, which does not announce REQUIRETLS, and bounces with 5.7.30.
 * Postfix's own log and maildir are the oracle for what reached it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config, TlsLevel } from '../../src/config/types.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { FakeZone, type ZoneNode } from '../helpers/fake-dns.js';
import { opensslCa, run, type Issued } from '../helpers/pki-openssl.js';
import { startPostfix, type PostfixInstance, type PostfixOptions } from '../helpers/postfix-instance.js';
import { queueEntryViews } from '../../src/relay/index.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import { serverCert, spkiSha256 } from '../helpers/tls-next-hop.js';

const body = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: tls levels\r\n\r\nhello\r\n');

describe('relay: TLS levels toward a Postfix next hop', () => {
  const h = useRelayHarness('postern-relay-tls-');
  let pki: { dir: string; cleanup: () => Promise<void> };
  let ca: Issued;
  let mxCert: Issued;
  let wrongName: Issued;
  let selfSigned: Issued;
  let chainFile: string;
  const postfixes: PostfixInstance[] = [];

  beforeAll(async () => {
    pki = await tempDir('postern-relay-tls-pki-');
    ca = await opensslCa(pki.dir, 'Next Hop Test CA');
    mxCert = await serverCert(pki.dir, ca, ['mx.example.net']);
    wrongName = await serverCert(pki.dir, ca, ['other.example.com']);
    const key = join(pki.dir, 'self.key');
    const cert = join(pki.dir, 'self.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=mx.example.net', '-days', '2', '-keyout', key, '-out', cert]);
    selfSigned = { key, cert };
    chainFile = join(pki.dir, 'mx-chain.pem');
    await writeFile(chainFile, Buffer.concat([await readFile(mxCert.cert), await readFile(ca.cert)]));
  });
  afterAll(async () => pki?.cleanup());
  afterEach(async () => {
    for (const p of postfixes.splice(0)) await p.stop();
  });

  async function postfix(opts: PostfixOptions): Promise<PostfixInstance> {
    const p = await startPostfix(opts);
    postfixes.push(p);
    return p;
  }

  /** example.net's MX is mx.example.net at 127.0.0.1, where Postfix listens (on its own port). */
  async function start(p: PostfixInstance, tls: TlsLevel, relay: Partial<Config['relay']> = {}, zone: Record<string, ZoneNode> = {}): Promise<FakeZone> {
    const resolver = new FakeZone({
      'example.net': { mx: [[10, 'mx.example.net']] },
      'mx.example.net': { a: ['127.0.0.1'] },
      ...zone,
    });
    const config = testConfig(h.dir, { relay: { routes: [{ pattern: 'example.net', target: { kind: 'mx', tls } }, { pattern: '*', target: { kind: 'maildir', path: join(h.dir, 'bounces') } }], retry: [3_600_000], ...relay } as Config['relay'] });
    await h.start(config, { resolver, mxPort: p.port });
    return resolver;
  }

  const deferred = async (name: string) => waitUntil(async () => (await h.spool.list('deferred')).includes(name), 15_000, 'deferred');
  const delivered = () => waitUntil(async () => h.events('relay.delivered').some((e) => String(e.to).includes('example.net')), 15_000, 'delivered');

  it('verify: delivers when the certificate chains to relay.tls_ca_file and names the MX host', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    await start(p, 'verify', { tls_ca_file: ca.cert });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    const [m] = await p.waitForMessages(1);
    expect(m!.raw.toString()).toContain('Subject: tls levels');
    await delivered();
    expect(h.events('relay.delivered')[0]).toMatchObject({ to: 'mx (tls verify) example.net', tls: expect.stringMatching(/^TLSv1\.[23] \S+ verified$/) });
    // Postfix saw the session encrypted (its smtpd logs the TLS it established).
    await p.waitForLog(/TLS connection established from/);
  });

  it('queue show: a recipient delivered while another waits keeps the TLS of its delivery in the entry', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    const resolver = new FakeZone({ 'example.net': { mx: [[10, 'mx.example.net']] }, 'mx.example.net': { a: ['127.0.0.1'] }, 'down.example': { fail: { mx: 'ESERVFAIL' } } });
    const routes = [{ pattern: 'example.net', target: { kind: 'mx' as const, tls: 'verify' as const } }, { pattern: 'down.example', target: { kind: 'mx' as const, tls: 'may' as const } }];
    await h.start(testConfig(h.dir, { relay: { routes, retry: [3_600_000], tls_ca_file: ca.cert } as Config['relay'] }), { resolver, mxPort: p.port });
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net', 'carol@down.example']), body);
    await deferred(name);
    const [view] = await queueEntryViews(h.spool, name.split('.')[0]!);
    const bob = view!.recipients!.find((r) => r.address === 'bob@example.net')!;
    expect(bob).toMatchObject({ state: 'delivered', remote: 'mx.example.net', tls: expect.stringMatching(/^TLSv1\.[23] \S+ verified$/) });
    expect(view!.recipients!.find((r) => r.address === 'carol@down.example')!.tls).toBeUndefined();
  });

  it('verify: defers without the CA, and Postfix gets no message', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    await start(p, 'verify');
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await deferred(name);
    const e = h.events('relay.deferred')[0]!;
    expect(e).toMatchObject({ outcome: 'deferred_tls_auth', dsn: '4.7.5' });
    expect(String(e.reason)).toMatch(/^Server certificate not trusted \(.+\) \(host mx\.example\.net\[127\.0\.0\.1\]\)$/);
    expect(p.messages()).toEqual([]);
    expect(p.log()).not.toMatch(/MAIL FROM|from=<alice@example.org>/);
  });

  it('verify: defers when the certificate is trusted but names another host', async () => {
    const p = await postfix({ tls: { cert: wrongName.cert, key: wrongName.key } });
    await start(p, 'verify', { tls_ca_file: ca.cert });
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await deferred(name);
    expect(String(h.events('relay.deferred')[0]!.reason)).toMatch(/^Server certificate not verified \(mx\.example\.net is not a name of the certificate\)/);
    expect(p.messages()).toEqual([]);
  });

  it('verify on an smtp:// route checks the host the route names, not an MX name', async () => {
    const ipCert = await serverCert(pki.dir, ca, ['127.0.0.1']);
    const p = await postfix({ tls: { cert: ipCert.cert, key: ipCert.key } });
    const routes = (tls: 'verify') => [{ pattern: '*', target: { kind: 'smtp' as const, host: '127.0.0.1', port: p.port, tls } }];
    await h.start(testConfig(h.dir, { relay: { routes: routes('verify'), retry: [3_600_000], tls_ca_file: ca.cert } as Config['relay'] }));
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await waitUntil(async () => h.events('relay.delivered').length > 0, 15_000, 'delivered');
    expect(h.events('relay.delivered')[0]).toMatchObject({ to: `smtp://127.0.0.1:${p.port} (tls verify)`, tls: expect.stringMatching(/ verified$/) });
  });

  it('verify on an smtp:// route defers when the certificate names another host', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    await h.start(testConfig(h.dir, { relay: { routes: [{ pattern: '*', target: { kind: 'smtp', host: '127.0.0.1', port: p.port, tls: 'verify' } }], retry: [3_600_000], tls_ca_file: ca.cert } as Config['relay'] }));
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await deferred(name);
    expect(String(h.events('relay.deferred')[0]!.reason)).toBe(`Server certificate not verified (127.0.0.1 is not a name of the certificate) (host 127.0.0.1[127.0.0.1])`);
    expect(p.messages()).toEqual([]);
  });

  it('encrypt: delivers to a self-signed certificate, recorded as untrusted', async () => {
    const p = await postfix({ tls: { cert: selfSigned.cert, key: selfSigned.key } });
    await start(p, 'encrypt');
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered();
    expect(h.events('relay.delivered')[0]!.tls).toMatch(/^TLSv1\.[23] \S+ untrusted$/);
  });

  it('encrypt: a next hop without STARTTLS defers, nothing in clear', async () => {
    const p = await postfix({});
    await start(p, 'encrypt');
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await deferred(name);
    expect(String(h.events('relay.deferred')[0]!.reason)).toMatch(/TLS is required, but was not offered by host mx\.example\.net/);
    expect(p.messages()).toEqual([]);
  });

  it('may: a chain to a trusted CA is logged as trusted (may checks no name, as Postfix\'s "Trusted TLS connection")', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    await start(p, 'may', { tls_ca_file: ca.cert });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered();
    expect(h.events('relay.delivered')[0]!.tls).toMatch(/^TLSv1\.[23] \S+ trusted$/);
  });

  describe('dane', () => {
    const secureZone = (tlsa: ZoneNode) => ({
      'example.net': { mx: [[10, 'mx.example.net']] as [number, string][], secure: true },
      '_25._tcp.mx.example.net': { secure: true, ...tlsa },
    });

    it('a validated DANE-EE 3 1 1 record that matches: delivered, verification dane (no CA needed)', async () => {
      const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
      await start(p, 'dane', {}, secureZone({ tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: await spkiSha256(mxCert.cert) }] }));
      await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
      await p.waitForMessages(1);
      await delivered();
      expect(h.events('relay.delivered')[0]!.tls).toMatch(/ dane$/);
      expect(h.events('relay.tls_policy')[0]).toMatchObject({ domain: 'example.net', policy: 'dane' });
    });

    it('a validated DANE-TA 2 1 1 record of the CA, with the chain sent: delivered', async () => {
      const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key, chain: chainFile } });
      await start(p, 'dane', {}, secureZone({ tlsa: [{ usage: 2, selector: 1, matchingType: 1, data: await spkiSha256(ca.cert) }] }));
      await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
      await p.waitForMessages(1);
      await delivered();
      expect(h.events('relay.delivered')[0]!.tls).toMatch(/ dane$/);
    });

    it('a validated record that does not match: deferred with "TLSA record mismatch", counted for the domain', async () => {
      const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
      await start(p, 'dane', {}, secureZone({ tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: randomBytes(32) }] }));
      const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
      await deferred(name);
      expect(String(h.events('relay.deferred')[0]!.reason)).toMatch(/^TLSA record mismatch \(host mx\.example\.net\[127\.0\.0\.1\]\)$/);
      expect(h.events('relay.tls_failure')[0]).toMatchObject({ policyType: 'tlsa', policyDomain: 'example.net', result: 'tlsa-invalid', failures: 1 });
      expect(p.messages()).toEqual([]);
    });

    it('records that are not validated (no AD bit): as may, delivered untrusted', async () => {
      const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
      await start(p, 'dane', {}, {
        'example.net': { mx: [[10, 'mx.example.net']], secure: false },
        '_25._tcp.mx.example.net': { tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: randomBytes(32) }], secure: false },
      });
      await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
      await p.waitForMessages(1);
      await delivered();
      expect(h.events('relay.delivered')[0]!.tls).toMatch(/ untrusted$/);
    });

    it('a TLSA lookup that fails (SERVFAIL) defers: never a weaker level', async () => {
      const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
      await start(p, 'dane', {}, secureZone({ fail: { tlsa: 'ESERVFAIL' } }));
      const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
      await deferred(name);
      expect(h.events('relay.deferred')[0]).toMatchObject({ outcome: 'deferred_tls_policy', dsn: '4.7.5', reason: 'TLSA lookup error for mx.example.net:25' });
      expect(p.messages()).toEqual([]);
    });
  });

  it('REQUIRETLS: a verified Postfix that does not announce REQUIRETLS gets nothing; the message bounces 5.7.30', async () => {
    const p = await postfix({ tls: { cert: mxCert.cert, key: mxCert.key } });
    await start(p, 'may', { tls_ca_file: ca.cert });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net'], { requireTls: true }), body);
    await waitUntil(async () => h.events('relay.bounce').length > 0, 15_000, 'bounce');
    const r = (h.events('relay.bounce')[0]!.recipients as Record<string, unknown>[])[0]!;
    expect(r).toMatchObject({ address: 'bob@example.net', outcome: 'bounced_requiretls', dsn: '5.7.30' });
    expect(String(r.reply)).toBe('REQUIRETLS support required, but not offered by host mx.example.net[127.0.0.1]');
    expect(p.messages()).toEqual([]);
  });
});
