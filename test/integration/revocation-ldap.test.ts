/**
 * CRLs at ldap:// distribution points, from a real OpenLDAP slapd on loopback holding what
 * `openssl ca -gencrl` made (certificateRevocationList;binary, deltaRevocationList;binary on a
 * cRLDistributionPoint entry): the checker reads them through the directory's LDAP client, also
 * for host-less URLs (from the configured servers) and a delta over LDAP; hostile servers (an
 * endless answer, garbage) and URLs cost a reason, never the process. End to end: a signed mail
 * whose signer a CRL found over LDAP lists is delivered with the revoked verdict.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapServerConfig } from '../../src/config/types.js';
import { ldapCrlFetcher } from '../../src/directory/index.js';
import { nodeHttpFetcher, RevocationChecker, type CertInfo } from '../../src/pki/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { makeTestPki, type TestPki } from '../helpers/ocsp-pki.js';
import { run } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';
import { startSlapd, type Slapd } from '../helpers/slapd.js';

const SUFFIX = 'dc=example,dc=com';
const ROOT_DN = `cn=Revocation Test Root,${SUFFIX}`;
const DELTA_DN = `cn=Delta Point,${SUFFIX}`;
/** RFC 4516 form of a DN for a URL inside an openssl config (commas would split the name list). */
const urlDn = (dn: string) => dn.replace(/ /g, '%20').replace(/,/g, '%2C');

