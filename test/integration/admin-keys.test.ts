/**
 * The key routes of a running gateway's admin role (the built binary under its supervisor), over
 * HTTP with a signed-in session, with openssl as the independent peer: a partner's certificate
 * imported and its CA trusted through the API is what the running workers encrypt to next, and a
 * certificate the internal CA issues through the API signs its holder's next mail.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { initCa, openKeyStore } from '../../src/keystore/index.js';
import { adminHttp, type AdminHttp } from '../helpers/admin.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';

const PASSWORD = 'correct horse battery staple';

describe('admin API of a running gateway: certificates and the internal CA', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let base: string;
  let partnerCa: Issued;
  let bob: Issued;
  const { waitDelivered } = maildirOf(() => dir);

  let client: AdminHttp;
  const api = <T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown) => client.api<T>(method, path, body);
  const mail = (from: string, to: string, subject: string, token: string) =>
    Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${token}@example.com>\r\nDate: ${new Date().toUTCString()}\r\n\r\nhello, token ${token}\r\n`);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-keys-'));
    partnerCa = await opensslCa(dir, 'Partner');
    bob = await opensslMailbox(dir, partnerCa, 'bob@partner.example');
    port = await freePort();
    const adminPort = await freePort();
    base = `http://127.0.0.1:${adminPort}`;
    const config = await writeGatewayConfig(dir, port, `admin: { listen: ["127.0.0.1:${adminPort}"] }\n`);
    // The first account and the internal CA, as `postern admin add` and `postern ca init` make them.
    const store = await openKeyStore(await loadConfig(config));
    await store.addAdminAccount({ name: 'keyops', password: PASSWORD, roles: ['user_operator', 'ca_operator'], actor: 'test' });
    await initCa(store, { commonName: 'Example Mail CA', keyType: 'ec-p256', actor: 'test' });
    await store.close();
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening', 60_000);
    client = await adminHttp(base, 'keyops', PASSWORD);
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('encrypts to a partner whose certificate was imported and whose CA was trusted through the API', async () => {
    const imported = await api<{ certificates: { fingerprint: string; status: string; isCA: boolean }[] }>('POST', '/certificates/import', {
      pem: `${await readFile(partnerCa.cert, 'utf8')}${await readFile(bob.cert, 'utf8')}`,
    });
    expect(imported.status).toBe(200);
    expect(imported.json.certificates.map((c) => c.status)).toEqual(['added', 'added']);
    const caFp = imported.json.certificates.find((c) => c.isCA)!.fingerprint;
    expect(await api('POST', `/certificates/${caFp}/trust`)).toMatchObject({ status: 200, json: { trusted: true, changed: true } });

    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], mail('alice@example.com', 'bob@partner.example', 'for bob', 'k1'))).toMatch(/^250 /);
    const file = await waitDelivered('bob@partner.example', 'for bob');
    const text = await readFile(file, 'latin1');
    expect(text).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    expect(text).not.toContain('token k1');
    const out = join(dir, 'k1.eml');
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', bob.cert, '-inkey', bob.key, '-out', out]);
    expect(await readFile(out, 'latin1')).toContain('hello, token k1');
  });

  it('signs the next mail of a sender the internal CA issued a certificate for through the API', async () => {
    const issued = await api<{ fingerprint: string; addresses: string[] }>('POST', '/ca/issue', { address: 'carol@example.com', name: 'Carol Example' });
    expect(issued).toMatchObject({ status: 200, json: { addresses: ['carol@example.com'] } });
    const ca = await api<{ pem: string }>('GET', '/ca');
    await writeFile(join(dir, 'internal-ca.pem'), ca.json.pem);

    expect(await sendRaw(port, 'carol@example.com', ['dan@partner.example'], mail('carol@example.com', 'dan@partner.example', 'from carol', 'k2'))).toMatch(/^250 /);
    const file = await waitDelivered('dan@partner.example', 'from carol');
    expect(await readFile(file, 'latin1')).toMatch(/^Content-Type: multipart\/signed/m);
    const content = join(dir, 'k2.txt');
    const verified = await run('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'internal-ca.pem'), '-out', content]);
    expect(verified.stderr).toMatch(/Verification successful/);
    expect(await readFile(content, 'latin1')).toContain('token k2');

    // The trail of the running admin role names the account and the channel.
    const store = await openKeyStore(await loadConfig(join(dir, 'postern.yaml')));
    try {
      const trail = await store.auditLog({ object: `cert:${issued.json.fingerprint}` });
      expect(trail.find((a) => a.action === 'ca.issue')).toMatchObject({ actor: 'keyops', via: 'api' });
    } finally {
      await store.close();
    }
  });
});
