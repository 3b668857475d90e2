/**
 * The portal store shared by a cluster (issue 19), on a real PostgreSQL server: two PortalDb
 * objects on one database stand for two nodes. A reply link made through one opens through the
 * other; log-in failures count together; a stopped server is PortalDbError 'unavailable' (which
 * isStoreUnavailable sees) and the same objects work again once it is back. The portal's own
 * login, granted as the README says, reaches the portal schema and nothing of the keystore's, and
 * never migrates.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contentRoot, makePdfVerifier, newContentKdf, newReplyToken, replyAad, sealReplyData } from '../../../src/keystore/pdf-verifier.js';
import { PortalDbError, type PortalDb } from '../../../src/keystore/portal-db.js';
import { openReplyLink } from '../../../src/keystore/portal-reply-links.js';
import { openPortalStore } from '../../../src/keystore/portal-store.js';
import { StoreConfigError } from '../../../src/keystore/sql/open.js';
import { withPassword } from '../../../src/keystore/sql/postgres.js';
import { isStoreUnavailable } from '../../../src/keystore/sql/types.js';
import { LoginGuard } from '../../../src/portal/lockout.js';
import { usePortalBackend } from '../../helpers/portal-backends.js';

const CHEAP = { N: 2 ** 10, r: 8, p: 1 };
const PORTAL_LOGIN = 'postern_portal';
const PORTAL_PASSWORD = 'portal-login-password-7';
const PORTAL_PASSWORD_ENV = 'POSTERN_TEST_PG_PORTAL_PASSWORD';

/** The README's grants ("Running a cluster"), run by the keystore's login after the first node made the schema. */
const README_GRANTS = `
  GRANT USAGE ON SCHEMA portal TO postern_portal;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA portal TO postern_portal;
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA portal TO postern_portal;
  REVOKE INSERT, UPDATE, DELETE ON portal.schema_version FROM postern_portal;
  REVOKE UPDATE, DELETE ON portal.audit_log FROM postern_portal;
  ALTER DEFAULT PRIVILEGES FOR ROLE postern IN SCHEMA portal GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO postern_portal;
  ALTER DEFAULT PRIVILEGES FOR ROLE postern IN SCHEMA portal GRANT USAGE, SELECT ON SEQUENCES TO postern_portal;
`;

