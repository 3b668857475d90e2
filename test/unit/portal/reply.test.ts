/**
 * The PDF reply pages through Fastify's inject(), over a real portal.db and a real spool: the
 * same 404 for every unknown link, the password checked with the lock-out, the reply spooled to
 * our user (read back by Python's email), the replier's copy a PDF that qpdf opens with the
 * password and not without, and the attacks: no CSRF token, a cookie replayed after sign-out, an
 * oversized upload, a file before the form's token, path traversal in a file name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { header, parseMail, type ParsedPart } from '../../helpers/mail-parse.js';
import { popplerAttachments } from '../../helpers/pdf-readers.js';
import { addLink, cookiesOf, csrfOf, multipart, replyApp, type UploadFile } from './reply-helpers.js';

type App = Awaited<ReturnType<typeof replyApp>>;

/** A visitor: cookies kept across requests as a browser keeps them. */
class Visitor {
  readonly jar = new Map<string, string>();
  constructor(readonly a: App, readonly lang = 'en') {}
  private keep<T extends { headers: Record<string, unknown> }>(res: T): T {
    for (const c of [res.headers['set-cookie']].flat().filter(Boolean) as string[]) {
      const [pair] = c.split(';');
      const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)];
      if (!value || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }
  get cookie() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  async get(url: string) {
    return this.keep(await this.a.app.inject({ url, headers: { cookie: this.cookie, accept: 'text/html', 'accept-language': this.lang } }));
  }
  async post(url: string, form: Record<string, string>) {
    return this.keep(
      await this.a.app.inject({ method: 'POST', url, payload: new URLSearchParams(form).toString(), headers: { cookie: this.cookie, accept: 'text/html', 'accept-language': this.lang, 'content-type': 'application/x-www-form-urlencoded' } }),
    );
  }
  async upload(url: string, fields: [string, string][], files: UploadFile[] = [], filesFirst = false) {
    const { payload, contentType } = multipart(fields, files, filesFirst);
    return this.keep(await this.a.app.inject({ method: 'POST', url, payload, headers: { cookie: this.cookie, accept: 'text/html', 'accept-language': this.lang, 'content-type': contentType } }));
  }
  /** Open the link and sign in; the reply form's page. */
  async signIn(token: string, password: string) {
    const page = await this.get(`/r/${token}`);
    const res = await this.post(`/r/${token}`, { _csrf: csrfOf(page.body), password });
    if (res.statusCode !== 303) return res;
    return this.get(String(res.headers.location));
  }
}

