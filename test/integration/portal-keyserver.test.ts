/**
 * The portal's key server for partners (issue 17): HKP look-ups read by gpg 2.2 (`--recv-keys`,
 * `--search-keys` through its own dirmngr) and S/MIME certificates per address read by openssl
 * (x509, pkcs7, verify), from the files the supervisor publishes out of a real keystore. Plus what
 * must never be found (keys and certificates of non-users, of other domains, expired or revoked
 * ones, secret packets) and hostile requests.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.js';
import {
  initCa, issueFromCa, openKeyStore, publicCertificatesFile, publicKeysFile, publishPublicCertificates, publishPublicKeys, revokeFromCa, type KeyStore,
} from '../../src/keystore/index.js';
import { createLogger } from '../../src/log/index.js';
import { generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { createCa, issueSmimeCertificate, parseCertificate, parsePrivateKey, type IssuedMaterial } from '../../src/pki/index.js';
import { keyServer, PublicCertificateFile, PublicKeyFile, startPortal, type KeyServerContext, type Portal } from '../../src/portal/index.js';
import { tempDir, testConfig } from '../helpers/config.js';
import { opensslCa, run as openssl } from '../helpers/pki-openssl.js';

const run = promisify(execFile);
const DAY = 86_400_000;

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A certificate and its private key into the store: one of our users' certificates. */
async function importOwn(store: KeyStore, m: IssuedMaterial): Promise<string> {
  const cert = parseCertificate(m.certDer);
  await store.importCertificate(cert, { source: 'import', actor: 'test' });
  await store.importPrivateKey(await parsePrivateKey(m.keyPkcs8), { actor: 'test' });
  return cert.fingerprint;
}

/** An intermediate CA below an openssl root, and a mailbox certificate below it, all by openssl. */
async function opensslChain(dir: string, address: string): Promise<{ root: string; intermediate: string; leaf: string; leafKey: string }> {
  const root = await opensslCa(dir, 'Partner-Facing');
  const ik = join(dir, 'intermediate.key');
  const ic = join(dir, 'intermediate.pem');
  await openssl('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', ik, '-subj', '/O=Example/CN=Example Issuing CA', '-out', `${ic}.csr`]);
  await writeFile(`${ic}.ext`, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  await openssl('openssl', ['x509', '-req', '-in', `${ic}.csr`, '-CA', root.cert, '-CAkey', root.key, '-set_serial', '77', '-days', '30', '-sha256', '-extfile', `${ic}.ext`, '-out', ic]);
  const lk = join(dir, 'leaf.key');
  const lc = join(dir, 'leaf.pem');
  await openssl('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', lk, '-subj', `/CN=Alice Example/emailAddress=${address}`, '-out', `${lc}.csr`]);
  await writeFile(`${lc}.ext`, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:${address}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  await openssl('openssl', ['x509', '-req', '-in', `${lc}.csr`, '-CA', ic, '-CAkey', ik, '-set_serial', '78', '-days', '30', '-sha256', '-extfile', `${lc}.ext`, '-out', lc]);
  return { root: root.cert, intermediate: ic, leaf: lc, leafKey: lk };
}

type Served = Omit<KeyServerContext, 'pages'>;

/** The portal as its role starts it (startPortal, the key server as a page module), on 127.0.0.1 and a free port. */
async function serve(config: Config, ctx: Served): Promise<{ portal: Portal; port: number }> {
  const portal = await startPortal({ config, store: ctx.keys, log: ctx.log, pages: [keyServer(ctx)], ...(ctx.now ? { now: ctx.now } : {}) });
  return { portal, port: portal.addresses[0]!.port };
}

const pemDer = (pem: string) => new X509Certificate(pem).raw;
const readText = (file: string) => readFile(file, 'utf8');

