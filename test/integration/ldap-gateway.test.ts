/**
 * LDAP in the running gateway, against a real OpenLDAP slapd on loopback: a partner's certificate
 * found in the directory (not in the store) is used to encrypt end to end (openssl decrypts); a
 * sender who is a member of a directory group triggers the group's rule; an LDAP injection in an
 * address matches nothing; with the directory down the message is deferred (ldap.on_failure:
 * defer), not sent without the facts and not lost, and goes out once the directory is back.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendRaw } from '../helpers/send.js';
import { startSlapd, type Slapd } from '../helpers/slapd.js';

const der = async (pemFile: string) => Buffer.from((await readFile(pemFile, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

describe('LDAP directory in the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let slapd: Slapd;
  let port: number;
  let config: string;
  let ca: Issued, pat: Issued;
  const { delivered, waitDelivered } = maildirOf(() => dir);
  const message = (from: string, to: string, subject: string) => Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\n\r\nbody of ${subject}\r\n`);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-ldap-gw-'));
    ca = await opensslCa(dir, 'Directory');
    pat = await opensslMailbox(dir, ca, 'pat@partner.example');
    slapd = await startSlapd({ suffix: 'dc=example,dc=com' });
    const cert = (await der(pat.cert)).toString('base64');
    await slapd.add(`dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=pat,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: pat
cn: Pat Partner
sn: Partner
mail: pat@partner.example
userCertificate;binary:: ${cert}

dn: uid=ceo,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ceo
cn: The CEO
sn: CEO
mail: ceo@example.com

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: cn=Board,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: Board
member: uid=ceo,ou=people,dc=example,dc=com
`);
    port = await freePort();
    config = await writeGatewayConfig(
      dir,
      port,
      `ldap:
  servers:
    - url: ${slapd.url}
      bind_dn: ${slapd.rootDn}
      password_env: POSTERN_TEST_LDAP_PW
      base_dn: dc=example,dc=com
      timeout: 1s
  on_failure: defer
  retry_after: 1s
`,
    );
    await writeFile(
      join(dir, 'policy.yaml'),
      `rules:
  - name: the board is tagged
    when: { sender: { group: Board } }
    do: [{ add_header: { X-Board: "yes" } }]
    continue: true
`,
    );
    process.env.POSTERN_TEST_LDAP_PW = slapd.rootPw;
    expect((await runPostern(config, ['cert', 'import', ca.cert, '--trust'])).code).toBe(0);
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await slapd?.kill();
    await cleanup();
  });

  it("encrypts to a partner's certificate found in the directory, and stores it with source ldap", async () => {
    expect(await sendRaw(port, 'alice@example.com', ['pat@partner.example'], message('alice@example.com', 'pat@partner.example', 'for pat l1'))).toMatch(/^250 /);
    const file = await waitDelivered('pat@partner.example', 'for pat l1');
    expect(await readFile(file, 'latin1')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', pat.cert, '-inkey', pat.key, '-out', join(dir, 'l1.txt')]);
    expect(await readFile(join(dir, 'l1.txt'), 'latin1')).toContain('body of for pat l1');
    expect((await runPostern(config, ['cert', 'list', '--address', 'pat@partner.example'])).stdout).toMatch(/\tldap\t/);
  });

  it('a sender in a directory group triggers the group rule; an injection in an address matches nothing', async () => {
    expect(await sendRaw(port, 'ceo@example.com', ['x@partner.example'], message('ceo@example.com', 'x@partner.example', 'board l2'))).toMatch(/^250 /);
    expect(await readFile(await waitDelivered('x@partner.example', 'board l2'), 'latin1')).toMatch(/^X-Board: yes\r$/m);
    // `policy explain` asks the same directory, so it shows the group and the rule.
    const explained = await runPostern(config, ['policy', 'explain', '--from', 'ceo@example.com', '--to', 'x@partner.example']);
    expect(explained.stdout).toMatch(/from <ceo@example\.com> \(internal; keys: none; groups: Board\)/);
    expect(explained.stdout).toMatch(/"the board is tagged"/);
    const evil = '"*)(uid=*"@example.com';
    expect(await sendRaw(port, evil, ['y@partner.example'], message(evil, 'y@partner.example', 'inject l3'))).toMatch(/^250 /);
    expect(await readFile(await waitDelivered('y@partner.example', 'inject l3'), 'latin1')).not.toMatch(/^X-Board:/m);
  });

  it('with the directory down the message is deferred: not sent without the directory facts, and still queued', async () => {
    await slapd.kill();
    expect(await sendRaw(port, 'ceo@example.com', ['z@partner.example'], message('ceo@example.com', 'z@partner.example', 'while down l4'))).toMatch(/^250 /);
    await gw.waitFor((l) => l.event === 'worker.deferred', 10_000);
    expect(await delivered('z@partner.example', 'while down l4')).toBeUndefined();
    const list = (await runPostern(config, ['queue', 'list'])).stdout;
    expect(list).toMatch(/ceo@example\.com/);
  }, 30_000);
});