describe('revocation: ldap:// distribution points against slapd', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let slapd: Slapd;
  let pki: TestPki;
  let lena: CertInfo, olaf: CertInfo, hana: CertInfo, dora: CertInfo;
  const hostless = `ldap:///${urlDn(ROOT_DN)}?certificateRevocationList;binary`;
  let server: LdapServerConfig;
  const checker = (ldapOpts: Parameters<typeof ldapCrlFetcher>[0] = {}, o: Partial<ConstructorParameters<typeof RevocationChecker>[0]> = {}) =>
    new RevocationChecker({ fetch: nodeHttpFetcher(), ldap: ldapCrlFetcher(ldapOpts), timeoutMs: 2_000, failureTtlMs: 0, ocsp: false, ...o });
  const at = (c: CertInfo, url: string): CertInfo => ({ ...c, crlUrls: [url], ocspUrls: [] });
  const b64 = (der: Buffer) => der.toString('base64');

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-rev-ldap-'));
    slapd = await startSlapd({ suffix: SUFFIX });
    const rootUrl = `${slapd.url}/${urlDn(ROOT_DN)}?certificateRevocationList;binary`;
    server = {
      url: slapd.url, starttls: false, tls: { reject_unauthorized: true }, bind_dn: slapd.rootDn, password_env: 'POSTERN_TEST_LDAP_PW',
      base_dn: SUFFIX, scope: 'sub', timeout: 2_000, user_filter: '(mail={address})', attributes: { mail: 'mail', certificate: [], policy: [] },
    };
    process.env.POSTERN_TEST_LDAP_PW = slapd.rootPw;
    const ee = (dp: string) => `basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:copy
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:${dp}`;
    pki = await makeTestPki(join(dir, 'pki'), 9, 9, {
      extraConfig: `
[ee_ldap]
${ee(rootUrl)}
[ee_hostless]
${ee(hostless)}
[crl_fresh_ldap]
authorityKeyIdentifier = keyid
freshestCRL = URI:${slapd.url}/${urlDn(DELTA_DN)}?deltaRevocationList;binary
`,
    });
    const mailbox = (name: string, ext: string) => pki.issue(name, ext, { subj: `/CN=${name}/emailAddress=${name}@partner.example` });
    [lena, olaf, hana, dora] = [await mailbox('lena', 'ee_ldap'), await mailbox('olaf', 'ee_ldap'), await mailbox('hana', 'ee_hostless'), await mailbox('dora', 'ee_ldap')];
    await pki.ca_('-revoke', join(pki.dir, 'lena.pem'), '-crl_reason', 'keyCompromise');
    await pki.ca_('-revoke', join(pki.dir, 'hana.pem'), '-crl_reason', 'affiliationChanged');
    const crl = await pki.gencrl();
    // A complete CRL naming its delta on another entry, and the delta: dora is revoked after the complete one.
    const snapshot = await pki.snapshot();
    const complete = await pki.gencrl('-crlexts', 'crl_fresh_ldap');
    await pki.ca_('-revoke', join(pki.dir, 'dora.pem'), '-crl_reason', 'superseded');
    const delta = await pki.gendelta(snapshot, await pki.crlNumber(complete));
    await slapd.add(`dn: ${SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ${ROOT_DN}
objectClass: cRLDistributionPoint
cn: Revocation Test Root
certificateRevocationList;binary:: ${b64(crl)}

dn: ${DELTA_DN}
objectClass: cRLDistributionPoint
cn: Delta Point
certificateRevocationList;binary:: ${b64(complete)}
deltaRevocationList;binary:: ${b64(delta)}

dn: cn=Empty Point,${SUFFIX}
objectClass: cRLDistributionPoint
cn: Empty Point
`);
  }, 60_000);
  afterAll(async () => {
    await slapd?.stop();
    await cleanup?.();
  });

  it('reads the CRL at the certificate\'s ldap:// distribution point: revoked and good, one search for both', async () => {
    const before = await slapd.searches();
    const c = checker();
    expect(lena.crlUrls[0]).toMatch(/^ldap:\/\/127\.0\.0\.1:\d+\/cn=Revocation%20Test%20Root%2Cdc=example%2Cdc=com\?certificateRevocationList;binary$/);
    expect(await c.check(lena, pki.ca)).toMatchObject({ status: 'revoked', source: 'crl', revocationReason: 'keyCompromise' });
    expect(await c.check(olaf, pki.ca)).toEqual({ status: 'good', source: 'crl' });
    // The count includes the counting search itself.
    expect((await slapd.searches()) - before).toBe(2);
  });

  it('a URL as CAs write it (raw spaces and commas) works too', async () => {
    expect(await checker().check(at(lena, `${slapd.url}/${ROOT_DN}?certificateRevocationList;binary`), pki.ca)).toMatchObject({ status: 'revoked' });
  });

  it('a delta CRL over LDAP: the complete CRL\'s freshestCRL names it', async () => {
    const url = `${slapd.url}/${urlDn(DELTA_DN)}?certificateRevocationList;binary`;
    expect(await checker().check(at(dora, url), pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'superseded' });
    expect(await checker().check(at(olaf, url), pki.ca)).toEqual({ status: 'good', source: 'crl' });
  });

  it('a host-less URL (ldap:///…) is read from the configured servers, with their bind; without any it is a reason', async () => {
    expect(hana.crlUrls).toEqual([hostless]);
    expect(await checker({ servers: [server] }).check(hana, pki.ca)).toMatchObject({ status: 'revoked', revocationReason: 'affiliationChanged' });
    const none = await checker().check(hana, pki.ca);
    expect(none).toMatchObject({ status: 'unknown' });
    expect(none.reason).toMatch(/names no server, and no LDAP server is configured/);
  });

  it('what a certificate\'s URL cannot make us do: read other attributes, bind as someone; a missing entry is a reason', async () => {
    const before = await slapd.searches();
    const other = await checker().check(at(olaf, `${slapd.url}/${urlDn(ROOT_DN)}?userPassword`), pki.ca);
    expect(other.reason).toMatch(/"userPassword", which is not a revocation list attribute/);
    const bind = await checker().check(at(olaf, `${slapd.url}/${urlDn(ROOT_DN)}?certificateRevocationList???!bindname=${urlDn(slapd.rootDn)}`), pki.ca);
    expect(bind.reason).toMatch(/critical extension "bindname"/);
    expect((await slapd.searches()) - before).toBe(1);
    const missing = await checker().check(at(olaf, `${slapd.url}/cn=Nobody%2C${SUFFIX}`), pki.ca);
    expect(missing.status).toBe('unknown');
    expect(missing.reason).toMatch(/ failed: ldap:\/\/127\.0\.0\.1:\d+: no entry cn=Nobody,dc=example,dc=com/);
    const empty = await checker().check(at(olaf, `${slapd.url}/cn=Empty%20Point%2C${SUFFIX}`), pki.ca);
    expect(empty.reason).toMatch(/the entry has no certificateRevocationList/);
  });

  describe('hostile LDAP servers', () => {
    let flood: Server, garbage: Server;
    const sockets: Socket[] = [];
    const listen = (s: Server) => new Promise<number>((res) => s.listen(0, '127.0.0.1', () => res((s.address() as { port: number }).port)));
    let floodUrl: string, garbageUrl: string;

    beforeAll(async () => {
      // Answers the first request with a BER SEQUENCE of announced length 2 GiB, then streams it.
      flood = createServer((sock) => {
        sockets.push(sock);
        sock.on('error', () => undefined);
        sock.once('data', () => {
          sock.write(Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]));
          const chunk = Buffer.alloc(64 * 1024, 0x41);
          const pump = () => {
            while (!sock.destroyed && sock.write(chunk));
            if (!sock.destroyed) sock.once('drain', pump);
          };
          pump();
        });
      });
      garbage = createServer((sock) => {
        sockets.push(sock);
        sock.on('error', () => undefined);
        sock.on('data', () => sock.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\nnot ldap at all\r\n')));
      });
      floodUrl = `ldap://127.0.0.1:${await listen(flood)}/${urlDn(ROOT_DN)}`;
      garbageUrl = `ldap://127.0.0.1:${await listen(garbage)}/${urlDn(ROOT_DN)}`;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([flood, garbage].map((s) => new Promise((r) => s?.close(r))));
    });

    it('an endless answer is cut at the size limit; garbage ends at the time-out; the checker goes on', async () => {
      const c = checker({}, { maxLdapCrlBytes: 256 * 1024, timeoutMs: 1_500 });
      const big = await c.check(at(olaf, floodUrl), pki.ca);
      expect(big.status).toBe('unknown');
      expect(big.reason).toMatch(/the server sent more than the limit of 262144 bytes/);
      const junk = await c.check(at(olaf, garbageUrl), pki.ca);
      expect(junk.status).toBe('unknown');
      expect(junk.reason).toMatch(/CRL distribution point ldap:\/\/127\.0\.0\.1:\d+\/.* failed: directory server .* unavailable/);
      // Still answering, from the real directory.
      expect(await c.check(lena, pki.ca)).toMatchObject({ status: 'revoked' });
    });
  });

  describe('end to end through the gateway', () => {
    let gw: Gateway;
    let port: number;
    let config: string;
    const { waitDelivered } = maildirOf(() => dir);

    beforeAll(async () => {
      port = await freePort();
      config = await writeGatewayConfig(dir, port, `ldap:
  servers:
    - url: ${slapd.url}
      bind_dn: ${slapd.rootDn}
      password_env: POSTERN_TEST_LDAP_PW
      base_dn: ${SUFFIX}
      timeout: 2s
  on_failure: proceed
`);
      expect((await runPostern(config, ['cert', 'import', pki.caPem, '--trust'])).code).toBe(0);
      gw = await startGateway(config);
    }, 60_000);
    afterAll(async () => {
      await gw?.stop();
    });

    const signedFrom = async (name: string, token: string) => {
      await writeFile(join(dir, `${token}.txt`), `Content-Type: text/plain\r\n\r\nfrom ${name}, token ${token}\r\n`);
      await run('openssl', ['cms', '-sign', '-in', join(dir, `${token}.txt`), '-signer', join(pki.dir, `${name}.pem`), '-inkey', join(pki.dir, `${name}.key`), '-out', join(dir, `${token}.eml`)]);
      const body = (await readFile(join(dir, `${token}.eml`), 'latin1')).replace(/\r?\n/g, '\r\n');
      const from = `${name}@partner.example`;
      const raw = Buffer.from(`From: ${from}\r\nTo: alice@example.com\r\nSubject: ${name} ${token}\r\nDate: ${new Date().toUTCString()}\r\n${body}`, 'latin1');
      expect(await sendRaw(port, from, ['alice@example.com'], raw)).toMatch(/^250 /);
      return readFile(await waitDelivered('alice@example.com', `${name} ${token}`), 'latin1');
    };

    it('a signer revoked by the CRL at an ldap:// distribution point gets the revoked verdict; a good one stays valid', async () => {
      const revoked = await signedFrom('lena', 'ld1');
      expect(revoked).toMatch(/^X-Postern-Signature: invalid; method=smime; signer=lena@partner\.example; reason="[^"]*revoked[^"]*"\r$/m);
      expect(revoked).toMatch(/^X-Postern-Revocation: revoked: the certificate [^\r]*CN=lena[^\r]* was revoked on [^\r]*\(keyCompromise\), says CRL\r$/m);
      const good = await signedFrom('olaf', 'ld2');
      expect(good).toMatch(/^X-Postern-Signature: valid; method=smime; signer=olaf@partner\.example\r$/m);
      expect(good).toMatch(/^X-Postern-Revocation: good \(crl\)\r$/m);
    });

    it('a host-less ldap:/// distribution point is read from ldap.servers', async () => {
      const revoked = await signedFrom('hana', 'ld3');
      expect(revoked).toMatch(/^X-Postern-Signature: invalid; method=smime; signer=hana@partner\.example; reason="[^"]*revoked[^"]*"\r$/m);
      expect(revoked).toMatch(/^X-Postern-Revocation: revoked: [^\r]*\(affiliationChanged\), says CRL\r$/m);
    });
  });
});
