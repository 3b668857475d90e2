/**
 * The portal's foundation without a network: the escaping template, the language choice, the
 * CSRF and session rules, the lock-out arithmetic, and the guards every route gets (headers,
 * CSRF, cross-site refusal, error pages), through Fastify's inject().
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.js';
import { buildPortalApp, CSP, html, langOf, LoginGuard, t, trusted, type PortalPages } from '../../../src/portal/index.js';
import { WkdIndex } from '../../../src/portal/wkd.js';
import { testConfig } from '../../helpers/config.js';

describe('html``', () => {
  it('escapes every value unless it is Html already', () => {
    const name = '<img src=x onerror=alert(1)> & "q" \'s\'';
    expect(html`<p title="${name}">${name}</p>`.text).toBe(
      '<p title="&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;s&#39;">&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;s&#39;</p>',
    );
    expect(html`<div>${html`<b>${'<i>'}</b>`}${trusted('<br>')}${null}${false}${[1, '<', html`<hr>`]}</div>`.text).toBe('<div><b>&lt;i&gt;</b><br>1&lt;<hr></div>');
  });
});

describe('langOf', () => {
  it.each([
    [undefined, 'en'],
    ['de-DE,de;q=0.9,en;q=0.8', 'de'],
    ['fr-CH, fr;q=0.9, de;q=0.7, en;q=0.8', 'en'],
    ['fr, de;q=0.5', 'de'],
    ['en;q=0, de', 'de'],
    ['xx'.repeat(5000), 'en'],
  ])('%s → %s', (header, want) => expect(langOf(header)).toBe(want));

  it('fills values into the text of the language, English where German lacks one', () => {
    expect(t('de', 'login.locked', { minutes: 5 })).toBe('Zu viele Fehlversuche. Versuchen Sie es in 5 Minuten noch einmal.');
    expect(() => t('en', 'no.such.text')).toThrow(/missing/);
  });
});

describe('LoginGuard', () => {
  const counters = () => {
    const m = new Map<string, { count: number; last: Date | null }>();
    return {
      m,
      loginFailures: async (k: string, key: string) => m.get(`${k}:${key}`) ?? { count: 0, last: null },
      recordLoginFailure: async (k: string, key: string, now = new Date()) => {
        const v = { count: (m.get(`${k}:${key}`)?.count ?? 0) + 1, last: now };
        m.set(`${k}:${key}`, v);
        return v;
      },
      clearLoginFailures: async (k: string, key: string) => void m.delete(`${k}:${key}`),
    };
  };
  it('lets tries through below the threshold, then doubles the wait to the cap; a success clears the account only', async () => {
    let clock = 1_000_000;
    const store = counters();
    const g = new LoginGuard(store, { account: 3, client: 5, backoff: 60_000, max_backoff: 240_000 }, () => clock);
    for (let i = 0; i < 2; i++) await g.failed('a@x', '192.0.2.1');
    expect(await g.wait('a@x', '192.0.2.1')).toBe(0);
    await g.failed('a@x', '192.0.2.1');
    expect(await g.wait('a@x', '192.0.2.1')).toBe(60_000);
    clock += 60_000;
    expect(await g.wait('a@x', '192.0.2.1')).toBe(0);
    await g.failed('a@x', '192.0.2.1');
    expect(await g.wait('a@x', '192.0.2.1')).toBe(120_000);
    for (let i = 0; i < 5; i++) await g.failed('a@x', '192.0.2.1');
    expect(await g.wait('a@x', '192.0.2.1')).toBe(240_000);
    // The client address is locked for every account, too.
    expect(await g.wait('b@x', '192.0.2.1')).toBe(240_000);
    expect(await g.wait('a@x', '198.51.100.7')).toBe(240_000);
    await g.succeeded('a@x');
    expect(await g.wait('a@x', '198.51.100.7')).toBe(0);
    expect(await g.wait('b@x', '192.0.2.1')).toBe(240_000);
    // A day later all is forgiven.
    clock += 86_400_001;
    expect(await g.wait('b@x', '192.0.2.1')).toBe(0);
  });
});

async function app(pages?: (app: import('fastify').FastifyInstance, p: PortalPages) => void) {
  const config = testConfig('/nonexistent', { portal: { listen: [{ host: '127.0.0.1', port: 0 }] } as never });
  const wkd = new WkdIndex({ listPgpKeys: async () => [], pgpKeysFor: async () => [] }, config.internal_domains, 60_000);
  return buildPortalApp({ config, log: silentLogger(), machine: { wkd, wkdEnabled: true, log: silentLogger(), crlPath: null, crl: null }, tls: false, ...(pages ? { pages: [pages] } : {}) });
}

const cookiesOf = (res: { headers: Record<string, unknown> }) =>
  ([res.headers['set-cookie']].flat().filter(Boolean) as string[]).map((c) => c.split(';')[0]!).join('; ');

describe('the portal application', () => {
  it('sends the security headers and a page in the visitor\'s language for an unknown path', async () => {
    const { app: a } = await app();
    const res = await a.inject({ url: '/nothing-here', headers: { 'accept-language': 'de', accept: 'text/html' } });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-security-policy']).toBe(CSP);
    expect(CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toContain('<html lang="de">');
    expect(res.body).toContain('Diese Seite gibt es nicht');
    expect(res.body).not.toMatch(/<script>|\son\w+=|javascript:/i);
    // Programs get plain text.
    const plain = await a.inject({ url: '/.well-known/openpgpkey/example.com/hu/nothing' });
    expect([plain.statusCode, plain.body]).toEqual([404, 'not found\n']);
    await a.close();
  });

  it('serves its own style sheet and script with an ETag, and 304 when unchanged', async () => {
    const { app: a } = await app();
    const css = await a.inject({ url: '/assets/portal.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect((await a.inject({ url: '/assets/portal.css', headers: { 'if-none-match': String(css.headers.etag) } })).statusCode).toBe(304);
    expect((await a.inject({ url: '/assets/portal.js' })).headers['content-type']).toMatch(/^text\/javascript/);
    await a.close();
  });

  it('refuses a form without its CSRF token, with another browser\'s, from another session, or cross-site', async () => {
    let token = '';
    const { app: a } = await app((f, p) => {
      f.get('/form', async (req, reply) => {
        token = p.sessions.csrfToken(req, reply);
        return reply.send('form');
      });
      f.post('/login', async (req, reply) => {
        p.sessions.start(req, reply, { kind: 'test', subject: 'a@x' });
        return reply.send('in');
      });
      f.post('/act', async (_req, reply) => reply.send('done'));
    });
    const first = await a.inject({ url: '/form' });
    const cookies = cookiesOf(first);
    const post = (url: string, body: string, c = cookies, extra: Record<string, string> = {}) =>
      a.inject({ method: 'POST', url, payload: body, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: c, accept: 'text/html', ...extra } });
    expect((await post('/act', 'x=1')).statusCode).toBe(403);
    expect((await post('/act', `_csrf=${token}`, '')).statusCode).toBe(403);
    expect((await post('/act', `_csrf=${token}`, cookies, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    expect((await post('/act', `_csrf=${token}`)).body).toBe('done');
    // Signing in makes a session: the form token from before it is worth nothing after it.
    const login = await post('/login', `_csrf=${token}`);
    expect(login.statusCode).toBe(200);
    const session = `${cookies}; ${cookiesOf(login)}`;
    expect(cookiesOf(login)).toMatch(/^postern-session=/);
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly/);
    expect(String(login.headers['set-cookie'])).toMatch(/SameSite=Strict/);
    expect((await post('/act', `_csrf=${token}`, session)).statusCode).toBe(403);
    await a.inject({ url: '/form', headers: { cookie: session } });
    expect((await post('/act', `_csrf=${token}`, session)).body).toBe('done');
    await a.close();
  });
});
