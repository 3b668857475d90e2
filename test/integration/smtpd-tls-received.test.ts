/**
 * The Received header of mail that came over STARTTLS says what Postfix's says (protocol, cipher
 * with its bits, and for TLS 1.3 the key exchange, our signature and its digest; layout checked
 * against Postfix 3.7 with the same certificates). The clients are swaks and `openssl s_client`,
 * and what they report of the session they negotiated is the oracle for the header's values.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';
import { swaks } from '../helpers/smtp-swaks.js';

const run = promisify(execFile);

/** Sends one message with `openssl s_client` over STARTTLS; returns its session summary (stderr) and output. */
function sClient(port: number, args: string[], message: string): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, '-crlf', '-brief', '-ign_eof', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ out, err, code });
    });
    // s_client reads stdin once its handshake is done. One command per final reply, so nothing
    // depends on the server reading ahead (the message only after 354).
    const steps = ['EHLO client.test', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.com>', 'DATA', `${message}\n.`, 'QUIT'];
    let sent = 0;
    const next = () => {
      const finals = out.split('\n').filter((l) => /^\d{3} /.test(l)).length;
      while (sent < steps.length && sent <= finals) child.stdin.write(steps[sent++] + '\n');
    };
    child.stdout.on('data', next);
    next();
  });
}

async function certs(dir: string, kind: 'rsa' | 'ec'): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${kind}.key`);
  const cert = join(dir, `${kind}.crt`);
  const alg = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  await run('openssl', ['req', '-x509', ...alg, '-nodes', '-subj', '/CN=gw.test.example', '-days', '1', '-keyout', key, '-out', cert]);
  return { cert, key };
}

const received = async (h: SmtpdHarness, id: string) => splitReceived((await h.spool.read('incoming', id)).body).received;

describe('smtpd: the Received header of a TLS session', () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let rsa: SmtpdHarness;
  let ec: SmtpdHarness;

  beforeAll(async () => {
    dir = await tempDir('postern-tls-received-');
    rsa = await startTestSmtpd({ smtp: { tls: await certs(dir.dir, 'rsa') } });
    ec = await startTestSmtpd({ smtp: { tls: await certs(dir.dir, 'ec') } });
  });
  afterAll(async () => {
    await rsa?.stop();
    await ec?.stop();
    await dir?.cleanup();
  });

  it('TLS 1.3 from swaks: cipher and bits as swaks saw them, key exchange, RSA-PSS signature and digest', async () => {
    const r = await swaks(['--server', '127.0.0.1', '--port', String(rsa.port), '--tls', '--from', 'alice@example.org', '--to', 'bob@example.com', '--body', 'over tls']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // swaks: "=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256"
    const [, proto, cipher, bits] = /TLS started with cipher (TLSv1\.3):([A-Z0-9_]+):(\d+)/.exec(r.stdout)!;
    const id = /queued as (\w+)/.exec(r.stdout)![1]!;
    const lines = (await received(rsa, id)).split('\r\n');
    expect(lines[0]).toMatch(/^Received: from \S+ \(unknown \[127\.0\.0\.1\]\)$/);
    expect(lines[1]).toBe(`\t(using ${proto} with cipher ${cipher} (${bits}/${bits} bits)`);
    expect(lines[2]).toMatch(/^\t key-exchange (X25519|X448|ECDHE \((prime256v1|secp384r1|secp521r1)\)) server-signature RSA-PSS \(2048 bits\) server-digest SHA(256|384|512)\)$/);
    expect(lines[3]).toBe('\t(No client certificate requested)');
    expect(lines[4]).toMatch(/^\tby gw\.test\.example \(Postern\) with ESMTPS id \w+$/);
  });

  it('TLS 1.3 from openssl s_client with P-384 and an EC certificate: the values s_client reports', async () => {
    const s = await sClient(ec.port, ['-groups', 'P-384'], 'Subject: ec\n\nover tls 1.3 with P-384');
    expect(s.out, s.out + s.err).toMatch(/^250 .*queued as \w+/m);
    // s_client -brief: "Server Temp Key: ECDH, secp384r1, 384 bits", "Signature type: ECDSA", "Hash used: SHA256"
    expect(s.err).toMatch(/Server Temp Key: ECDH, (secp384r1|P-384), 384 bits/);
    expect(s.err).toMatch(/Signature type: ECDSA/);
    const hash = /Hash used: (SHA\d+)/.exec(s.err)![1]!;
    const cipher = /Ciphersuite: (\S+)/.exec(s.err)![1]!;
    const id = /queued as (\w+)/.exec(s.out)![1]!;
    const lines = (await received(ec, id)).split('\r\n');
    expect(lines[1]).toMatch(new RegExp(`^\\t\\(using TLSv1\\.3 with cipher ${cipher} \\((128/128|256/256) bits\\)$`));
    expect(lines[2]).toBe(`\t key-exchange ECDHE (secp384r1) server-signature ECDSA (prime256v1) server-digest ${hash})`);
    expect(lines[3]).toBe('\t(No client certificate requested)');
  });

  it('TLS 1.2: protocol, cipher and bits only, as Postfix writes it', async () => {
    const r = await swaks(['--server', '127.0.0.1', '--port', String(rsa.port), '--tls', '--tls-protocol', 'tlsv1_2', '--from', 'alice@example.org', '--to', 'bob@example.com', '--body', 'over tls 1.2']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [, cipher, bits] = /TLS started with cipher TLSv1\.2:([A-Z0-9-]+):(\d+)/.exec(r.stdout)!;
    const id = /queued as (\w+)/.exec(r.stdout)![1]!;
    const lines = (await received(rsa, id)).split('\r\n');
    expect(lines[1]).toBe(`\t(using TLSv1.2 with cipher ${cipher} (${bits}/${bits} bits))`);
    expect(lines[2]).toBe('\t(No client certificate requested)');
    expect(lines[3]).toMatch(/^\tby gw\.test\.example \(Postern\) with ESMTPS id \w+$/);
  });
});