describe('portal: key server for partners', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: Config;
  let store: KeyStore;
  let ctx: Served;
  let portal: Portal;
  let port: number;
  let user: ParsedPgpKey;
  let joerg: ParsedPgpKey;
  const logLines: string[] = [];
  let chain: Awaited<ReturnType<typeof opensslChain>>;
  const fpr: Record<string, string> = {};

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-keyserver-'));
    config = testConfig(dir, { internal_domains: ['example.com'], portal: { listen: [{ host: '127.0.0.1', port: 0 }] } });
    store = await openKeyStore(config);

    user = await generatePgpKey({ address: 'user@example.com', name: 'User Example' });
    joerg = await generatePgpKey({ address: 'joerg@example.com', name: 'Jörg: 100% Müller' });
    await store.importPgpKey(user, { source: 'generated', actor: 'test' });
    await store.importPgpKey(joerg, { source: 'generated', actor: 'test' });
    // Not our users: an internal address whose key we hold without its secret, a partner with one.
    const known = await generatePgpKey({ address: 'known@example.com' });
    fpr.known = known.info.fingerprint;
    await store.importPgpKey({ info: { ...known.info, hasSecret: false }, publicKey: known.publicKey }, { source: 'wkd', actor: 'test' });
    const partner = await generatePgpKey({ address: 'user@partner.example' });
    fpr.partner = partner.info.fingerprint;
    await store.importPgpKey(partner, { source: 'import', actor: 'test' });

    // Alice: an older certificate from one CA, a newer one two levels below an openssl root.
    const oldCa = await createCa({ commonName: 'Example Old CA', now: new Date(Date.now() - 20 * DAY) });
    await store.importCertificate(parseCertificate(oldCa.certDer), { source: 'import', trusted: true, actor: 'test' });
    fpr.aliceOld = await importOwn(store, await issueSmimeCertificate({ ca: oldCa, address: 'alice@example.com', name: 'Alice Example', now: new Date(Date.now() - 10 * DAY), validityDays: 365 }));
    chain = await opensslChain(dir, 'alice@example.com');
    await store.importCertificate(parseCertificate(pemDer(await readText(chain.root))), { source: 'import', trusted: true, actor: 'test' });
    await store.importCertificate(parseCertificate(pemDer(await readText(chain.intermediate))), { source: 'import', actor: 'test' });
    const leaf = parseCertificate(pemDer(await readText(chain.leaf)));
    await store.importCertificate(leaf, { source: 'import', actor: 'test' });
    await store.importPrivateKey(await parsePrivateKey(Buffer.from(await readText(chain.leafKey))), { actor: 'test' });
    fpr.aliceNew = leaf.fingerprint;
    // Never served: expired; no private key here; another domain; revoked by our internal CA.
    fpr.expired = await importOwn(store, await issueSmimeCertificate({ ca: oldCa, address: 'bob@example.com', now: new Date(Date.now() - 400 * DAY), validityDays: 30 }));
    const publicOnly = await issueSmimeCertificate({ ca: oldCa, address: 'dave@example.com' });
    await store.importCertificate(parseCertificate(publicOnly.certDer), { source: 'mail', actor: 'test' });
    fpr.outside = await importOwn(store, await issueSmimeCertificate({ ca: oldCa, address: 'alice@partner.example' }));
    await initCa(store, { commonName: 'Example Internal CA', actor: 'test' });
    fpr.carol = (await issueFromCa(store, config, { address: 'carol@example.com', actor: 'test' })).fingerprint;
    fpr.erin = (await issueFromCa(store, config, { address: 'erin@example.com', actor: 'test' })).fingerprint;
    await revokeFromCa(store, 'erin@example.com', { actor: 'test' });

    // As the supervisor does for the portal role, which reads only these two files.
    await publishPublicKeys(store, config);
    await publishPublicCertificates(store, config);
    ctx = {
      keys: new PublicKeyFile(publicKeysFile(config)),
      certificates: new PublicCertificateFile(publicCertificatesFile(config)),
      internalDomains: config.internal_domains,
      log: createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } }),
    };
    ({ portal, port } = await serve(config, ctx));
  }, 120_000);

  afterAll(async () => {
    await portal?.close();
    await store?.close();
    await cleanup();
  });

  describe('HKP read by gpg 2.2', () => {
    let home: string;
    const gpg = (args: string[]) =>
      run('gpg', ['--homedir', home, '--batch', '--no-tty', '--keyserver', `hkp://127.0.0.1:${port}`, ...args], { env: { ...process.env, GNUPGHOME: home }, timeout: 30_000 });
    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'postern-hkpgpg-'));
    });
    afterAll(async () => {
      // gpg started a dirmngr and an agent for this home: stop those two, by their home.
      await run('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home } }).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    });

    it('--recv-keys by fingerprint imports our user\'s public key, nothing secret', async () => {
      await gpg(['--recv-keys', user.info.fingerprint]);
      const listed = (await gpg(['--with-colons', '--list-keys', user.info.fingerprint])).stdout;
      expect(listed.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9])[0]).toBe(user.info.fingerprint);
      expect(listed).toContain('User Example <user@example.com>');
      expect((await gpg(['--with-colons', '--list-secret-keys'])).stdout).toBe('');
    });

    it('--search-keys by address lists the key (any spelling of it), --with-colons and for people', async () => {
      const colons = (await gpg(['--with-colons', '--search-keys', 'Joerg@EXAMPLE.com'])).stdout;
      // The machine-readable index as gpg passes it on: ':' '%' and UTF-8 of the user id percent-escaped (§5.2).
      expect(colons.split('\n').filter((l) => /^(info|pub|uid):/.test(l))).toEqual([
        'info:1:1',
        `pub:${joerg.info.fingerprint}:22:255:${Math.floor(joerg.info.created.getTime() / 1000)}::`,
        'uid:J%C3%B6rg%3A 100%25 M%C3%BCller <joerg@example.com>:::',
      ]);
      // For people: gpg lists the match and, in batch mode, exits non-zero as it cannot ask which to import.
      const human = await gpg(['--search-keys', '<joerg@example.com>']).catch((err: { stdout: string }) => err);
      expect(human.stdout).toContain('(1)\tJörg: 100% Müller <joerg@example.com>\n');
      expect(human.stdout).toContain(`255 bit EDDSA key ${joerg.info.fingerprint.slice(-16)}, created: ${joerg.info.created.toISOString().slice(0, 10)}`);
    });

    it('an outside address, a key we hold without its secret, and a partner key are not found', async () => {
      for (const who of ['user@partner.example', 'known@example.com']) {
        const r = await gpg(['--with-colons', '--search-keys', who]).catch((err: { stdout: string; stderr: string }) => err);
        expect(r.stdout, who).not.toMatch(/^pub:/m);
      }
      for (const id of [fpr.known!, fpr.partner!]) await expect(gpg(['--recv-keys', id]), id).rejects.toThrow();
    });
  });

  describe('HKP answers', () => {
    const lookup = (query: string, method = 'GET') => get(port, `/pks/lookup?${query}`, method);
    let showHome: string;
    let n = 0;
    const writeAsc = async (text: string) => {
      const f = join(dir, `served-${n++}.asc`);
      await writeFile(f, text);
      return f;
    };
    beforeAll(async () => {
      showHome = await mkdtemp(join(tmpdir(), 'postern-hkpshow-'));
    });
    afterAll(async () => {
      await run('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: showHome } }).catch(() => undefined);
      await rm(showHome, { recursive: true, force: true });
    });

    it('op=get by address, fingerprint, key id or subkey id: the key, armored, public packets only', async () => {
      const subkey = user.info.subkeys[0]!.fingerprint;
      for (const search of ['user@example.com', 'User%20Example%20%3Cuser%40example.com%3E', `0x${user.info.fingerprint}`, user.info.fingerprint.toLowerCase(), `0x${user.info.keyId}`, `0x${subkey.slice(-16)}`, subkey]) {
        const r = await lookup(`op=get&options=mr&search=${search}`);
        expect([r.status, r.headers['content-type']], search).toEqual([200, 'application/pgp-keys']);
        const text = r.body.toString();
        expect(text).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n[\s\S]*-----END PGP PUBLIC KEY BLOCK-----\n?$/);
        expect(text).not.toContain('PRIVATE');
        // gpg reads what was served (its own throw-away home: --show-keys imports nothing).
        const f = await writeAsc(text);
        const shown = await run('gpg', ['--homedir', showHome, '--batch', '--with-colons', '--show-keys', f]);
        expect(shown.stdout.split('\n').filter((l) => l.startsWith('fpr:'))[0]?.split(':')[9], search).toBe(user.info.fingerprint);
      }
      const head = await lookup('op=get&search=user@example.com', 'HEAD');
      expect([head.status, head.body.length]).toEqual([200, 0]);
    });

    it('op=index and vindex: machine-readable with options=mr, a small HTML page without', async () => {
      const mr = await lookup('op=index&options=mr&search=%3Cuser%40example.com%3E');
      expect([mr.status, mr.headers['content-type']]).toEqual([200, 'text/plain; charset=utf-8']);
      expect(mr.body.toString()).toBe(`info:1:1\npub:${user.info.fingerprint}:22:255:${Math.floor(user.info.created.getTime() / 1000)}::\nuid:User Example <user@example.com>:::\n`);
      expect((await lookup('op=vindex&options=mr&search=user@example.com')).body.toString()).toBe(mr.body.toString());
      const page = await lookup('op=index&search=joerg@example.com');
      expect([page.status, page.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
      expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(page.body.toString()).toContain('<li>Jörg: 100% Müller &lt;joerg@example.com&gt;</li>');
      expect(page.body.toString()).toContain(`href="/pks/lookup?op=get&amp;search=0x${joerg.info.fingerprint}"`);
    });

    it('finds any spelling of our address, and nothing for look-alikes, other domains or non-users', async () => {
      for (const spelling of ['USER@EXAMPLE.COM', '%22user%22@example.com', 'user@example.com.', '%EF%BD%95%EF%BD%93%EF%BD%85%EF%BD%92@example.com' /* full-width "user": the keystore's comparison key */]) {
        const r = await lookup(`op=index&options=mr&search=${spelling}`);
        expect([r.status, r.body.toString().split('\n')[1]?.split(':')[1]], spelling).toEqual([200, user.info.fingerprint]);
      }
      for (const search of [
        'user@ex%D0%B0mple.com', // a Cyrillic а: another domain
        'user@example.com.evil.example',
        'user@partner.example',
        'known@example.com', // a key we hold without its secret: not one of our users
        'nobody@example.com',
        `0x${fpr.partner}`,
        `0x${fpr.known}`,
        `0x${'0'.repeat(40)}`,
      ]) expect((await lookup(`op=get&search=${search}`)).status, search).toBe(404);
    });

    it('refuses malformed and hostile queries: 400, 501 for other operations', async () => {
      for (const query of [
        'op=get',
        'search=user@example.com',
        'op=get&search=',
        'op=get&search=user@example.com&search=joerg@example.com',
        'op=get&search=0x2AB8ABD7', // a short key id: ambiguous
        'op=get&search=User%20Example', // no name or substring search
        'op=index&search=example.com',
        `op=get&search=${'a'.repeat(600)}@example.com`,
        'op=get&search=user@example.com%00',
        'op=get&search=user%00@example.com',
        'op=get&search=us%E2%80%8Ber@example.com', // a zero-width space
        'op=get&search=user%0D%0AX-Injected:%201@example.com',
      ]) expect((await lookup(query)).status, query).toBe(400);
      for (const op of ['stats', 'add', 'x-anything']) expect((await lookup(`op=${op}&search=user@example.com`)).status, op).toBe(501);
    });

    it('accepts no uploads (403) and only GET and HEAD for look-ups (405)', async () => {
      for (const method of ['GET', 'POST', 'PUT']) expect((await get(port, '/pks/add', method)).status, method).toBe(403);
      const upload = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/pks/add', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end(`keytext=${encodeURIComponent(user.publicKey.toString('base64'))}`);
      });
      expect(upload).toBe(403);
      const post = await get(port, '/pks/lookup?op=get&search=user@example.com', 'POST');
      expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    });

    it('a published "public" key holding secret packets is never sent: left out of the index, the store\'s fault logged', async () => {
      const leaky = { hasSecret: true, publicKey: user.secretKey!, info: { ...user.info, addresses: ['user@example.com'] } };
      const fake = { listPgpKeys: async () => [leaky], pgpKeysFor: async () => [leaky] };
      const from = logLines.length;
      const s = await serve(config, { ...ctx, keys: fake });
      try {
        for (const query of [`op=get&search=0x${user.info.fingerprint}`, 'op=get&search=user@example.com', 'op=index&options=mr&search=user@example.com']) {
          const r = await get(s.port, `/pks/lookup?${query}`);
          expect(r.status, query).toBe(404);
          expect(r.body.includes(user.secretKey!.subarray(0, 64))).toBe(false);
        }
        const errors = logLines.slice(from).map((l) => JSON.parse(l) as { event?: string; reason?: string }).filter((e) => e.event === 'portal.error');
        expect(errors.map((e) => e.reason)).toContain(`published key ${user.info.fingerprint} is not the transferable public key it claims to be; the key server leaves it out`);
      } finally {
        await s.portal.close();
      }
    });
  });

  describe('S/MIME certificates per address, read by openssl', () => {
    const cert = (path: string, method = 'GET') => get(port, `/certs/${path}`, method);
    const save = async (name: string, data: Buffer | string) => {
      const f = join(dir, name);
      await writeFile(f, data);
      return f;
    };

    it('.cer: the newest valid certificate, DER, that openssl x509 reads', async () => {
      const r = await cert('alice@example.com.cer');
      expect([r.status, r.headers['content-type'], r.headers['content-disposition']]).toEqual([200, 'application/pkix-cert', 'attachment; filename="alice@example.com.cer"']);
      const f = await save('alice.cer', r.body);
      const { stdout } = await run('openssl', ['x509', '-inform', 'DER', '-in', f, '-noout', '-subject', '-email', '-fingerprint', '-sha256']);
      expect(stdout).toMatch(/^subject=CN ?= ?Alice Example, emailAddress ?= ?alice@example.com$/m);
      expect(stdout).toMatch(/^alice@example.com$/m);
      expect(stdout).toContain(`Fingerprint=${fpr.aliceNew!.toUpperCase().replace(/(..)(?!$)/g, '$1:')}`);
      // Any spelling of the address.
      for (const spelling of ['ALICE@Example.COM.cer', '%22alice%22@example.com.cer', 'alice@EXAMPLE.com.cer']) expect((await cert(spelling)).body.equals(r.body), spelling).toBe(true);
    });

    it('.pem: the same certificate, PEM', async () => {
      const r = await cert('alice@example.com.pem');
      expect([r.status, r.headers['content-type']]).toEqual([200, 'application/x-pem-file']);
      const { stdout } = await run('openssl', ['x509', '-in', await save('alice.pem', r.body), '-outform', 'DER'], { encoding: 'buffer' } as object);
      expect((stdout as unknown as Buffer).equals((await cert('alice@example.com.cer')).body)).toBe(true);
    });

    it('.p7c: every valid certificate with its chain, certs-only PKCS#7; openssl verifies the leaf with it', async () => {
      const r = await cert('alice@example.com.p7c');
      expect([r.status, r.headers['content-type']]).toEqual([200, 'application/pkcs7-mime; smime-type=certs-only']);
      const p7c = await save('alice.p7c', r.body);
      const printed = (await run('openssl', ['pkcs7', '-inform', 'DER', '-in', p7c, '-print_certs'])).stdout;
      const subjects = printed.match(/^subject=.*$/gm)!.map((l) => l.replace(/\s*=\s*/g, '='));
      expect(subjects.sort()).toEqual(
        ['subject=CN=Alice Example, emailAddress=alice@example.com', 'subject=CN=Alice Example', 'subject=CN=Example Old CA', 'subject=O=Example, CN=Example Issuing CA', 'subject=O=Partner-Facing, CN=Partner-Facing Root'].sort(),
      );
      // The partner trusts the root; the intermediate comes only from the bundle.
      const bundle = await save('alice-bundle.pem', printed);
      const leaf = await save('alice-leaf.pem', (await cert('alice@example.com.pem')).body);
      expect((await run('openssl', ['verify', '-purpose', 'smimeencrypt', '-CAfile', chain.root, '-untrusted', bundle, leaf])).stdout).toMatch(/: OK$/m);
      await expect(run('openssl', ['verify', '-CAfile', chain.root, leaf])).rejects.toThrow(/unable to get local issuer certificate/);
      // Carol's from the internal CA: with its certificate.
      const carol = await cert('carol@example.com.p7c');
      const carolPrinted = (await run('openssl', ['pkcs7', '-inform', 'DER', '-in', await save('carol.p7c', carol.body), '-print_certs', '-noout'])).stdout;
      expect(carolPrinted.match(/^subject=/gm)).toHaveLength(2);
      expect(carolPrinted).toMatch(/subject=.*CN ?= ?Example Internal CA/);
    });

    it('a page lists the valid certificates with their fingerprints', async () => {
      const r = await cert('alice@example.com');
      expect([r.status, r.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
      expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
      const text = r.body.toString();
      for (const f of [fpr.aliceNew!, fpr.aliceOld!]) expect(text).toContain(f.toUpperCase().replace(/(..)(?!$)/g, '$1:'));
      expect(text).toContain('href="/certs/alice%40example.com.p7c"');
      expect(text).toContain('<dd>CN=Alice Example, emailAddress=alice@example.com</dd>');
      expect(text).toContain('<dd>O=Example, CN=Example Issuing CA</dd>');
      // The portal's layout: its own script and style only, no inline script; in German when asked.
      expect(text.match(/<script[^>]*>/g)).toEqual(['<script src="/assets/portal.js" defer>']);
      expect(r.headers['content-security-policy']).not.toContain('unsafe-inline');
      const de = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/certs/alice@example.com', headers: { 'accept-language': 'de-DE,de;q=0.9' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        });
        req.on('error', reject);
        req.end();
      });
      expect(de).toContain('<h1>S/MIME-Zertifikate von alice@example.com</h1>');
    });

    it('the newest certificate still valid at the time of asking: the older one once the newer expired', async () => {
      const s = await serve(config, { ...ctx, now: () => Date.now() + 40 * DAY });
      try {
        const r = await get(s.port, '/certs/alice@example.com.cer');
        expect(new X509Certificate(r.body).fingerprint256.replace(/:/g, '').toLowerCase()).toBe(fpr.aliceOld);
      } finally {
        await s.portal.close();
      }
    });

    it('404 for anything not ours: expired, no private key here, another domain, revoked by our CA, look-alikes, hostile names', async () => {
      for (const path of [
        'bob@example.com.cer', // expired
        'dave@example.com.cer', // we hold no private key for it: not one of our users
        'alice@partner.example.cer',
        'alice@partner.example',
        'erin@example.com.p7c', // revoked by our internal CA
        'nobody@example.com',
        'alice@ex%D0%B0mple.com.cer', // a Cyrillic а
        'alice@example.com%00.cer',
        'al%E2%80%8Bice@example.com.cer',
        '../../etc/passwd',
        '..%2F..%2Fetc%2Fpasswd',
        '%2e%2e/%2e%2e/etc/passwd',
        'alice@example.com/../../etc/passwd',
        `${'a'.repeat(400)}@example.com.cer`,
        'alice@example.com.exe',
        '',
      ]) expect((await cert(path)).status, path).toBe(404);
      const post = await cert('alice@example.com.cer', 'POST');
      expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    });

    it('logs each served key and certificate by address and fingerprint, nothing more', () => {
      const served = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => /^portal\.(hkp|certs)\.served$/.test(String(e.event)));
      expect(served.length).toBeGreaterThan(5);
      for (const e of served) {
        expect(Object.keys(e).sort(), JSON.stringify(e)).toEqual(expect.arrayContaining(['event', 'fingerprints']));
        const extra = Object.keys(e).filter((k) => !['level', 'time', 'pid', 'msg', 'event', 'op', 'format', 'address', 'fingerprints'].includes(k));
        expect(extra, JSON.stringify(e)).toEqual([]);
      }
      expect(logLines.join('')).not.toContain('PGP PUBLIC KEY BLOCK');
    });
  });
});
