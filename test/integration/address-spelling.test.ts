/**
 * Issue 14, faults 1 and 2, over SMTP against the running gateway:
 * (1) an outside client can no longer get its own text signed with an internal user's key,
 *     whatever the spelling of sender or recipient (full-width, soft hyphen, case, IDN, quotes);
 * (2) every spelling of a recipient whose encryption is required is held or encrypted — none is
 *     delivered in clear.
 * openssl is the oracle for "signed" and "encrypted"; the maildir shows what left the gateway.
 * 127.0.0.2 is the trusted internal server, 127.0.0.1 an outsider (all of 127/8 is loopback).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { waitUntil } from '../helpers/send.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';

const OUTSIDER = '127.0.0.1';
const INSIDE = '127.0.0.2';
const FW = (s: string) => [...s].map((c) => (/[a-z]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! - 0x61 + 0xff41) : c)).join('');

interface Sent {
  token: string;
  /** Reply to each RCPT, in order. */
  rcpt: number[];
  /** Reply to the end of DATA, when any recipient was accepted. */
  data?: string;
}

/** One message over one connection, addresses sent as UTF-8 bytes (SMTPUTF8 when asked). */
async function send(port: number, from: string, to: string[], opts: { client: string; utf8: boolean; token: string; fromHeader?: string }): Promise<Sent> {
  const c = await SmtpTestClient.connect(port, '127.0.0.1', opts.client);
  try {
    expect((await c.cmd('EHLO client.test')).code).toBe(250);
    const mail = await c.cmd(`MAIL FROM:<${from}>${opts.utf8 ? ' SMTPUTF8' : ''}`, true);
    if (mail.code !== 250) return { token: opts.token, rcpt: to.map(() => mail.code), data: mail.raw };
    const rcpt: number[] = [];
    for (const r of to) rcpt.push((await c.cmd(`RCPT TO:<${r}>`, true)).code);
    if (!rcpt.includes(250)) return { token: opts.token, rcpt };
    expect((await c.cmd('DATA')).code).toBe(354);
    const body =
      `From: ${opts.fromHeader ?? 'Alice <alice@example.com>'}\r\nTo: undisclosed-recipients:;\r\nSubject: spelling ${opts.token}\r\n` +
      `Message-ID: <${opts.token}@test.example>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n` +
      `I, Alice, owe the bearer 1,000,000 EUR. token ${opts.token}\r\n.\r\n`;
    c.write(Buffer.from(body, 'utf8'));
    const data = await c.read();
    await c.cmd('QUIT').catch(() => undefined);
    return { token: opts.token, rcpt, data: data?.raw ?? 'closed' };
  } finally {
    c.destroy();
  }
}

