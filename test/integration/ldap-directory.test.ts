/**
 * The LDAP directory against a real OpenLDAP slapd on loopback (memberof overlay, data loaded
 * with ldapadd), with certificates made by openssl: certificates, groups and attributes found;
 * an injection attempt matches nothing; the cache really spares the server (counted by slapd's
 * own monitor); a server that is down, hangs or refuses the bind fails within its time-out with
 * an error that names it and never the password; the store receives what LDAP found.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapConfig, LdapServerConfig } from '../../src/config/types.js';
import { LdapDirectory, LdapUnavailableError, lookUpAndStoreCertificates, withFailurePolicy } from '../../src/directory/ldap.js';
import { openKeyStore, type KeyStore } from '../../src/keystore/index.js';
import { createLogger, silentLogger } from '../../src/log/index.js';
import { testConfig, tempDir } from '../helpers/config.js';
import { opensslCa, opensslMailbox, run } from '../helpers/pki-openssl.js';
import { startSlapd, type Slapd } from '../helpers/slapd.js';

const log = silentLogger();
const SERVICE_PW = 'correct horse battery staple';
let slapd: Slapd;
let tmp: { dir: string; cleanup: () => Promise<void> };
let aliceDer: Buffer;
let bobDer: Buffer;

const derOf = async (pem: string) => Buffer.from((await readFile(pem, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
const b64 = (b: Buffer) => b.toString('base64');

function server(over: Partial<LdapServerConfig> = {}): LdapServerConfig {
  return {
    url: slapd.url,
    starttls: false,
    tls: { reject_unauthorized: true },
    base_dn: `ou=people,${slapd.suffix}`,
    scope: 'sub',
    timeout: 2_000,
    user_filter: '(|(mail={address})(mailAlternateAddress={address}))',
    attributes: { mail: 'mail', certificate: ['userCertificate;binary', 'userSMIMECertificate'], member_of: 'memberOf', policy: ['departmentNumber', 'title', 'ou'] },
    ...over,
  };
}

const config = (servers: LdapServerConfig[], over: Partial<LdapConfig> = {}): LdapConfig => ({
  servers,
  cache_ttl: 60_000,
  negative_ttl: 30_000,
  retry_after: 30_000,
  on_failure: 'defer',
  ...over,
});

beforeAll(async () => {
  tmp = await tempDir('postern-ldap-');
  const [s, ca] = await Promise.all([startSlapd(), opensslCa(tmp.dir, 'LdapTestCA')]);
  slapd = s;
  const [alice, bob] = await Promise.all([opensslMailbox(tmp.dir, ca, 'alice@example.com'), opensslMailbox(tmp.dir, ca, 'bob@example.com', 'ec')]);
  aliceDer = await derOf(alice.cert);
  bobDer = await derOf(bob.cert);
  // userSMIMECertificate holds a PKCS#7 certs-only bundle (RFC 2798), here with the CA in it.
  const bobP7 = `${tmp.dir}/bob.p7b`;
  await run('openssl', ['crl2pkcs7', '-nocrl', '-certfile', bob.cert, '-certfile', ca.cert, '-outform', 'DER', '-out', bobP7]);
  const S = slapd.suffix;
  await slapd.add(`dn: ${S}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,${S}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${S}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${S}
objectClass: organizationalUnit
ou: services

dn: cn=postern,ou=services,${S}
objectClass: person
cn: postern
sn: service
userPassword: ${SERVICE_PW}

dn: uid=alice,ou=people,${S}
objectClass: inetOrgPerson
uid: alice
cn: Alice Able
sn: Able
mail: alice@example.com
departmentNumber: Finance
title: CFO
title: Director
userCertificate;binary:: ${b64(aliceDer)}

dn: uid=bob,ou=people,${S}
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
mail: bob@example.com
ou: Personnel
userSMIMECertificate:: ${b64(await readFile(bobP7))}

dn: uid=carol,ou=people,${S}
objectClass: inetOrgPerson
uid: carol
cn: Carol Cole
sn: Cole
mail: carol@example.com
userCertificate;binary:: ${b64(aliceDer)}
userSMIMECertificate:: ${b64(Buffer.from('not a certificate at all'))}

dn: uid=joerg,ou=people,${S}
objectClass: inetOrgPerson
uid: joerg
cn:: ${b64(Buffer.from('Jörg Groß'))}
sn:: ${b64(Buffer.from('Groß'))}
mail: joerg@example.com

dn:: ${b64(Buffer.from(`cn=Geschäftsleitung (alt),ou=groups,${S}`))}
objectClass: groupOfNames
cn:: ${b64(Buffer.from('Geschäftsleitung (alt)'))}
member: uid=joerg,ou=people,${S}

dn: uid=eve (*)\\,x,ou=people,${S}
objectClass: inetOrgPerson
uid: eve (*),x
cn: Eve
sn: Eve
mail: eve@example.com

dn: cn=Board,ou=groups,${S}
objectClass: groupOfNames
cn: Board
member: uid=alice,ou=people,${S}
member: uid=eve (*)\\,x,ou=people,${S}

dn: cn=Human Resources,ou=groups,${S}
objectClass: groupOfNames
cn: Human Resources
member: uid=alice,ou=people,${S}
member: uid=bob,ou=people,${S}
`);
});

afterAll(async () => {
  await slapd?.stop();
  await tmp?.cleanup();
});

describe('LDAP directory against slapd', () => {
  it('finds a user certificate (userCertificate;binary), parsed and checked', async () => {
    const dir = new LdapDirectory(config([server()]), { log });
    try {
      const certs = await dir.certificatesOf('Alice@Example.com');
      expect(certs.map((c) => c.fingerprint)).toHaveLength(1);
      expect(certs[0]!.der.equals(aliceDer)).toBe(true);
      expect(certs[0]!.emails).toContain('alice@example.com');
      // From a PKCS#7 bundle: the mailbox certificate, not the CA that came with it.
      const bobs = await dir.certificatesOf('bob@example.com');
      expect(bobs).toHaveLength(1);
      expect(bobs[0]!.der.equals(bobDer)).toBe(true);
      // Carol's entry holds Alice's certificate and garbage: neither becomes Carol's.
      expect(await dir.certificatesOf('carol@example.com')).toEqual([]);
      expect(await dir.certificatesOf('nobody@example.com')).toEqual([]);
    } finally {
      await dir.close();
    }
  });

  it('reads groups from memberOf and attributes for policy', async () => {
    const dir = new LdapDirectory(config([server()]), { log });
    try {
      expect((await dir.groupsOf('alice@example.com')).sort()).toEqual(['Board', 'Human Resources']);
      expect(await dir.groupsOf('bob@example.com')).toEqual(['Human Resources']);
      expect(await dir.groupsOf('carol@example.com')).toEqual([]);
      const attrs = await dir.attributesOf('alice@example.com');
      expect(attrs.departmentnumber).toEqual(['Finance']);
      expect(attrs.title?.sort()).toEqual(['CFO', 'Director']);
      expect(attrs.mail).toEqual(['alice@example.com']);
      expect((await dir.attributesOf('bob@example.com')).ou).toEqual(['Personnel']);
    } finally {
      await dir.close();
    }
  });

  it('finds groups by a group search when the directory has no memberOf', async () => {
    const { member_of: _, ...attributes } = server().attributes;
    const s = server({ attributes, group_search: { base: `ou=groups,${slapd.suffix}`, scope: 'sub', filter: '(&(objectClass=groupOfNames)(member={dn}))', name: 'cn' } });
    const dir = new LdapDirectory(config([s]), { log });
    try {
      expect((await dir.groupsOf('alice@example.com')).sort()).toEqual(['Board', 'Human Resources']);
      expect(await dir.groupsOf('bob@example.com')).toEqual(['Human Resources']);
    } finally {
      await dir.close();
    }
  });

  it('an LDAP injection attempt in the address matches nothing and does not fail', async () => {
    const dir = new LdapDirectory(config([server()]), { log });
    try {
      for (const evil of ['*)(uid=*', '*', '*@example.com', 'alice@example.com)(mail=*', '*)(|(mail=*)', 'x\\2a', 'alice@example.com\u0000']) {
        const f = await dir.lookUp(evil);
        expect(f.found, evil).toBe(false);
        expect(f.certificates).toEqual([]);
      }
      // A group filter gets the entry's DN escaped too (a DN may hold "(", "*", "\").
      const s = server({ group_search: { base: `ou=groups,${slapd.suffix}`, scope: 'sub', filter: '(member={dn})', name: 'cn' } });
      const d2 = new LdapDirectory(config([s]), { log });
      expect((await d2.groupsOf('alice@example.com')).sort()).toEqual(['Board', 'Human Resources']);
      // Eve's DN holds "(", "*", ")" and an escaped ",": unescaped, (member=uid=eve (*)\,x,...)
      // would be a broken filter (an error) — escaped, it finds exactly her group.
      expect(await d2.groupsOf('eve@example.com')).toEqual(['Board']);
      await d2.close();
    } finally {
      await dir.close();
    }
  });

  it('non-ASCII values reach the server intact (in the filter and in group DNs)', async () => {
    // An SMTPUTF8 local part looked up by cn: the filter value must arrive as UTF-8, not mangled.
    const byCn = server({ user_filter: '(cn={local})', group_search: { base: `ou=groups,${slapd.suffix}`, scope: 'sub', filter: '(member={dn})', name: 'cn' } });
    const dir = new LdapDirectory(config([byCn]), { log });
    try {
      const f = await dir.lookUp('Jörg Groß@example.com');
      expect(f.found).toBe(true);
      expect(f.dns).toEqual([`uid=joerg,ou=people,${slapd.suffix}`]);
      expect(f.groups).toEqual(['Geschäftsleitung (alt)']);
      expect((await dir.lookUp('Jörg*@example.com')).found).toBe(false);
    } finally {
      await dir.close();
    }
    const viaMemberOf = new LdapDirectory(config([server()]), { log });
    expect(await viaMemberOf.groupsOf('joerg@example.com')).toEqual(['Geschäftsleitung (alt)']);
    await viaMemberOf.close();
  });

  it('answers from the cache: no second search reaches the server (counted by cn=Monitor)', async () => {
    const dir = new LdapDirectory(config([server()]), { log });
    try {
      const n0 = await slapd.searches();
      await dir.groupsOf('alice@example.com');
      const n1 = await slapd.searches();
      expect(n1 - n0).toBe(2); // the look-up and the count itself
      await dir.groupsOf('alice@example.com');
      await dir.attributesOf('ALICE@example.com');
      await dir.certificatesOf('alice@example.com');
      await dir.lookUp('nobody@example.com');
      await dir.lookUp('nobody@example.com'); // a negative answer is cached too
      const n2 = await slapd.searches();
      expect(n2 - n1).toBe(2); // one for nobody@, one for the count
      // Concurrent look-ups of one address share a single search.
      await Promise.all([dir.lookUp('bob@example.com'), dir.lookUp('bob@example.com'), dir.lookUp('Bob@example.com')]);
      expect((await slapd.searches()) - n2).toBe(2);
    } finally {
      await dir.close();
    }
  });

  it('binds as a service account from password_env; a wrong password names the server, never the password', async () => {
    process.env.POSTERN_TEST_LDAP_PW = SERVICE_PW;
    process.env.POSTERN_TEST_LDAP_BAD = 'wrong-secret-Xyzzy';
    const bindDn = `cn=postern,ou=services,${slapd.suffix}`;
    const good = new LdapDirectory(config([server({ bind_dn: bindDn, password_env: 'POSTERN_TEST_LDAP_PW' })]), { log });
    const lines: string[] = [];
    const capture = createLogger({ level: 'trace', destination: { write: (l: string) => void lines.push(l) } });
    const bad = new LdapDirectory(config([server({ bind_dn: bindDn, password_env: 'POSTERN_TEST_LDAP_BAD' })]), { log: capture });
    try {
      expect(await good.groupsOf('bob@example.com')).toEqual(['Human Resources']);
      const err = await bad.groupsOf('bob@example.com').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(LdapUnavailableError);
      const e = err as LdapUnavailableError;
      expect(e.message).toContain(slapd.url);
      expect(e.message).toMatch(new RegExp(`^directory server ${slapd.url} unavailable: bind as ${bindDn} refused: `));
      expect(e.message).toMatch(/invalid credentials|result code 49/i);
      expect(JSON.stringify({ m: e.message, s: e.stack, r: e.reason })).not.toContain('wrong-secret-Xyzzy');
      expect(e.temporary).toBe(true);
      expect(e.smtpLine).toMatch(/^451 4\.4\.3 /);
      // Backed off: the wrong password is not replayed for every message (account lock-outs). The
      // server's error says it was not asked at all (skipped), where a stopwatch said it was quick.
      const again = await bad.groupsOf('alice@example.com').then(() => null, (e: unknown) => e);
      expect(again).toBeInstanceOf(LdapUnavailableError);
      expect((again as Error).message).toMatch(/not asked again yet/);
      expect(((again as Error).cause as LdapUnavailableError).skipped).toBe(true);
      // Logged once (the back-off is not news), naming the server, without the password.
      expect(lines.filter((l) => l.includes('ldap.unavailable'))).toHaveLength(1);
      expect(lines.join('')).toContain(slapd.url);
      expect(lines.join('')).not.toContain('wrong-secret-Xyzzy');
    } finally {
      await good.close();
      await bad.close();
      delete process.env.POSTERN_TEST_LDAP_PW;
      delete process.env.POSTERN_TEST_LDAP_BAD;
    }
  });

  it('stores found certificates with source ldap and returns the usable ones', async () => {
    const d = await tempDir();
    const store: KeyStore = await openKeyStore(testConfig(d.dir));
    const dir = new LdapDirectory(config([server()]), { log });
    try {
      const usable = await lookUpAndStoreCertificates(dir, store, 'alice@example.com');
      expect(usable).toHaveLength(1);
      expect(usable[0]!.source).toBe('ldap');
      const inStore = await store.certificatesFor('alice@example.com');
      expect(inStore.map((c) => [c.fingerprint, c.source])).toEqual([[usable[0]!.fingerprint, 'ldap']]);
      // Again: a duplicate, not a second row.
      await lookUpAndStoreCertificates(dir, store, 'alice@example.com');
      expect(await store.certificatesFor('alice@example.com')).toHaveLength(1);
      // Carol's entry holds Alice's certificate: nothing is stored for Carol.
      expect(await lookUpAndStoreCertificates(dir, store, 'carol@example.com')).toEqual([]);
      expect(await store.certificatesFor('carol@example.com')).toEqual([]);
    } finally {
      await dir.close();
      store.close();
      await d.cleanup();
    }
  });
});

describe('LDAP failures are bounded by the time-out', () => {
  let hang: Server;
  let hangPort: number;
  const sockets: Socket[] = [];
  let deadPort: number;

  beforeAll(async () => {
    hang = createServer((s) => sockets.push(s)); // accepts, reads, never answers
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    hangPort = (hang.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r())); // nothing listens there now
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((r) => hang.close(() => r()));
  });

  it('a port with nothing listening → LdapUnavailableError at once', async () => {
    // At once: from the refusal itself, not from the time-out — the reason says which (a time-out
    // says "no answer within …"); no stopwatch, which flakes on a loaded machine.
    const dir = new LdapDirectory(config([server({ url: `ldap://127.0.0.1:${deadPort}`, timeout: 1_000 })]), { log });
    const err = await dir.lookUp('alice@example.com').then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(LdapUnavailableError);
    expect((err as Error).message).toContain(`ldap://127.0.0.1:${deadPort}`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as Error).message).not.toMatch(/no answer within/);
    await dir.close();
  });

  it('a server that accepts and never answers → LdapUnavailableError within the time-out', async () => {
    for (const bind of [false, true]) {
      process.env.POSTERN_TEST_LDAP_PW = SERVICE_PW;
      const s = server({ url: `ldap://127.0.0.1:${hangPort}`, timeout: 300, ...(bind ? { bind_dn: 'cn=x', password_env: 'POSTERN_TEST_LDAP_PW' } : {}) });
      const dir = new LdapDirectory(config([s]), { log });
      const t0 = Date.now();
      const err = await dir.lookUp('alice@example.com').then(() => null, (e: unknown) => e);
      const took = Date.now() - t0;
      // The server never answers, so only the configured time-out can end the look-up: the reason
      // names it, and the test's own time-out is the guard against a look-up that never ends. The
      // lower bound (it did wait) cannot flake: load delays a timer, never advances it.
      expect(err).toBeInstanceOf(LdapUnavailableError);
      expect((err as Error).message).toMatch(/no answer within 300 ms/);
      expect(took).toBeGreaterThanOrEqual(290);
      // For retry_after the server is not asked again: the next mail does not wait 300 ms more —
      // no new connection, and the error says it was skipped.
      const connections = sockets.length;
      const next = await dir.lookUp('bob@example.com').then(() => null, (e: unknown) => e);
      expect(next).toBeInstanceOf(LdapUnavailableError);
      expect((next as Error).message).toMatch(/not asked again yet/);
      expect(((next as Error).cause as LdapUnavailableError).skipped).toBe(true);
      expect(sockets.length).toBe(connections);
      await dir.close();
    }
  });

  it('the next server answers when the first is down; none answering is unavailable, not "not found"', async () => {
    const dead = server({ url: `ldap://127.0.0.1:${deadPort}` });
    const dir = new LdapDirectory(config([dead, server()]), { log });
    expect(await dir.groupsOf('bob@example.com')).toEqual(['Human Resources']);
    // Nobody@ is in no directory that answered, but the dead one might hold it.
    await expect(dir.lookUp('nobody@example.com')).rejects.toBeInstanceOf(LdapUnavailableError);
    await dir.close();
  });

  it('on_failure: proceed answers empty; defer rethrows', async () => {
    const s = server({ url: `ldap://127.0.0.1:${deadPort}` });
    const proceed = new LdapDirectory(config([s], { on_failure: 'proceed' }), { log });
    const defer = new LdapDirectory(config([s], { on_failure: 'defer' }), { log });
    expect(await withFailurePolicy(proceed, log).groupsOf('alice@example.com')).toEqual([]);
    expect(await withFailurePolicy(proceed, log).certificatesOf('alice@example.com')).toEqual([]);
    await expect(withFailurePolicy(defer, log).groupsOf('alice@example.com')).rejects.toBeInstanceOf(LdapUnavailableError);
    await proceed.close();
    await defer.close();
  });

  it('reconnects after the server went away and came back; cached answers survive the outage', async () => {
    const dir = new LdapDirectory(config([server()], { retry_after: 100 }), { log });
    try {
      expect(await dir.groupsOf('bob@example.com')).toEqual(['Human Resources']);
      await slapd.kill();
      expect(await dir.groupsOf('bob@example.com')).toEqual(['Human Resources']); // cached
      await expect(dir.groupsOf('alice@example.com')).rejects.toBeInstanceOf(LdapUnavailableError);
      await slapd.restart();
      await new Promise((r) => setTimeout(r, 120));
      expect((await dir.groupsOf('alice@example.com')).sort()).toEqual(['Board', 'Human Resources']);
    } finally {
      await dir.close();
    }
  });
});
