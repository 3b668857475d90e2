/**
 * MTA-STS (RFC 8461) end to end: the policy is served on loopback by a Node HTTPS server with a
 * certificate for mta-sts.example.net from a test CA, reached through the relay's origin hook
 * (the name checked stays mta-sts.example.net), the TXT record comes from a fake zone, and the MX
 * is a private Postfix with a certificate for mx.example.net. Also REQUIRETLS (RFC 8689) to a
 * next hop that announces it.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config, TlsLevel } from '../../src/config/types.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { FakeZone, type ZoneNode } from '../helpers/fake-dns.js';
import { opensslCa, type Issued } from '../helpers/pki-openssl.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix-instance.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import { requireTlsPeer, serverCert, type RequireTlsPeer } from '../helpers/tls-next-hop.js';

const body = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: sts\r\n\r\nhello\r\n');

interface PolicyServer {
  port: number;
  requests: string[];
  /** What the next request gets. */
  respond: { status: number; type: string; text: string; location?: string };
  close(): Promise<void>;
}

describe('relay: MTA-STS and REQUIRETLS', () => {
  const h = useRelayHarness('postern-relay-sts-');
  let pki: { dir: string; cleanup: () => Promise<void> };
  let ca: Issued;
  let mxCert: Issued;
  let stsCert: Issued;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    pki = await tempDir('postern-relay-sts-pki-');
    ca = await opensslCa(pki.dir, 'STS Test CA');
    mxCert = await serverCert(pki.dir, ca, ['mx.example.net']);
    stsCert = await serverCert(pki.dir, ca, ['mta-sts.example.net']);
  });
  afterAll(async () => pki?.cleanup());
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  async function policyServer(text: string): Promise<PolicyServer> {
    const requests: string[] = [];
    const state: PolicyServer = { port: 0, requests, respond: { status: 200, type: 'text/plain', text }, close: async () => undefined };
    const server = https.createServer({ key: await readFile(stsCert.key), cert: await readFile(stsCert.cert) }, (req, res) => {
      requests.push(`${req.headers.host} ${req.url}`);
      const r = state.respond;
      res.writeHead(r.status, { 'content-type': r.type, ...(r.location ? { location: r.location } : {}) });
      res.end(r.text);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    state.port = (server.address() as AddressInfo).port;
    state.close = () => new Promise<void>((res) => server.close(() => res()));
    stops.push(() => state.close());
    return state;
  }

  async function postfix(cert: Issued = mxCert): Promise<PostfixInstance> {
    const p = await startPostfix({ tls: { cert: cert.cert, key: cert.key } });
    stops.push(() => p.stop());
    return p;
  }

  async function start(mxPort: number, tls: TlsLevel, zone: Record<string, ZoneNode>, policy?: PolicyServer, relay: Partial<Config['relay']> = {}): Promise<FakeZone> {
    const resolver = new FakeZone({ 'example.net': { mx: [[10, 'mx.example.net']] }, 'mx.example.net': { a: ['127.0.0.1'] }, ...zone });
    const routes = [{ pattern: 'example.net', target: { kind: 'mx' as const, tls } }, { pattern: '*', target: { kind: 'maildir' as const, path: join(h.dir, 'other') } }];
    const config = testConfig(h.dir, { relay: { routes, retry: [3_600_000], tls_ca_file: ca.cert, ...relay } as Config['relay'] });
    await h.start(config, { resolver, mxPort, ...(policy ? { stsOrigin: () => ({ host: '127.0.0.1', port: policy.port }) } : {}) });
    return resolver;
  }

  const txt = (id: string): ZoneNode => ({ txt: [['v=STSv1; id=', id, ';']] });
  const policyText = (mode: string, mx: string[]) => ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), 'max_age: 86400', ''].join('\r\n');
  const delivered = (n: number) => waitUntil(async () => h.events('relay.delivered').filter((e) => String(e.to).includes('example.net')).length >= n, 15_000, `${n} delivered`);

  it('enforce: delivers to a matching MX with a verified certificate; the cached policy is not fetched again', async () => {
    const p = await postfix();
    const policy = await policyServer(policyText('enforce', ['*.example.net']));
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('20261203') }, policy);
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered(1);
    await queueMessage(h.spool, envelope('alice@example.org', ['carol@example.net']), body);
    await p.waitForMessages(2);
    await delivered(2);
    expect(h.events('relay.delivered').map((e) => String(e.tls).split(' ').at(-1))).toEqual(['sts', 'sts']);
    expect(policy.requests).toEqual(['mta-sts.example.net /.well-known/mta-sts.txt']);
    expect(h.events('relay.tls_policy')[0]).toMatchObject({ domain: 'example.net', policy: 'sts enforce id=20261203' });
  });

  it('enforce: an MX host the policy does not name gets nothing; deferred and counted', async () => {
    const p = await postfix();
    const policy = await policyServer(policyText('enforce', ['mx2.example.net']));
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy);
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 15_000, 'deferred');
    expect(h.events('relay.deferred')[0]).toMatchObject({ outcome: 'deferred_tls_policy', dsn: '4.7.5', reason: 'MX host mx.example.net does not match the MTA-STS policy of example.net' });
    expect(h.events('relay.tls_failure')[0]).toMatchObject({ policyType: 'sts', policyDomain: 'example.net', result: 'validation-failure', failures: 1 });
    expect(p.messages()).toEqual([]);
  });

  it('enforce: an MX whose certificate does not chain to a trusted CA defers, nothing sent', async () => {
    const otherCa = await opensslCa(pki.dir, 'MX Only CA');
    const p = await postfix(await serverCert(pki.dir, otherCa, ['mx.example.net']));
    const policy = await policyServer(policyText('enforce', ['mx.example.net']));
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy);
    const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 15_000, 'deferred');
    expect(h.events('relay.deferred')[0]).toMatchObject({ outcome: 'deferred_tls_auth', dsn: '4.7.5' });
    expect(String(h.events('relay.deferred')[0]!.reason)).toMatch(/^Server certificate not trusted/);
    expect(h.events('relay.tls_failure')[0]).toMatchObject({ policyType: 'sts', policyDomain: 'example.net', result: 'certificate-not-trusted' });
    expect(p.messages()).toEqual([]);
  });

  it('a policy server whose certificate does not verify gives no policy (RFC 8461 §5.1): delivered as may', async () => {
    const p = await postfix();
    const policy = await policyServer(policyText('enforce', ['mx2.example.net']));
    const otherCa = await opensslCa(pki.dir, 'Unrelated Policy CA');
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy, { tls_ca_file: otherCa.cert });
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered(1);
    // The handshake failed before any request: the enforce policy was never seen.
    expect(policy.requests).toEqual([]);
    expect(h.events('relay.tls_policy')).toEqual([]);
    expect(h.events('relay.delivered')[0]!.tls).toMatch(/ untrusted$/);
  });

  it('testing: a mismatching MX still gets the mail, and the failure is reported', async () => {
    const p = await postfix();
    const policy = await policyServer(policyText('testing', ['mx2.example.net']));
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy);
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered(1);
    expect(h.events('relay.tls_failure')[0]).toMatchObject({ policyType: 'sts', policyDomain: 'example.net', testing: true });
  });

  it('a redirect is not followed: no policy, delivered as may', async () => {
    const p = await postfix();
    const policy = await policyServer('');
    policy.respond = { status: 301, type: 'text/plain', text: '', location: 'https://elsewhere.example/.well-known/mta-sts.txt' };
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy);
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), body);
    await p.waitForMessages(1);
    await delivered(1);
    expect(policy.requests).toHaveLength(1);
    expect(h.events('relay.tls_policy')).toEqual([]);
  });

  it('TLS-Required: No sets the domain\'s policy aside (RFC 8689 §5)', async () => {
    const p = await postfix();
    const policy = await policyServer(policyText('enforce', ['mx2.example.net']));
    await start(p.port, 'sts', { '_mta-sts.example.net': txt('1') }, policy);
    const optOut = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nTLS-Required:  no\r\nSubject: tls report\r\n\r\nyour TLS is broken\r\n');
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), optOut);
    await p.waitForMessages(1);
    expect(policy.requests).toEqual([]);
  });

  describe('REQUIRETLS', () => {
    let peer: RequireTlsPeer;

    it('goes to an authenticated next hop that announces it, with REQUIRETLS on MAIL FROM', async () => {
      peer = await requireTlsPeer(mxCert);
      stops.push(() => peer.close());
      await start(peer.port, 'may', {});
      await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net'], { requireTls: true }), body);
      await waitUntil(async () => peer.bodies.length === 1, 15_000, 'delivered');
      expect(peer.mail).toEqual(['MAIL FROM:<alice@example.org> REQUIRETLS']);
      await delivered(1);
      expect(h.events('relay.delivered')[0]!.tls).toMatch(/ verified$/);
    });

    it('never goes to a next hop whose certificate does not verify, even at level may', async () => {
      peer = await requireTlsPeer(mxCert);
      stops.push(() => peer.close());
      const other = await opensslCa(pki.dir, 'Unrelated CA');
      await start(peer.port, 'may', {}, undefined, { tls_ca_file: other.cert });
      const name = await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net'], { requireTls: true }), body);
      await waitUntil(async () => (await h.spool.list('deferred')).includes(name), 15_000, 'deferred');
      expect(String(h.events('relay.deferred')[0]!.reason)).toMatch(/^Server certificate not trusted/);
      expect(peer.mail).toEqual([]);
      expect(peer.bodies).toEqual([]);
    });
  });
});