describe('one canonical address over SMTP (issue 14)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let ca: Issued, partnerCa: Issued, alice: Issued, bob: Issued;

  /** Every delivered file whose text holds `token`, with its Delivered-To. */
  async function deliveries(token: string): Promise<{ file: string; to: string; text: string }[]> {
    const nd = join(dir, 'maildir', 'new');
    const out = [];
    for (const n of await readdir(nd).catch(() => [] as string[])) {
      const text = await readFile(join(nd, n), 'latin1');
      if (!text.includes(`spelling ${token}`)) continue;
      out.push({ file: join(nd, n), to: /^Delivered-To: (.*)\r$/m.exec(text)?.[1] ?? '', text });
    }
    return out;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-spelling-'));
    [ca, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    [alice, bob] = await Promise.all([opensslMailbox(dir, ca, 'alice@example.com'), opensslMailbox(dir, partnerCa, 'bob@partner.example')]);
    port = await freePort();
    config = await writeGatewayConfig(dir, port);
    // The internal server is 127.0.0.2 alone; bücher.example is ours too (written in Unicode).
    await writeFile(config, (await readFile(config, 'utf8')).replace('internal_domains: [example.com]', 'internal_domains: [example.com, bücher.example]').replace('trusted_networks: [127.0.0.0/8]', `trusted_networks: [${INSIDE}/32]`));
    await writeFile(
      join(dir, 'policy.yaml'),
      `rules:
  - name: partner needs encryption
    when: { recipient: { domain: partner.example } }
    do: [{ encrypt: { methods: [smime, pgp], require: true, otherwise: hold } }]
  - name: carol needs encryption
    when: { recipient: carol@other.example }
    do: [{ encrypt: { methods: [smime, pgp], require: true, otherwise: hold } }]
  - name: books need encryption
    when: { recipient: { domain: "läden.example" } }
    do: [{ encrypt: { methods: [smime, pgp], require: true, otherwise: hold } }]
  - name: our users sign everything
    when: { sender: { internal: true } }
    do: [{ sign: { method: smime } }]
`,
    );
    for (const args of [['cert', 'import', ca.cert, '--trust'], ['cert', 'import', partnerCa.cert, '--trust'], ['cert', 'import', alice.cert, '--key', alice.key], ['cert', 'import', bob.cert]]) {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
    }
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('control: the trusted internal server gets Alice\'s mail to an internal colleague signed (the rule works)', async () => {
    const s = await send(port, 'alice@example.com', ['victim@example.com'], { client: INSIDE, utf8: false, token: 'ctl1' });
    expect(s.data).toMatch(/^250 /);
    await waitUntil(async () => (await deliveries('ctl1')).length === 1, 20_000, 'control delivery');
    const [d] = await deliveries('ctl1');
    expect(d!.text).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/m);
    await run('openssl', ['cms', '-verify', '-in', d!.file, '-CAfile', ca.cert, '-out', join(dir, 'ctl1.txt')]);
  });

  it('(1) an outsider gets no signature from Alice\'s key, whatever the spelling of sender or recipient', async () => {
    const senders = ['alice@example.com', 'ALICE@EXAMPLE.COM', `alice@${FW('example')}.com`, '"alice"@example.com', `"Alice"@${FW('EXAMPLE').toUpperCase()}.COM`];
    const recipients = ['victim@example.com', 'Victim@EXAMPLE.com', `victim@${FW('example')}.com`, '"victim"@example.com', 'victim@bücher.example', 'victim@xn--bcher-kva.example', 'VICTIM@BÜCHER.EXAMPLE'];
    const sent: Sent[] = [];
    let n = 0;
    for (const from of senders) sent.push(await send(port, from, recipients, { client: OUTSIDER, utf8: true, token: `out${n++}` }));
    // Every spelling reaches our domains, so relay control lets all of them in...
    for (const s of sent) {
      expect(s.rcpt, s.token).toEqual(recipients.map(() => 250));
      expect(s.data, s.token).toMatch(/^250 /);
    }
    // Seven spellings, two mailboxes: each gets the message once, under its canonical spelling.
    const expectedTo = ['victim@example.com', 'victim@xn--bcher-kva.example'];
    for (const s of sent) {
      await waitUntil(async () => (await deliveries(s.token)).length === expectedTo.length, 20_000, `deliveries of ${s.token}`);
      const ds = await deliveries(s.token);
      // ...delivered under the canonical spelling only, and never signed.
      // (smtp-server lets a repeated RCPT that differs only in case replace the earlier one)
      expect(ds.map((d) => d.to.toLowerCase()).sort()).toEqual([...expectedTo].sort());
      for (const d of ds) {
        expect(d.text, `${s.token} to ${d.to}`).not.toMatch(/pkcs7-signature|signed-data|multipart\/signed/i);
        expect(d.text).toContain(`token ${s.token}`);
        // openssl finds no signature to verify in it
        await expect(run('openssl', ['cms', '-verify', '-in', d.file, '-CAfile', ca.cert, '-out', '/dev/null'])).rejects.toThrow();
      }
    }
    // The workers' log lines travel through a pipe and may come after the delivery is seen.
    const skipped = () => gw.logs.filter((l) => l.event === 'worker.sign_skipped');
    await waitUntil(async () => skipped().length >= senders.length, 10_000, 'one worker.sign_skipped per message');
    expect(skipped().length).toBe(senders.length);
    expect(String(skipped()[0]!.reason)).toMatch(/not in trusted_networks/);
  }, 90_000);

  it('(1) spellings with no canonical form are refused at RCPT/MAIL, never half accepted', async () => {
    const bad = await send(port, 'alice@example.com', ['victim@exam\u00adple.com', 'victim@exam\u200bple.com', 'victim@xn--example-.com'], { client: OUTSIDER, utf8: true, token: 'bad1' });
    // The soft hyphen reaches our check (553 5.1.3); smtp-server's own syntax check already
    // refuses zero-width spaces and a label ending in "-" (501). Refused either way.
    expect(bad.rcpt).toEqual([553, 501, 501]);
    const badFrom = await send(port, 'alice@exam\u00adple.com', ['victim@example.com'], { client: OUTSIDER, utf8: true, token: 'bad2' });
    expect(badFrom.rcpt).toEqual([553]);
    expect(badFrom.data).toMatch(/^553 5\.1\.7 /);
    // 8-bit without SMTPUTF8 (RFC 6531 §3.5): 553 5.6.7, not rewritten
    const eight = await send(port, 'alice@example.com', ['victim@bücher.example', 'jörg@example.com'], { client: OUTSIDER, utf8: false, token: 'bad3' });
    expect(eight.rcpt).toEqual([553, 553]);
    const eightFrom = await send(port, 'jörg@example.com', ['victim@example.com'], { client: OUTSIDER, utf8: false, token: 'bad4' });
    expect(eightFrom.data).toMatch(/^553 5\.6\.7 /);
    // ...while the A-label spelling is plain ASCII and fine in any transaction
    const ascii = await send(port, 'alice@example.com', ['victim@xn--bcher-kva.example'], { client: OUTSIDER, utf8: false, token: 'ok5' });
    expect(ascii.rcpt).toEqual([250]);
    expect(ascii.data).toMatch(/^250 /);
  });

  it('(2) every spelling of a recipient whose encryption is required is held or encrypted: none in clear', async () => {
    // bob@partner.example has a certificate; dan@partner.example, carol@other.example and
    // x@läden.example have none, so policy holds them. One message per spelling.
    const withKey = ['bob@partner.example', 'BOB@PARTNER.EXAMPLE', `bob@${FW('partner')}.example`, '"bob"@partner.example', 'bob@partner．example', 'Bob@Partner.Example'];
    const withoutKey: [string, string][] = [
      ['dan@partner.example', 'dan@partner.example'],
      [`dan@${FW('partner')}.example`, 'dan@partner.example'],
      ['carol@other.example', 'carol@other.example'],
      ['"carol"@other.example', 'carol@other.example'],
      ['Carol@OTHER.example', 'Carol@other.example'],
      [`${FW('carol')}@other.example`, `${FW('carol')}@other.example`],
      ['x@läden.example', 'x@xn--lden-loa.example'],
      ['x@xn--lden-loa.example', 'x@xn--lden-loa.example'],
      ['x@LÄDEN.example', 'x@xn--lden-loa.example'],
    ];
    const tokens = new Map<string, string>();
    let n = 0;
    for (const to of [...withKey, ...withoutKey.map(([w]) => w)]) {
      const s = await send(port, 'alice@example.com', [to], { client: INSIDE, utf8: true, token: `req${n}` });
      expect(s.rcpt, to).toEqual([250]);
      expect(s.data, to).toMatch(/^250 /);
      tokens.set(to, `req${n++}`);
    }
    for (const to of withKey) {
      const token = tokens.get(to)!;
      await waitUntil(async () => (await deliveries(token)).length === 1, 20_000, `encrypted delivery to ${to}`);
      const [d] = await deliveries(token);
      expect(d!.to.toLowerCase()).toBe('bob@partner.example');
      expect(d!.text).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
      expect(d!.text).not.toContain(`token ${token}`);
      const out = join(dir, `${token}.eml`);
      await run('openssl', ['cms', '-decrypt', '-in', d!.file, '-recip', bob.cert, '-inkey', bob.key, '-out', out]);
      expect(await readFile(out, 'latin1')).toContain(`token ${token}`);
    }
    // The others wait in hold/, every one of them, under its canonical address; none left in clear.
    const heldTokens = withoutKey.map(([w]) => tokens.get(w)!);
    const heldNow = async () => {
      const list = await runPostern(config, ['queue', 'list', '--json']);
      expect(list.code, list.stderr).toBe(0);
      const entries = list.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { state: string; recipients: string[] });
      return entries.filter((e) => e.state === 'hold').flatMap((e) => e.recipients);
    };
    let held: string[] = [];
    await waitUntil(async () => (held = await heldNow()).length >= withoutKey.length, 20_000, 'held entries');
    expect(held.sort()).toEqual(withoutKey.map(([, c]) => c).sort());
    for (const t of heldTokens) expect(await deliveries(t), t).toEqual([]);
    // queue show names the spelling the client used beside the canonical address.
    const list = await runPostern(config, ['queue', 'list', '--json']);
    const names = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; state: string }).filter((e) => e.state === 'hold').map((e) => e.name);
    const written: string[] = [];
    for (const name of names) {
      const show = await runPostern(config, ['queue', 'show', name, '--json']);
      expect(show.code, show.stderr).toBe(0);
      for (const e of (JSON.parse(show.stdout) as { entries: { recipients?: { written?: string }[] }[] }).entries) {
        for (const r of e.recipients ?? []) if (r.written) written.push(r.written);
      }
    }
    expect(written.sort()).toEqual([`dan@${FW('partner')}.example`, '"carol"@other.example', 'x@läden.example', 'x@LÄDEN.example'].sort());
  }, 120_000);

  it('delivers once per mailbox when one message names it in several spellings', async () => {
    const s = await send(port, 'alice@example.com', ['bob@partner.example', '"bob"@partner.example', `bob@${FW('partner')}.example`, 'BOB@partner.example'], { client: INSIDE, utf8: true, token: 'dup1' });
    expect(s.rcpt).toEqual([250, 250, 250, 250]);
    expect(s.data).toMatch(/^250 /);
    await waitUntil(async () => (await deliveries('dup1')).length === 1, 20_000, 'one delivery');
    await new Promise((r) => setTimeout(r, 1000));
    const ds = await deliveries('dup1');
    expect(ds.length).toBe(1);
    expect(ds[0]!.text).toMatch(/smime-type=enveloped-data/);
  });
});
