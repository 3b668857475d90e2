/**
 * The private Postfix test peer itself (test/helpers/postfix-instance.ts): it starts on its own
 * port, keeps what it accepts, relays into another instance, logs the SMTP conversation and
 * offers STARTTLS with the certificate it is given. swaks is the client throughout.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostfix, type PostfixInstance } from '../helpers/postfix-instance.js';
import { swaks } from '../helpers/smtp-swaks.js';

const exec = promisify(execFile);

describe('postfix-instance', () => {
  let next: PostfixInstance;
  let front: PostfixInstance;
  let tlsPeer: PostfixInstance;
  let certDir: string;

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'postern-postfix-cert-'));
    await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=mx.tls.test', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')]);
    // Three at once, as test files running in parallel would have them.
    [next, tlsPeer] = await Promise.all([
      startPostfix({ debugPeers: true }),
      startPostfix({ tls: { cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') }, deliver: 'discard', smtputf8: false }),
    ]);
    front = await startPostfix({ relayTo: { host: next.host, port: next.port } });
  });

  afterAll(async () => {
    await Promise.all([next?.stop(), front?.stop(), tlsPeer?.stop()]);
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  it('accepts mail for any domain and keeps it in its maildir, the conversation in its log', async () => {
    const r = await swaks(['--server', `${next.host}:${next.port}`, '--from', 'alice@sender.example', '--to', 'bob@anywhere.example', '--header', 'Subject: kept', '--body', 'hello postfix']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [m] = await next.waitForMessages(1);
    expect(m!.recipient).toBe('bob@anywhere.example');
    expect(m!.sender).toBe('alice@sender.example');
    expect(m!.raw.toString()).toContain('hello postfix');
    expect(await next.waitForLog(/RCPT TO:<bob@anywhere\.example>/)).toMatch(/postfix\/smtpd/);
    expect(next.log()).toMatch(/status=sent \(delivered to maildir\)/);
  });

  it('relays everything to its relayhost', async () => {
    const before = next.messages().length;
    const r = await swaks(['--server', `${front.host}:${front.port}`, '--from', 'carol@sender.example', '--to', 'dave@elsewhere.example', '--body', 'through two hops']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const all = await next.waitForMessages(before + 1);
    const m = all.find((x) => x.recipient === 'dave@elsewhere.example');
    expect(m?.raw.toString()).toContain('through two hops');
    expect(await front.waitForLog(/to=<dave@elsewhere\.example>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/)).toContain(`:${next.port}`);
  });

  it('offers STARTTLS with the given certificate, and SMTPUTF8 only when enabled', async () => {
    // openssl is the independent TLS client; stdin is the QUIT it sends after the handshake.
    const sc = spawnSync('openssl', ['s_client', '-connect', `${tlsPeer.host}:${tlsPeer.port}`, '-starttls', 'smtp', '-showcerts'], { input: 'QUIT\r\n', timeout: 10_000, encoding: 'utf8' });
    expect(sc.stdout).toMatch(/subject=.*CN\s*=\s*mx\.tls\.test/);
    expect(await tlsPeer.waitForLog(/TLS connection established from unknown\[127\.0\.0\.1\]/)).toMatch(/TLSv1\.[23]/);
    const ehloTls = await swaks(['--server', `${tlsPeer.host}:${tlsPeer.port}`, '--quit-after', 'EHLO', '--to', 'x@y.example']);
    expect(ehloTls.stdout).toMatch(/250-STARTTLS/);
    expect(ehloTls.stdout).not.toMatch(/SMTPUTF8/);
    const ehloUtf8 = await swaks(['--server', `${next.host}:${next.port}`, '--quit-after', 'EHLO', '--to', 'x@y.example']);
    expect(ehloUtf8.stdout).toMatch(/250[- ]SMTPUTF8/);
  });
});
