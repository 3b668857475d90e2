/**
 * The console's pages through the admin app (Fastify inject) on a real keystore and spool: no page
 * without a session, the sign-in form's CSRF and errors, the dashboard and queue pages from the
 * API, controls disabled for the Auditor with the permission in their title, a forged change by
 * the Auditor refused (403, audited, nothing moved), a change by an Administrator done and
 * redirected, and hostile text from the queue escaped. Chromium and a real gateway:
 * test/integration/admin-console.test.ts.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolesGranting } from '../../../src/admin/index.js';
import { ADMIN_ROLE_TITLES } from '../../../src/core/admin-roles.js';
import { newQueueId, type Envelope } from '../../../src/core/index.js';
import { ADMIN_PASSWORD, adminHarness, type AdminHarness } from '../../helpers/admin.js';
import { opensslCa, opensslMailbox, run } from '../../helpers/pki-openssl.js';

interface Browser {
  cookies: Map<string, string>;
}

const cookieHeader = (b: Browser) => [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
function keep(b: Browser, res: LightMyRequestResponse): LightMyRequestResponse {
  for (const c of res.cookies) {
    if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) b.cookies.delete(c.name);
    else b.cookies.set(c.name, c.value);
  }
  return res;
}
const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

describe('admin console pages', () => {
  let h: AdminHarness;
  let deferredId: string;

  const get = async (b: Browser, url: string) => keep(b, await h.app.inject({ method: 'GET', url, headers: { cookie: cookieHeader(b) } }));
  const post = async (b: Browser, url: string, fields: Record<string, string>) =>
    keep(b, await h.app.inject({ method: 'POST', url, headers: { cookie: cookieHeader(b), 'content-type': 'application/x-www-form-urlencoded' }, payload: form(fields) }));

  async function signedIn(name: string): Promise<Browser> {
    const b: Browser = { cookies: new Map() };
    const login = await get(b, '/login');
    const res = await post(b, '/login', { _csrf: csrfOf(login.body), name, password: ADMIN_PASSWORD, next: '/' });
    expect(res.statusCode).toBe(303);
    return b;
  }

  beforeAll(async () => {
    h = await adminHarness({ prefix: 'postern-console-', roles: ['administrator', 'auditor', 'system_operator'] });
    const env: Envelope = {
      sender: 'alice@example.com',
      recipients: [{ address: 'far@partner.example' }],
      client: { address: '192.0.2.7', port: 40000, helo: 'client.example', hostname: '[192.0.2.7]', protocol: 'ESMTP', trusted: true },
      receivedAt: new Date(Date.now() - 600_000).toISOString(),
    };
    const name = await h.spool.inject(newQueueId(), { envelope: env, body: Buffer.from('Subject: x\r\n\r\nbody\r\n') });
    const entry = await h.spool.openEntry('outgoing', name);
    const now = new Date().toISOString();
    await entry.append([
      { t: 'rcpt', at: now, rcpt: 'far@partner.example', status: 'deferred', reply: '451 4.7.1 <script>alert(1)</script> greylisted', dsn: '4.7.1' },
      { t: 'attempt', at: now, n: 1, next: new Date(Date.now() + 3_600_000).toISOString() },
    ]);
    await entry.close();
    await h.spool.move('outgoing', 'deferred', name);
    deferredId = name.split('.')[0]!;
  });
  afterAll(async () => h?.close());

  it('sends a browser without a session to /login, and back where it was after signing in', async () => {
    const b: Browser = { cookies: new Map() };
    for (const url of ['/', '/queue', `/queue/${deferredId}`]) {
      const res = await get(b, url);
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toMatch(/^\/login/);
    }
    const login = await get(b, `/login?next=${encodeURIComponent('/queue?queue=deferred')}`);
    expect(login.body).toContain('name="next" value="/queue?queue=deferred"');
    const res = await post(b, '/login', { _csrf: csrfOf(login.body), name: 'op-administrator', password: ADMIN_PASSWORD, next: '/queue?queue=deferred' });
    expect(res.headers.location).toBe('/queue?queue=deferred');
    // Another host or a scheme is never a place to go back to.
    const evil = await get({ cookies: new Map() }, '/login?next=//evil.example/x');
    expect(evil.body).toContain('name="next" value="/"');
  });

  it('refuses a sign-in form without its CSRF token, and says a wrong password without saying which part', async () => {
    const b: Browser = { cookies: new Map() };
    await get(b, '/login');
    expect((await post(b, '/login', { name: 'op-administrator', password: ADMIN_PASSWORD })).statusCode).toBe(403);
    const login = await get(b, '/login');
    const res = await post(b, '/login', { _csrf: csrfOf(login.body), name: 'op-administrator', password: 'wrong' });
    expect(res.statusCode).toBe(401);
    expect(res.body).toContain('Wrong name, password or code.');
    expect(res.body).not.toContain('wrong"');
    expect(b.cookies.has('postern-admin')).toBe(false);
  });

  it('shows the dashboard: roles, queue sizes, deferred reasons (escaped)', async () => {
    const b = await signedIn('op-administrator');
    const res = await get(b, '/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.body).toMatch(/data-queue="deferred"><span class="n">1<\/span>/);
    expect(res.body).toContain('data-role="admin"');
    expect(res.body).toContain('451 4.7.1 &lt;script&gt;alert(1)&lt;/script&gt; greylisted');
    expect(res.body).not.toContain('<script>alert(1)');
    expect(res.body).toContain('No certificate expires within 30 days.');
    expect(res.body).toContain('Recent warnings and errors');
  });

  it('shows a role what it may not read as a note, not as an error page', async () => {
    const b = await signedIn('op-system_operator');
    const res = await get(b, '/');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Expiring certificates: needs keys.read');
  });

  it('greys out every change for the Auditor and refuses a forged one (403, audited, nothing moved)', async () => {
    const b = await signedIn('op-auditor');
    const page = await get(b, `/queue/${deferredId}`);
    expect(page.statusCode).toBe(200);
    const buttons = [...page.body.matchAll(/<button type="submit"[^>]*data-permission="queue.change"[^>]*>/g)].map((m) => m[0]);
    expect(buttons.length).toBe(3);
    const who = rolesGranting('queue.change').map((r) => ADMIN_ROLE_TITLES[r]).join(', ');
    expect(who).toMatch(/^Administrator, /);
    for (const btn of buttons) expect(btn).toContain(` disabled title="needs queue.change (${who})"`);

    const res = await post(b, `/queue/${deferredId}/delete`, { _csrf: csrfOf(page.body) });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('not allowed: needs queue.change');
    expect(await readdir(h.spool.dir('deferred'))).toHaveLength(1);
    const denied = (await h.store.auditLog({})).filter((a) => a.action === 'denied');
    expect(denied.at(-1)).toMatchObject({ actor: 'op-auditor', object: 'api:POST /queue/:id/delete', via: 'console' });
  });

  it('refuses a change without the form token, even from a signed-in Administrator', async () => {
    const b = await signedIn('op-administrator');
    const res = await post(b, `/queue/${deferredId}/hold`, {});
    expect(res.statusCode).toBe(403);
    expect(await readdir(h.spool.dir('hold'))).toHaveLength(0);
  });

  it('lets an Administrator hold and release, redirecting with the outcome', async () => {
    const b = await signedIn('op-administrator');
    const page = await get(b, `/queue/${deferredId}`);
    expect(page.body).not.toMatch(/<button[^>]*disabled/);
    const held = await post(b, `/queue/${deferredId}/hold`, { _csrf: csrfOf(page.body) });
    expect(held.statusCode).toBe(303);
    expect(held.headers.location).toBe(`/queue/${deferredId}?done=queue.hold`);
    expect(await readdir(h.spool.dir('hold'))).toHaveLength(1);
    const after = await get(b, held.headers.location as string);
    expect(after.body).toContain('The message is held');
    expect(after.body).toContain('>Release</button>');
    const released = await post(b, `/queue/${deferredId}/release`, { _csrf: csrfOf(after.body) });
    expect(released.statusCode).toBe(303);
    expect(await readdir(h.spool.dir('hold'))).toHaveLength(0);
    const actions = (await h.store.auditLog({})).filter((a) => a.actor === 'op-administrator' && a.action.startsWith('queue.')).map((a) => [a.action, a.via]);
    expect(actions).toEqual([['queue.hold', 'console'], ['queue.release', 'console']]);
  });

  it('ignores a done= key it does not know (no text of a link\'s choosing on the page)', async () => {
    const b = await signedIn('op-administrator');
    const res = await get(b, '/queue?done=You%20must%20re-enter%20your%20password%20at%20evil.example');
    expect(res.body).not.toContain('evil.example');
  });

  it('activates the policy with LF line ends whatever the browser sent, and refuses an edit of a version no longer in force', async () => {
    await writeFile(h.config.policy.file, 'rules: []\n');
    const b = await signedIn('op-administrator');
    const page = await get(b, '/policy');
    const hash = /name="hash" value="([0-9a-f]{64})"/.exec(page.body)![1]!;
    const text = 'rules:\r\n  - name: sign outbound\r\n    when: { direction: outbound }\r\n    do: [sign]\r\n';
    const res = await post(b, '/policy', { _csrf: csrfOf(page.body), hash, text, do: 'activate' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/policy?done=policy.activate');
    expect(await readFile(h.config.policy.file, 'utf8')).toBe(text.replace(/\r\n/g, '\n'));
    // A second edit from the same (now old) version: refused, the draft kept in the editor.
    const stale = await post(b, '/policy', { _csrf: csrfOf(page.body), hash, text: 'rules: []\n', do: 'activate' });
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('the policy changed since it was read');
    expect(stale.body).toMatch(/<textarea[^>]*>\nrules: \[\]\n<\/textarea>/);
    expect(await readFile(h.config.policy.file, 'utf8')).toBe(text.replace(/\r\n/g, '\n'));
  });

  it('shows the audit trail escaped, and the configuration with the reload only for who may reload', async () => {
    await h.store.audit({ actor: 'op-administrator', action: 'cert.import', object: 'cert:x', detail: '<img src=x onerror=alert(1)> imported', via: 'api', client: '192.0.2.1' });
    const auditor = await signedIn('op-auditor');
    const audit = await get(auditor, '/audit?action=cert.import');
    expect(audit.statusCode).toBe(200);
    expect(audit.body).toContain('&lt;img src=x onerror=alert(1)&gt; imported');
    expect(audit.body).not.toContain('<img src=x');
    const config = await get(auditor, '/config');
    expect(config.body).toContain(`hostname: ${h.config.hostname}`);
    expect(config.body).toMatch(/<button[^>]*data-permission="system.change" disabled title="needs system.change/);
    const admin = await signedIn('op-administrator');
    const page = await get(admin, '/config');
    const reloads = h.reloads;
    const res = await post(admin, '/config/reload', { _csrf: csrfOf(page.body) });
    expect(res.headers.location).toBe('/config?done=system.reload');
    expect(h.reloads).toBe(reloads + 1);
  });

  it('imports a certificate from a DER file (multipart, CSRF first), and refuses the upload without the token', async () => {
    const ca = await opensslCa(h.dir, 'Upload CA');
    const mailbox = await opensslMailbox(h.dir, ca, 'dora@example.com', 'ec');
    const der = (await run('openssl', ['x509', '-in', mailbox.cert, '-outform', 'DER'], { encoding: 'buffer' })).stdout as Buffer;
    const b = await signedIn('op-administrator');
    const page = await get(b, '/keys');
    const upload = (fields: [string, string][]) => {
      const boundary = 'console-test-boundary';
      const parts = fields.map(([k, v]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
      const file = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="dora.cer"\r\nContent-Type: application/pkix-cert\r\n\r\n`), der, Buffer.from(`\r\n--${boundary}--\r\n`)]);
      return h.app.inject({ method: 'POST', url: '/keys/import', headers: { cookie: cookieHeader(b), 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: Buffer.concat([...parts, file]) });
    };
    const refused = await upload([['pem', '']]);
    expect(refused.statusCode).toBe(403);
    expect(await h.store.listCertificates({ address: 'dora@example.com' })).toHaveLength(0);
    const res = await upload([['_csrf', csrfOf(page.body)], ['pem', ''], ['password', '']]);
    expect(res.statusCode).toBe(303);
    const stored = await h.store.listCertificates({ address: 'dora@example.com' });
    expect(stored).toHaveLength(1);
    expect(res.headers.location).toBe(`/keys/certificates/${stored[0]!.fingerprint}?done=cert.import`);
  });

  it('signs out through the API (audited) and the session cookie is gone', async () => {
    const b = await signedIn('op-administrator');
    const page = await get(b, '/');
    const res = await post(b, '/logout', { _csrf: csrfOf(page.body) });
    expect(res.statusCode).toBe(303);
    expect((await get(b, '/')).statusCode).toBe(303);
    expect((await h.store.auditLog({})).at(-1)).toMatchObject({ action: 'logout', actor: 'op-administrator' });
  });
});
