/**
 * portal.db's record of whether a mailbox's password was told (migration 2): an account made with
 * a claim is untold until its notice is queued, one made or reset by an admin is told at once; a
 * claimed reset is refused as stale once another remade the keys; the bookkeeping of an old key
 * generation never marks a newer one told. On both backends (portal.db and PostgreSQL).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PortalDbError, type PortalDb } from '../../../src/keystore/portal-db.js';
import { newAccountKeys } from '../../../src/keystore/webmail-crypto.js';
import { PORTAL_BACKENDS, usePortalBackend } from '../../helpers/portal-backends.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const T0 = new Date('2026-03-01T10:00:00Z');

describe.each(PORTAL_BACKENDS)('the portal store: the password told (%s)', (name) => {
  const backend = usePortalBackend(name);
  let db: PortalDb;
  beforeEach(async () => {
    db = await backend.open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('claimed: untold until marked, for that generation only; unclaimed: told when made', async () => {
    const keys = await newAccountKeys('first-password-1', FAST);
    const a = await db.createAccount({ address: 'bob@partner.example', addressKey: 'bob@partner.example', ...keys, claim: 'Q1', now: T0 });
    expect(a).toMatchObject({ passwordTold: null, passwordClaim: { by: 'Q1', at: T0 } });
    expect(await db.markPasswordTold(a.id, 2)).toBe(false);
    expect((await db.accountById(a.id))!.passwordTold).toBeNull();
    expect(await db.markPasswordTold(a.id, 1, new Date(T0.getTime() + 1000))).toBe(true);
    expect((await db.accountById(a.id))!).toMatchObject({ passwordTold: new Date(T0.getTime() + 1000), passwordClaim: null });
    // Once told, marking again changes nothing.
    expect(await db.markPasswordTold(a.id, 1)).toBe(false);

    const b = await db.createAccount({ address: 'carol@partner.example', addressKey: 'carol@partner.example', ...keys, now: T0 });
    expect(b).toMatchObject({ passwordTold: T0, passwordClaim: null });
  });

  it('a reset by an admin is told at once; a claimed one is untold, and refused as stale after another', async () => {
    const keys = await newAccountKeys('first-password-1', FAST);
    const a = await db.createAccount({ address: 'bob@partner.example', addressKey: 'bob@partner.example', ...keys, claim: 'Q1', now: T0 });
    const t1 = new Date(T0.getTime() + 60_000);
    expect(await db.resetAccount(a.id, await newAccountKeys('second-password', FAST), t1, { claim: 'Q2', generation: 1 })).toEqual({ generation: 2, removedMessages: 0 });
    expect((await db.accountById(a.id))!).toMatchObject({ generation: 2, passwordTold: null, passwordClaim: { by: 'Q2', at: t1 } });
    // Q3 read generation 1 before Q2's reset: its reset is refused, Q2's keys stay.
    const stale = await db.resetAccount(a.id, await newAccountKeys('third-password', FAST), t1, { claim: 'Q3', generation: 1 }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(PortalDbError);
    expect((stale as PortalDbError).code).toBe('stale');
    // Q1's late bookkeeping does not mark generation 2 told.
    expect(await db.markPasswordTold(a.id, 1)).toBe(false);
    // An admin's reset (postern webmail reset): told, the claim gone.
    const t2 = new Date(T0.getTime() + 120_000);
    await db.resetAccount(a.id, await newAccountKeys('admin-password', FAST), t2);
    expect((await db.accountById(a.id))!).toMatchObject({ generation: 3, passwordTold: t2, passwordClaim: null });
  });
});
