/**
 * The webmail method against a real portal store, on both backends (portal.db in a temp dir, and
 * PostgreSQL's schema portal): the first message makes the mailbox
 * and tells its sender the password once; what the recipient gets is a notice with the link and
 * nothing of the message; the stored message opens with that password and equals what was sent;
 * a retry stores nothing twice; a message that finds the mailbox being made waits, one whose
 * maker crashed makes it anew; and every case that cannot be done is held with its reason.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import type { PortalDb } from '../../../src/keystore/portal-db.js';
import { newAccountKeys, openForAccount, unwrapAccountKey, webmailBodyAad as bodyAad, webmailSummaryAad as summaryAad } from '../../../src/keystore/webmail-crypto.js';
import { isStoreUnavailable } from '../../../src/keystore/sql/types.js';
import { silentLogger } from '../../../src/log/index.js';
import { PASSWORD_CLAIM_LEASE_MS, webmail, WebmailBusyError, webmailTiming } from '../../../src/worker/methods/webmail.js';
import type { SealResult, TransformContext } from '../../../src/worker/methods/types.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { PORTAL_BACKENDS, usePortalBackend } from '../../helpers/portal-backends.js';

const message = (tag: string) =>
  Buffer.from(
    `From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: Secret subject ${tag}\r\nMessage-ID: <${tag}@example.com>\r\nDate: Mon, 11 Mar 2024 09:00:00 +0100\r\n\r\nsecret body ${tag}\r\n`,
  );

type Ok = Extract<SealResult, { kind: 'ok' }>;

describe.each(PORTAL_BACKENDS)('webmail method (%s)', (name) => {
  const backend = usePortalBackend(name);
  let dir: string;
  let cleanup: () => Promise<void>;
  let portal: PortalDb;
  let config: Config;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-webmail-method-'));
    portal = await backend.open();
    config = testConfig(dir, { portal: { url: 'https://mail.example.com', organisation: 'Example Ltd' } as Config['portal'] });
  });
  afterEach(async () => {
    webmailTiming.busyWaitMs = 10_000;
    await portal.close();
    await cleanup();
  });

  /** One run of a message (its look-ups object is per run, as in the worker). */
  const ctx = (queueId: string, over: Partial<TransformContext> = {}): TransformContext =>
    ({ config, log: silentLogger(), queueId, sender: 'alice@example.com', portal, lookups: {}, ...over }) as TransformContext;
  const run = (queueId: string, body: Buffer, over: Partial<TransformContext> = {}, recipients = ['bob@partner.example']) => webmail.encrypt({ body, recipients, signInside: false }, ctx(queueId, over));
  const ok = (r: SealResult): Ok => {
    if (r.kind !== 'ok') throw new Error(`held: ${r.reason}`);
    return r;
  };
  const passwordIn = (r: Ok) => /\r\n\r\n {4}(\S+)\r\n\r\n/.exec(r.notices![0]!.body.toString('utf8'))![1]!;
  const commit = async (r: Ok) => {
    for (const f of r.afterCommit ?? []) await f();
  };

  it('first message: the mailbox is made, the sender told its password once, the recipient sent only the link', async () => {
    const sent = message('m1');
    const r = ok(await run('Q1', sent));
    // The recipient's copy is the notice: the link, no subject, no text.
    const notice = r.body.toString('utf8');
    expect(notice).toContain('https://mail.example.com/webmail/');
    expect(notice).toMatch(/^From: "Example Ltd" <postmaster@gw\.test\.example>\r\n/m);
    expect(notice).toMatch(/^To: <bob@partner\.example>\r\n/m);
    expect(notice).not.toMatch(/Secret subject|secret body|m1@example\.com/);
    expect(r.signed).toBe(false);
    // The sender's notice: the password, to the sender only.
    expect(r.notices).toHaveLength(1);
    expect(r.notices![0]!.to).toEqual(['alice@example.com']);
    expect(r.notices![0]!.key).toBe('webmail-password:bob@partner.example');
    const password = passwordIn(r);
    expect(password.length).toBeGreaterThanOrEqual(16);

    const account = (await portal.account('bob@partner.example'))!;
    expect(account).toMatchObject({ address: 'bob@partner.example', generation: 1, mustChangePassword: true, passwordTold: null, passwordClaim: { by: 'Q1' } });
    await commit(r);
    expect((await portal.account('bob@partner.example'))!).toMatchObject({ passwordTold: expect.any(Date) as Date, passwordClaim: null });

    // The stored message opens with the told password and is what was sent; its summary too.
    const key = (await unwrapAccountKey(password, account.wrapped))!;
    expect(key).not.toBeNull();
    const [stored] = await portal.listMessages(account.id);
    const full = (await portal.message(account.id, stored!.id))!;
    expect(openForAccount(key, full.body, bodyAad(account.id, 1, full.deliveryKey))!.equals(sent)).toBe(true);
    expect(full.deliveryKey).toBe('Q1:bob@partner.example');
    const summary = JSON.parse(openForAccount(key, full.summary, summaryAad(account.id, 1, full.deliveryKey))!.toString('utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ v: 1, subject: 'Secret subject m1', messageId: '<m1@example.com>', size: sent.length, correspondents: ['alice@example.com'] });
    // Bound to its place: under another delivery key or as the body it does not open.
    expect(openForAccount(key, full.body, bodyAad(account.id, 1, 'Q2:bob@partner.example'))).toBeNull();
    expect(openForAccount(key, full.summary, bodyAad(account.id, 1, full.deliveryKey))).toBeNull();
    expect(await unwrapAccountKey('wrong password', account.wrapped)).toBeNull();
    expect((await portal.auditRecords()).map((a) => a.action)).toContain('webmail.created');
  });

  it('a message that would take the mailbox past webmail.max_mailbox is held with the reason, nothing stored', async () => {
    const first = ok(await run('Q1', message('m1')));
    await commit(first);
    const size = message('m2').length;
    config = { ...config, webmail: { ...config.webmail, max_mailbox: 2 * size } };
    ok(await run('Q2', message('m2')));
    const held = await run('Q3', message('m3'));
    expect(held).toEqual({ kind: 'hold', reason: `the webmail mailbox of bob@partner.example holds ${2 * size} bytes; with this message (${size}) it would pass webmail.max_mailbox (${2 * size})` });
    const account = (await portal.account('bob@partner.example'))!;
    expect((await portal.listMessages(account.id)).map((m) => m.deliveryKey)).toEqual(['Q2:bob@partner.example', 'Q1:bob@partner.example']);
  });

  it('a retry stores nothing twice; a later message sends a notice and no password', async () => {
    const first = ok(await run('Q1', message('m1')));
    await commit(first);
    const again = ok(await run('Q1', message('m1')));
    expect(again.notices).toBeUndefined();
    const later = ok(await run('Q2', message('m2')));
    expect(later.notices).toBeUndefined();
    expect(later.afterCommit).toBeUndefined();
    expect(later.body.toString('utf8')).toContain('https://mail.example.com/webmail/');
    const account = (await portal.account('bob@partner.example'))!;
    expect((await portal.listMessages(account.id)).map((m) => m.deliveryKey).sort()).toEqual(['Q1:bob@partner.example', 'Q2:bob@partner.example']);
    // An existing mailbox takes mail whoever sends it, the null sender too (no password to tell).
    ok(await run('Q3', message('m3'), { sender: '' }));
    ok(await run('Q4', message('m4'), { sender: 'someone@outside.example' }));
    expect(await portal.listMessages(account.id)).toHaveLength(4);
  });

  it('holds, with the reason, what it cannot do', async () => {
    const reason = async (p: Promise<SealResult>) => {
      const r = await p;
      expect(r.kind).toBe('hold');
      return r.kind === 'hold' ? r.reason : '';
    };
    expect(await reason(run('Q1', message('m1'), { sender: '' }))).toMatch(/null sender/);
    expect(await reason(run('Q1', message('m1'), { sender: 'mallory@outside.example' }))).toMatch(/mallory@outside\.example is not in internal_domains/);
    expect(await portal.account('bob@partner.example')).toBeNull();
    expect(await reason(run('Q1', message('m1'), { config: testConfig(dir) }))).toMatch(/portal\.url/);
    expect(await reason(run('Q1', message('m1'), { portal: undefined }))).toMatch(/portal\.db/);
    expect(await reason(run('Q1', message('m1'), {}, ['a@partner.example', 'b@partner.example']))).toMatch(/per recipient, and this copy has 2/);
    const limited = testConfig(dir, { portal: { url: 'https://mail.example.com', organisation: 'X' } as Config['portal'], webmail: { max_message_size: 100 } });
    expect(await reason(run('Q1', message('m1'), { config: limited }))).toMatch(/more than webmail\.max_message_size \(100\)/);
    // A full mailbox: held (an admin releases it once there is room); the mail in it stays.
    await commit(ok(await run('Q1', message('m1'))));
    const full = testConfig(dir, { portal: { url: 'https://mail.example.com', organisation: 'X' } as Config['portal'], webmail: { max_mailbox: message('m1').length + 10 } });
    expect(await reason(run('Q2', message('m2'), { config: full }))).toMatch(/mailbox of bob@partner\.example holds \d+ bytes; with this message \(\d+\) it would pass webmail\.max_mailbox/);
    expect(await portal.listMessages((await portal.account('bob@partner.example'))!.id)).toHaveLength(1);
  });

  it('waits while another message makes the mailbox; makes it anew after its own crash or a lapsed claim', async () => {
    // Q1 made it, its notice not yet durable: Q2 waits a while in the worker, then fails
    // temporarily (the worker tries it again later).
    const q1 = ok(await run('Q1', message('m1')));
    const p1 = passwordIn(q1);
    webmailTiming.busyWaitMs = 300;
    const busy = await run('Q2', message('m2')).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(WebmailBusyError);
    expect((busy as WebmailBusyError).temporary).toBe(true);

    // Q1 crashed before its outputs were durable, and runs again: nobody knows p1, so new keys.
    const again = ok(await run('Q1', message('m1')));
    const p2 = passwordIn(again);
    expect(p2).not.toBe(p1);
    const account = (await portal.account('bob@partner.example'))!;
    expect(account.generation).toBe(2);
    expect(await unwrapAccountKey(p1, account.wrapped)).toBeNull();
    expect(await unwrapAccountKey(p2, account.wrapped)).not.toBeNull();
    expect((await portal.listMessages(account.id)).map((m) => m.deliveryKey)).toEqual(['Q1:bob@partner.example']);
    // Its bookkeeping for the old generation changes nothing; for the new one it marks told.
    await commit(q1);
    expect((await portal.account('bob@partner.example'))!.passwordTold).toBeNull();
    await commit(again);
    expect((await portal.account('bob@partner.example'))!.passwordTold).not.toBeNull();
  });

  it('a message that finds the mailbox being made waits for the maker\'s notice, then stores without a password', async () => {
    const q1 = ok(await run('Q1', message('m1')));
    const waiting = run('Q2', message('m2'));
    // Q1's outputs become durable while Q2 waits: Q2 then stores its message, no second password.
    await new Promise((r) => setTimeout(r, 500));
    await commit(q1);
    const q2 = ok(await waiting);
    expect(q2.notices).toBeUndefined();
    const account = (await portal.account('bob@partner.example'))!;
    expect(account.generation).toBe(1);
    expect(await portal.listMessages(account.id)).toHaveLength(2);
    expect(await unwrapAccountKey(passwordIn(q1), account.wrapped)).not.toBeNull();
  });

  it('two messages that each made a mailbox the other needs: the younger goes on, the older gives way and takes back what it made', async () => {
    const r1 = 'r1@partner.example';
    const r2 = 'r2@partner.example';
    const runA = { lookups: {} } as Partial<TransformContext>;
    const runB = { lookups: {} } as Partial<TransformContext>;
    const a1 = ok(await run('QA', message('a'), runA, [r1]));
    const b2 = ok(await run('QB', message('b'), runB, [r2]));
    // A (older) needs r2, which younger B is making: A does not wait, and r1 goes with it.
    const gaveWay = await run('QA', message('a'), runA, [r2]).catch((e: unknown) => e);
    expect(gaveWay).toBeInstanceOf(WebmailBusyError);
    expect(await portal.account(r1)).toBeNull();
    // B needs r1: free now, B makes it; B's outputs become durable.
    const b1 = ok(await run('QB', message('b'), runB, [r1]));
    for (const r of [b2, b1]) await commit(r);
    // A's next run finds both told: stored, no password from A.
    for (const r of [r1, r2]) {
      const again = ok(await run('QA', message('a'), {}, [r]));
      expect(again.notices).toBeUndefined();
      expect(await unwrapAccountKey(passwordIn(r === r1 ? b1 : b2), (await portal.account(r))!.wrapped)).not.toBeNull();
    }
    expect(a1.notices).toHaveLength(1);
  });

  it('a claim past its lease (its message was held) is taken over: new keys, the new sender told', async () => {
    const keys = await newAccountKeys('never-told-password');
    const made = await portal.createAccount({ address: 'bob@partner.example', addressKey: 'bob@partner.example', ...keys, claim: 'QOLD', now: new Date(Date.now() - PASSWORD_CLAIM_LEASE_MS - 1000) });
    expect(made.passwordClaim?.by).toBe('QOLD');
    const r = ok(await run('Q9', message('m9')));
    expect(r.notices![0]!.to).toEqual(['alice@example.com']);
    const account = (await portal.account('bob@partner.example'))!;
    expect(account.generation).toBe(2);
    expect(await unwrapAccountKey(passwordIn(r), account.wrapped)).not.toBeNull();
    expect((await portal.auditRecords()).map((a) => a.action)).toContain('webmail.remade');
  });
});

