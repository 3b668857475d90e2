/**
 * The 16 address tricks of nmap's smtp-open-relay script, from a client outside trusted_networks.
 * The gateway's own hostname (from its banner) is an internal domain here, so the percent hack and
 * bang paths name "ours" as the final domain and must still be refused.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpTestClient, type Reply } from '../helpers/smtp-client.js';
import { startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

interface RelayCase {
  id: string;
  mail_from: string;
  rcpt_to: string;
}

const CORPUS = resolve(import.meta.dirname, '../../../shared/corpora/smtp-open-relay-patterns/nmap-open-relay-tests.json');
const cases = (JSON.parse(readFileSync(CORPUS, 'utf8')) as { cases: RelayCase[] }).cases;

function fill(pattern: string, srvname: string): string {
  return pattern
    .replaceAll('{from}', 'antispam')
    .replaceAll('{to}', 'relaytest')
    .replaceAll('{domain}', 'nmap.scanme.org')
    .replaceAll('{srvname}', srvname)
    .replaceAll('{ip}', '127.0.0.1');
}

describe('open relay tests (nmap smtp-open-relay), untrusted client', () => {
  let h: SmtpdHarness;

  beforeAll(async () => {
    // 127.0.0.1 is not trusted; our hostname is one of the internal domains.
    h = await startTestSmtpd({ trusted_networks: ['10.9.9.0/24'], internal_domains: ['example.com', 'gw.test.example'] });
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function attempt(mailFrom: string, rcptTo: string): Promise<{ srvname: string; mail: Reply; rcpt?: Reply; data?: Reply }> {
    const c = await SmtpTestClient.connect(h.port);
    const srvname = c.greeting.raw.split(' ')[1]!;
    const from = fill(mailFrom, srvname);
    const to = fill(rcptTo, srvname);
    expect((await c.cmd('EHLO nmap.scanme.org')).code).toBe(250);
    const mail = await c.cmd(`MAIL FROM:${from}`);
    const out: { srvname: string; mail: Reply; rcpt?: Reply; data?: Reply } = { srvname, mail };
    if (mail.code === 250) {
      out.rcpt = await c.cmd(`RCPT TO:${to}`);
      out.data = await c.cmd('DATA');
      if (out.data.code === 354) await c.cmd('Subject: relay test\r\n\r\nx\r\n.');
    }
    c.write('QUIT\r\n');
    await c.readUntilClosed();
    return out;
  }

  it('has 16 cases and a banner naming an internal domain', async () => {
    expect(cases).toHaveLength(16);
    const { srvname } = await attempt('<antispam@example.org>', '<postmaster@example.com>');
    expect(h.config.internal_domains).toContain(srvname);
  });

  it('accepts the plain internal addresses (so the refusals below are relay control, not a broken server)', async () => {
    for (const to of ['<relaytest@{srvname}>', '<relaytest@example.com>']) {
      const r = await attempt('<antispam@[{ip}]>', to);
      expect(r.rcpt!.raw, to).toBe('250 2.1.5 Accepted');
      expect(r.data!.code).toBe(354);
    }
  });

  for (const c of cases) {
    it(`${c.id}: MAIL FROM:${c.mail_from} RCPT TO:${c.rcpt_to} is refused`, async () => {
      const before = (await h.incoming()).length;
      const r = await attempt(c.mail_from, c.rcpt_to);
      // Either MAIL or RCPT must fail; a refused RCPT leaves nothing for DATA.
      if (r.mail.code === 250) {
        expect(r.rcpt!.code, r.rcpt!.raw).toBeGreaterThanOrEqual(400);
        expect(r.rcpt!.raw).toMatch(/^(554 5\.7\.1 relay access denied|501 5\.1\.3 .*)$/);
        expect(r.data!.code).toBe(503);
      } else {
        expect(r.mail.code).toBeGreaterThanOrEqual(400);
      }
      expect(await h.incoming()).toHaveLength(before);
    });
  }
});