let dir: string;
let a: App;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-reply-'));
});
afterEach(async () => {
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function incoming(): Promise<{ envelope: { sender: string; recipients: { address: string }[]; client: { address: string; trusted: boolean } }; body: Buffer }[]> {
  const names = await a.spool.list('incoming');
  return Promise.all(names.map(async (n) => {
    const e = await a.spool.read('incoming', n);
    return { envelope: e.meta.envelope, body: e.body };
  }));
}

const pdfOf = (p: ParsedPart) => p.parts.find((x) => x.contentType === 'application/pdf')!.payload!;

describe('GET /r/:token', () => {
  it('answers the same 404 page for a malformed, an unknown and an expired link', async () => {
    a = await replyApp(dir);
    const expired = await addLink(a.db, { password: 'pw-one-two-three', expires: new Date(Date.now() - 1000) });
    const v = new Visitor(a);
    const answers = await Promise.all(['not-a-token', randomBytes(24).toString('base64url'), expired, `${expired}x`, '..%2F..%2Fetc'].map((t) => v.get(`/r/${t}`)));
    for (const res of answers) {
      expect(res.statusCode).toBe(404);
      expect(res.body).toBe(answers[0]!.body);
    }
    expect(answers[0]!.body).toContain('This page does not exist, or the link has expired.');
    // Signing in to an expired link (with a form token from a live one) is no different.
    const live = await addLink(a.db, { password: 'pw-one-two-three' });
    const csrf = csrfOf((await v.get(`/r/${live}`)).body);
    const post = await v.post(`/r/${expired}`, { _csrf: csrf, password: 'pw-one-two-three' });
    expect([post.statusCode, post.body]).toEqual([404, answers[0]!.body]);
    expect(a.opened).toEqual([]);
  });

  it('names who wrote and asks for the password, in German too; the subject stays sealed until then', async () => {
    a = await replyApp(dir);
    const token = await addLink(a.db, { password: 'pw-one-two-three', subject: 'Sealed subject 4711' });
    const en = await new Visitor(a).get(`/r/${token}`);
    expect(en.statusCode).toBe(200);
    expect(en.body).toContain('alice@example.com');
    expect(en.body).toContain('type="password"');
    expect(en.body).not.toContain('4711');
    const de = await new Visitor(a, 'de-DE').get(`/r/${token}`);
    expect(de.body).toContain('PDF-Passwort');
  });
});

describe('signing in', () => {
  it('refuses a wrong password, then locks the link without checking; the right one opens the form', async () => {
    a = await replyApp(dir, { lockout: { account: 3, client: 100, backoff: 60_000, max_backoff: 600_000 } });
    const token = await addLink(a.db, { password: 'right-password-17', subject: '<script>alert(1)</script> figures' });
    const v = new Visitor(a);
    for (let i = 0; i < 3; i++) {
      const res = await v.signIn(token, `wrong-${i}`);
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('This password does not open the PDF.');
    }
    const opened = a.opened.length;
    const locked = await v.signIn(token, 'right-password-17');
    expect(locked.statusCode).toBe(429);
    expect(locked.body).toContain('Too many failed attempts. Try again in 1 minutes.');
    // Locked means not even looked at.
    expect(a.opened.length).toBe(opened);
    const audit = (await a.db.auditRecords()).map((r) => r.action);
    expect(audit.filter((e) => e === 'reply.login_failed')).toHaveLength(3);
    expect(audit).toContain('reply.locked');
    for (const r of await a.db.auditRecords()) expect(JSON.stringify(r)).not.toMatch(/wrong-|right-password|figures/);

    // Another link is not locked for this client (the client threshold is higher).
    const other = await addLink(a.db, { password: 'other-password-1', subject: '<script>alert(1)</script> figures' });
    const form = await v.signIn(other, 'other-password-1');
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('id="reply-form"');
    expect(form.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt; figures');
    expect(form.body).not.toContain('<script>alert');
    expect(form.body).toContain('value="Re: &lt;script&gt;');
    expect((await a.db.auditRecords()).map((r) => r.action)).toContain('reply.login');
  });

  it('refuses a sign-in post without the CSRF token, before looking at the password', async () => {
    a = await replyApp(dir);
    const token = await addLink(a.db, { password: 'pw-one-two-three' });
    const v = new Visitor(a);
    await v.get(`/r/${token}`);
    expect((await v.post(`/r/${token}`, { password: 'pw-one-two-three' })).statusCode).toBe(403);
    expect(a.opened).toEqual([]);
  });
});

describe('sending a reply', () => {
  it('spools the reply to our user and the replier\'s copy as a PDF only the password opens', async () => {
    a = await replyApp(dir);
    const password = 'reply-pass-Ölberg';
    const token = await addLink(a.db, { password, subject: 'Grüße aus Köln', messageId: '<orig.77@example.com>' });
    const v = new Visitor(a, 'de');
    const form = await v.signIn(token, password);
    const attachment = randomBytes(70_000);
    const sent = await v.upload(`/r/${token}/send`, [['_csrf', csrfOf(form.body)], ['subject', 'Re: Grüße aus Köln'], ['text', 'Danke, Alice!\r\nBis bald.']], [
      { filename: '../../../etc/passwd', type: 'application/octet-stream', content: attachment },
      { filename: 'Zahlen März.csv', type: 'text/csv', content: Buffer.from('a;b\r\n1;2\r\n') },
    ]);
    expect(sent.statusCode).toBe(200);
    expect(sent.body).toContain('id="sent"');
    expect(sent.body).toContain('Eine Kopie ist unterwegs an carol@partner.example');
    expect(a.queued).toHaveLength(2);

    const entries = await incoming();
    const reply = entries.find((e) => e.envelope.sender === 'carol@partner.example')!;
    expect(reply.envelope.recipients).toEqual([{ address: 'alice@example.com' }]);
    expect(reply.envelope.client).toMatchObject({ address: '127.0.0.1', trusted: false });
    const p = await parseMail(reply.body);
    expect(p.defects).toEqual([]);
    expect([header(p, 'From'), header(p, 'To'), header(p, 'Subject'), header(p, 'In-Reply-To'), header(p, 'References')]).toEqual([
      'carol@partner.example', 'alice@example.com', 'Re: Grüße aus Köln', '<orig.77@example.com>', '<orig.77@example.com>',
    ]);
    expect(header(p, 'Received')).toMatch(/^from \[127\.0\.0\.1\] \(\[127\.0\.0\.1\]\) by portal\.example\.com \(Postern portal\) with HTTP;/);
    expect(p.parts[0]!.payload!.toString('utf8')).toBe('Danke, Alice!\nBis bald.\n');
    expect(p.parts.slice(1).map((x) => x.filename)).toEqual(['passwd', 'Zahlen März.csv']);
    expect(p.parts[1]!.payload!.equals(attachment)).toBe(true);

    const copy = entries.find((e) => e.envelope.sender === '')!;
    expect(copy.envelope.recipients).toEqual([{ address: 'carol@partner.example', notify: ['NEVER'] }]);
    const c = await parseMail(copy.body);
    expect(c.defects).toEqual([]);
    expect(header(c, 'To')).toBe('carol@partner.example');
    expect(header(c, 'Subject')).toBe('Kopie Ihrer Antwort an alice@example.com');
    expect(header(c, 'Auto-Submitted')).toBe('auto-generated');
    // Nothing of the reply outside the PDF.
    expect(copy.body.toString('latin1')).not.toMatch(/Danke|Zahlen|K=C3=B6ln|Köln/);
    const file = join(dir, 'copy.pdf');
    writeFileSync(file, pdfOf(c));
    expect(spawnSync('qpdf', ['--check', file]).status).not.toBe(0);
    expect(spawnSync('qpdf', ['--password=wrong', '--check', file]).status).not.toBe(0);
    execFileSync('qpdf', [`--password=${password}`, '--decrypt', file, join(dir, 'plain.pdf')]);
    const files = popplerAttachments(join(dir, 'plain.pdf'), join(dir, 'detached'));
    expect(files.get('passwd')!.equals(attachment)).toBe(true);
    expect(execFileSync('pdftotext', [join(dir, 'plain.pdf'), '-']).toString('utf8')).toContain('Danke, Alice!');

    const audit = await a.db.auditRecords();
    const record = audit.find((r) => r.action === 'reply.sent')!;
    expect(record.detail).toMatchObject({ to: 'alice@example.com', attachments: 2, copy: true });
    expect(JSON.stringify(audit)).not.toMatch(/Danke|Köln|reply-pass/);
  });

  it('refuses a post without the form\'s token, a file before it, and a cookie replayed after sign-out', async () => {
    a = await replyApp(dir);
    const token = await addLink(a.db, { password: 'pw-one-two-three' });
    const v = new Visitor(a);
    const form = await v.signIn(token, 'pw-one-two-three');
    const csrf = csrfOf(form.body);
    const file = { filename: 'a.txt', type: 'text/plain', content: Buffer.from('x') };
    expect((await v.upload(`/r/${token}/send`, [['text', 'no token']])).statusCode).toBe(403);
    expect((await v.upload(`/r/${token}/send`, [['_csrf', 'forged'], ['text', 'bad token']])).statusCode).toBe(403);
    expect((await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'file first']], [file], true)).statusCode).toBe(403);
    expect(await a.spool.list('incoming')).toEqual([]);

    const stolen = v.cookie;
    const out = await v.post(`/r/${token}/signout`, { _csrf: csrf });
    expect(out.statusCode).toBe(200);
    expect(out.body).toContain('id="signed-out"');
    // The old cookie and the old form's token: the session is gone, so is the form.
    const replay = await a.app.inject({ url: `/r/${token}`, headers: { cookie: stolen, accept: 'text/html' } });
    expect(replay.body).toContain('type="password"');
    expect(replay.body).not.toContain('id="reply-form"');
    const { payload, contentType } = multipart([['_csrf', csrf], ['text', 'after sign-out']]);
    const post = await a.app.inject({ method: 'POST', url: `/r/${token}/send`, payload, headers: { cookie: stolen, 'content-type': contentType, accept: 'text/html' } });
    expect(post.statusCode).toBe(403);
    expect(await a.spool.list('incoming')).toEqual([]);
    expect((await a.db.auditRecords()).map((r) => r.action)).toContain('reply.signout');
  });

  it('refuses uploads over portal.max_upload (one file or together) and over max_uploads', async () => {
    a = await replyApp(dir, { maxUpload: 100_000, maxUploads: 2 });
    const token = await addLink(a.db, { password: 'pw-one-two-three' });
    const v = new Visitor(a);
    const csrf = csrfOf((await v.signIn(token, 'pw-one-two-three')).body);
    const f = (n: number) => ({ filename: `f${n}.bin`, type: 'application/octet-stream', content: randomBytes(n) });
    const big = await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'x']], [f(100_001)]);
    expect(big.statusCode).toBe(413);
    expect(big.body).toContain('The upload is larger than allowed.');
    expect((await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'x']], [f(60_000), f(60_000)])).statusCode).toBe(413);
    expect((await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'x']], [f(10), f(10), f(10)])).statusCode).toBe(413);
    expect(await a.spool.list('incoming')).toEqual([]);
    // Within the limits it goes.
    expect((await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'x']], [f(50_000), f(50_000)])).statusCode).toBe(200);
    expect(await a.spool.list('incoming')).toHaveLength(2);
  });

  it('sends no reply for a link whose sender is not one of ours', async () => {
    a = await replyApp(dir);
    const token = await addLink(a.db, { password: 'pw-one-two-three', sender: 'mallory@elsewhere.example' });
    const v = new Visitor(a);
    const csrf = csrfOf((await v.signIn(token, 'pw-one-two-three')).body);
    expect((await v.upload(`/r/${token}/send`, [['_csrf', csrf], ['text', 'x']])).statusCode).toBe(403);
    expect(await a.spool.list('incoming')).toEqual([]);
  });
});