describe('the portal store of a cluster (postgres)', () => {
  const backend = usePortalBackend('postgres');
  let nodeA: PortalDb;
  let nodeB: PortalDb;
  beforeEach(async () => {
    nodeA = await backend.open();
    nodeB = await backend.another({ role: 'portal', create: false });
  });
  afterEach(async () => {
    await nodeA.close();
    await nodeB.close();
  });

  it('a reply link made through node A is opened through node B, with the right password only', async () => {
    const { token, hash } = newReplyToken();
    const [sender, recipient] = ['alice@example.com', 'carol@partner.example'];
    const kdf = newContentKdf(CHEAP);
    const sealed = sealReplyData(await contentRoot('pair-password-1', kdf), { messageId: '<q1@example.com>', subject: 'Angebot', sender }, replyAad(hash, sender, recipient));
    const created = new Date();
    const expires = new Date(created.getTime() + 86_400_000);
    await nodeA.putReplyLink({ tokenHash: hash, senderKey: sender, recipientKey: recipient, sender, recipient, verifier: await makePdfVerifier('pair-password-1', CHEAP), contentKdf: kdf, sealed, created, expires });
    expect(await openReplyLink(nodeB, token, 'pair-password-1')).toEqual({ sender, recipient, messageId: '<q1@example.com>', subject: 'Angebot', created, expires });
    expect(await openReplyLink(nodeB, token, 'wrong-password')).toBeNull();
  });

  it('log-in failures count together, however the nodes interleave, and lock out on both', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? nodeA : nodeB).recordLoginFailure('client', '203.0.113.5')));
    expect((await nodeA.loginFailures('client', '203.0.113.5')).count).toBe(40);
    expect((await nodeB.loginFailures('client', '203.0.113.5')).count).toBe(40);
    const lockout = { account: 5, client: 20, backoff: 60_000, max_backoff: 3_600_000 };
    const onA = new LoginGuard(nodeA, lockout);
    const onB = new LoginGuard(nodeB, lockout);
    for (let i = 0; i < 5; i++) await onA.failed('bob@partner.example', `198.51.100.${i}`);
    expect(await onB.wait('bob@partner.example', '198.51.100.77')).toBeGreaterThan(0);
    await onB.succeeded('bob@partner.example');
    expect(await onA.wait('bob@partner.example', '198.51.100.77')).toBe(0);
  });

  it('a stopped server is "unavailable" (isStoreUnavailable), and the same stores work again once it is back', async () => {
    await nodeA.recordLoginFailure('account', 'bob@partner.example');
    const server = await backend.postgres();
    await server.halt();
    try {
      for (const attempt of [nodeA.loginFailures('account', 'bob@partner.example'), nodeB.recordLoginFailure('account', 'bob@partner.example')]) {
        const err = await attempt.then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(PortalDbError);
        expect((err as PortalDbError).code).toBe('unavailable');
        expect(isStoreUnavailable(err)).toBe(true);
        // The URL is named, never a password.
        expect((err as Error).message).not.toContain(server.password);
      }
    } finally {
      await server.resume();
    }
    expect(await nodeB.recordLoginFailure('account', 'bob@partner.example')).toMatchObject({ count: 2 });
    expect((await nodeA.loginFailures('account', 'bob@partner.example')).count).toBe(2);
  });

  it('the portal\'s own login, granted as the README says: the portal schema works, the keystore\'s is out of reach, nothing is migrated', async () => {
    const server = await backend.postgres();
    const config = backend.config();
    const url = config.keystore.postgres!.url;
    const database = new URL(url).pathname.slice(1);
    await server.query(`DROP ROLE IF EXISTS ${PORTAL_LOGIN}`).catch(() => undefined);
    await server.query(`CREATE ROLE ${PORTAL_LOGIN} LOGIN PASSWORD '${PORTAL_PASSWORD}'`);
    await server.query('CREATE SCHEMA keystore; CREATE TABLE keystore.secrets (x TEXT); ' + README_GRANTS, [], database);
    process.env[PORTAL_PASSWORD_ENV] = PORTAL_PASSWORD;
    const portalUrl = url.replace('postern@', `${PORTAL_LOGIN}@`);
    const withLogin = { ...config, keystore: { ...config.keystore, postgres: { ...config.keystore.postgres!, portal: { url: portalUrl, password_env: PORTAL_PASSWORD_ENV } } } };

    const portal = await openPortalStore(withLogin, { role: 'portal', create: false });
    try {
      const acc = await nodeA.createAccount({ address: 'dan@partner.example', addressKey: 'dan@partner.example', publicKey: Buffer.alloc(32, 1), wrapped: { kdf: 'k', iv: Buffer.alloc(12), ciphertext: Buffer.alloc(48) } });
      expect((await portal.account('dan@partner.example'))?.id).toBe(acc.id);
      await portal.touchLogin(acc.id);
      expect(await portal.recordLoginFailure('client', '192.0.2.1')).toMatchObject({ count: 1 });
      await portal.audit({ action: 'webmail.login', actor: 'dan@partner.example' });
      expect((await nodeA.auditRecords()).map((r) => r.action)).toEqual(['webmail.login']);
      // A table a later Postern adds (made by the keystore's login) is the portal's too.
      await server.query('SET ROLE postern; CREATE TABLE portal.later (x INTEGER); INSERT INTO portal.later VALUES (1)', [], database);
      const asPortal = new pg.Client({ connectionString: withPassword(portalUrl, PORTAL_PASSWORD) });
      await asPortal.connect();
      try {
        expect((await asPortal.query('SELECT x FROM portal.later')).rows).toEqual([{ x: 1 }]);
        for (const refused of ['SELECT * FROM keystore.secrets', 'DELETE FROM portal.audit_log', 'UPDATE portal.schema_version SET version = 0', 'CREATE TABLE portal.mine (x INTEGER)']) {
          await expect(asPortal.query(refused), refused).rejects.toMatchObject({ code: '42501' });
        }
      } finally {
        await asPortal.end();
      }
    } finally {
      await portal.close();
    }

    // A database the keystore's login has not set up yet: the portal's login makes nothing and says so.
    const empty = await server.createDatabase();
    await server.query(`CREATE SCHEMA portal; ${README_GRANTS.replace(/REVOKE[^;]*;/g, '')}`, [], new URL(empty).pathname.slice(1));
    const fresh = { ...withLogin, keystore: { ...withLogin.keystore, postgres: { ...withLogin.keystore.postgres, url: empty, portal: { url: empty.replace('postern@', `${PORTAL_LOGIN}@`), password_env: PORTAL_PASSWORD_ENV } } } };
    await expect(openPortalStore(fresh, { role: 'portal', create: false })).rejects.toMatchObject({ code: 'io', message: expect.stringMatching(/cannot be read/) });
    expect((await server.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'portal'", [], new URL(empty).pathname.slice(1))).rows[0].n).toBe(0);
  });

  it('the portal without a login of its own uses the keystore\'s, and makes the schema of a database nobody set up yet', async () => {
    const server = await backend.postgres();
    const config = backend.config();
    const empty = await server.createDatabase();
    const portal = await openPortalStore({ ...config, keystore: { ...config.keystore, postgres: { ...config.keystore.postgres!, url: empty } } }, { role: 'portal', create: false });
    try {
      expect(await portal.recordLoginFailure('client', '192.0.2.2')).toMatchObject({ count: 1 });
      expect(portal.backend.where).toBe(empty);
    } finally {
      await portal.close();
    }
  });

  it('a portal login naming another database than the keystore\'s is refused: the workers write where it would not look', async () => {
    const config = backend.config();
    const pgc = config.keystore.postgres!;
    const other = { ...config, keystore: { ...config.keystore, postgres: { ...pgc, portal: { url: pgc.url.replace(/\/[^/]+$/, '/elsewhere'), password_env: 'UNUSED' } } } };
    await expect(openPortalStore(other, { role: 'portal', create: false })).rejects.toBeInstanceOf(StoreConfigError);
  });
});