describe('webmail method on a PostgreSQL server that stops (postgres)', () => {
  const backend = usePortalBackend('postgres');

  it('throws what isStoreUnavailable recognises (the worker defers the message: never held, bounced or sent), and stores once the server is back', async () => {
    const { dir, cleanup } = await tempDir('postern-webmail-outage-');
    const portal = await backend.open();
    try {
      const config = testConfig(dir, { portal: { url: 'https://mail.example.com', organisation: 'Example Ltd' } as Config['portal'] });
      const run = (queueId: string) =>
        webmail.encrypt({ body: message(queueId), recipients: ['bob@partner.example'], signInside: false }, { config, log: silentLogger(), queueId, sender: 'alice@example.com', portal, lookups: {} } as TransformContext);
      const server = await backend.postgres();
      await server.halt();
      let err: unknown;
      try {
        err = await run('Q1').then(() => null, (e: unknown) => e);
      } finally {
        await server.resume();
      }
      expect(isStoreUnavailable(err)).toBe(true);
      expect(await portal.account('bob@partner.example')).toBeNull();
      const r = await run('Q1');
      expect(r.kind).toBe('ok');
      for (const f of r.kind === 'ok' ? (r.afterCommit ?? []) : []) await f();
      const account = (await portal.account('bob@partner.example'))!;
      expect((await portal.listMessages(account.id)).map((m) => m.deliveryKey)).toEqual(['Q1:bob@partner.example']);
    } finally {
      await portal.close();
      await cleanup();
    }
  });
});
