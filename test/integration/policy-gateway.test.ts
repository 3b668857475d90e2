/**
 * The policy applied by the running gateway, per recipient: one message to three recipients — one
 * delivered, one held because the policy requires encryption that cannot be done, one bounced for
 * the same reason (otherwise: bounce) — and the held part goes back through the policy on release;
 * then, after the policy file is edited, copies, header edits, redirects and subject commands.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { freePort, MAIN, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const exec = promisify(execFile);

describe('policy in the running gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  const maildir = () => join(dir, 'maildir', 'new');
  const files = async () => Promise.all((await readdir(maildir()).catch(() => [])).map((n) => readFile(join(maildir(), n))));

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-policy-gw-'));
    port = await freePort();
    config = await writeGatewayConfig(dir, port);
    await writeFile(
      join(dir, 'policy.yaml'),
      `rules:
  - name: secrets stay encrypted
    when: { recipient: secret@partner.example }
    do: [{ encrypt: { require: true, otherwise: hold } }]
  - name: strict partner
    when: { recipient: { domain: strict.example } }
    do: [{ encrypt: { methods: [smime], require: true, otherwise: bounce } }]
`,
    );
    gw = await startGateway(config);
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('delivers, holds and bounces per recipient, never sending in clear what must be encrypted', async () => {
    const sent = await sendTokens(port, ['p1'], { to: ['plain@example.com', 'secret@partner.example', 'ceo@strict.example'] });
    expect(sent.accepted).toEqual(['p1']);
    // plain@example.com gets the message; alice@example.org (the sender) gets the bounce.
    await waitUntil(async () => (await files()).length >= 2, 20_000, 'delivery and bounce');
    const all = (await files()).map((f) => f.toString('latin1'));
    const delivered = all.filter((f) => /^Delivered-To: plain@example\.com/m.test(f));
    expect(delivered).toHaveLength(1);
    expect(all.some((f) => /^Delivered-To: (secret@partner\.example|ceo@strict\.example)/m.test(f))).toBe(false);

    const bounce = all.find((f) => /^Delivered-To: alice@example\.org/m.test(f))!;
    expect(bounce).toBeDefined();
    const dsn = await parseDsn(Buffer.from(bounce.slice(bounce.indexOf('\r\n', bounce.indexOf('Delivered-To:')) + 2), 'latin1'));
    expect(dsn.recipients).toEqual([
      expect.objectContaining({ 'final-recipient': 'rfc822; ceo@strict.example', action: 'failed', status: '5.7.1', 'diagnostic-code': expect.stringMatching(/encryption required, but there is no S\/MIME certificate for ceo@strict\.example/) }),
    ]);

    const list = (await exec(process.execPath, [MAIN, 'queue', 'list', '-c', config])).stdout;
    expect(list).toMatch(/^(\S+)\thold\t.*\tsecret@partner\.example$/m);
    expect(list).toMatch(/\(encryption required, but there is no S\/MIME certificate or OpenPGP key for secret@partner\.example\)/);
    expect(gw.logs.some((l) => l.event === 'worker.held' && String(l.reason).includes('secret@partner.example'))).toBe(true);
  });

  it('a released held part goes through the policy again (and is held again while nothing changed)', async () => {
    const id = /^(\S+)\thold\t/m.exec((await exec(process.execPath, [MAIN, 'queue', 'list', '-c', config])).stdout)![1]!;
    const before = gw.logs.filter((l) => l.event === 'worker.held').length;
    expect((await exec(process.execPath, [MAIN, 'queue', 'release', id, '-c', config])).stdout).toContain(`released: hold/${id}`);
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'worker.held').length > before, 20_000, 'held again');
    await waitUntil(async () => (await readdir(join(dir, 'spool', 'hold'))).length === 1, 10_000, 'back in hold/');
    expect((await files()).filter((f) => /^Delivered-To: secret@/m.test(f.toString('latin1')))).toEqual([]);
  });
  it('copies, edits headers, redirects and removes subject commands, per recipient, after a policy edit', async () => {
    const before = gw.logs.length;
    await writeFile(
      join(dir, 'policy.yaml'),
      `rules:
  - name: archive
    do: [{ copy: archive@example.com }]
    continue: true
  - name: tag
    when: { recipient: tagged@example.com }
    do: [{ add_header: { X-Tag: "policy was here" } }, { remove_header: Date }]
  - name: retired mailbox
    when: { recipient: old@example.com }
    do: [{ redirect: new@example.com }]
`,
    );
    await gw.waitFor((l) => gw.logs.indexOf(l) >= before && l.event === 'supervisor.reloaded');
    await new Promise((r) => setTimeout(r, 300)); // the workers swap their policy after the supervisor
    const sent = await sendTokens(port, ['p2{PLAIN}'], { to: ['tagged@example.com', 'old@example.com'] });
    expect(sent.accepted).toEqual(['p2{PLAIN}']);
    const byRcpt = async () => new Map((await files()).map((f) => f.toString('latin1')).map((f) => [/^Delivered-To: (\S+)/m.exec(f)?.[1], f] as const));
    await waitUntil(async () => {
      const m = await byRcpt();
      return ['tagged@example.com', 'new@example.com', 'archive@example.com'].every((r) => m.has(r));
    }, 20_000, 'three copies');
    const m = await byRcpt();
    const tagged = m.get('tagged@example.com')!;
    expect(tagged).toMatch(/^X-Tag: policy was here\r$/m);
    expect(tagged).not.toMatch(/^Date:/m);
    expect(tagged).toMatch(/^Subject: test p2\r$/m);
    expect(m.get('new@example.com')).toMatch(/^Subject: test p2\r$/m);
    expect(m.get('new@example.com')).toMatch(/^Date:/m);
    // The archive gets the message as it arrived, command and all.
    expect(m.get('archive@example.com')).toMatch(/^Subject: test p2\{PLAIN\}\r$/m);
    expect(m.has('old@example.com')).toBe(false);
  });

  it('generates keys for an internal sender who has none, once there is an internal CA', async () => {
    expect((await runPostern(config, ['ca', 'init', '--name', 'Gateway Test CA'])).code).toBe(0);
    const before = gw.logs.length;
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: keys for internal senders\n    when: { direction: outbound, sender: { has_key: none } }\n    do: [{ generate_keys: { smime: true, pgp: true } }]\n    continue: true\n');
    await gw.waitFor((l) => gw.logs.indexOf(l) >= before && l.event === 'supervisor.reloaded');
    await new Promise((r) => setTimeout(r, 300));
    expect((await sendTokens(port, ['g1'], { from: 'dora@example.com', to: ['x@partner.example'] })).accepted).toEqual(['g1']);
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'worker.keys_generated' && l.address === 'dora@example.com').length === 2, 20_000, 'keys generated');
    expect((await runPostern(config, ['cert', 'list', '--address', 'dora@example.com'])).stdout).toMatch(/\tkey\t.*\tca\tCN=dora@example\.com <dora@example\.com>/);
    expect((await runPostern(config, ['pgp', 'list', '--address', 'dora@example.com'])).stdout).toMatch(/\tsecret,encrypt,sign\t-\tgenerated\t<dora@example\.com>/);
    // A second message finds the keys: nothing generated again.
    expect((await sendTokens(port, ['g2'], { from: 'dora@example.com', to: ['x@partner.example'] })).accepted).toEqual(['g2']);
    await waitUntil(async () => (await files()).some((f) => f.toString('latin1').includes('X-Test-Token: g2')), 20_000, 'second delivered');
    expect(gw.logs.filter((l) => l.event === 'worker.keys_generated' && l.address === 'dora@example.com')).toHaveLength(2);
  });
});
