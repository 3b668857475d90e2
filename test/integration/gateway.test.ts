/**
 * End to end through the real `postern` binary: the supervisor, its roles as processes, SMTP in
 * from swaks and from a Node client, out to a maildir and to Postfix's smtp-sink.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, MAIN, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirTokens, sendTokens, tokenMessage, waitUntil } from '../helpers/send.js';

const run = promisify(execFile);

describe('postern start (end to end)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let sinkPort: number;
  let sink: ReturnType<typeof spawn>;
  // Outside the data_dir, which postern start makes private (0700/0750) to everyone but its owner.
  let sinkParent: { dir: string; cleanup: () => Promise<void> };
  const sinkDir = () => join(sinkParent.dir, 'sink');

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-e2e-'));
    sinkParent = await tempDir('postern-e2e-sink-');
    await mkdir(sinkDir());
    sinkPort = await freePort();
    // Postfix's smtp-sink as the next hop: -d dumps each message (envelope + data) to a file.
    // smtp-sink drops privileges to -u nobody when run as root; nobody must be able to write the dumps.
    await import('node:fs/promises').then(async (fs) => {
      await fs.chmod(sinkParent.dir, 0o711);
      await fs.chmod(sinkDir(), 0o777);
    });
    sink = spawn('/usr/sbin/smtp-sink', ['-u', 'nobody', '-d', `${sinkDir()}/%M.`, `127.0.0.1:${sinkPort}`, '50'], { stdio: 'ignore' });
    port = await freePort();
    const config = await writeGatewayConfig(dir, port);
    // Mail for example.net goes to the sink, everything else to the maildir.
    await writeFile(config, (await readFile(config, 'utf8')).replace('relay:\n  routes:\n', `relay:\n  routes:\n    example.net: smtp://127.0.0.1:${sinkPort}\n`));
    gw = await startGateway(config);
  });

  afterAll(async () => {
    await gw?.stop();
    sink?.kill();
    await cleanup();
    await sinkParent?.cleanup();
  });

  it('runs smtpd, relay and one worker per configured core as separate processes', () => {
    expect(gw.rolePids('smtpd').length).toBe(1);
    expect(gw.rolePids('relay').length).toBe(1);
    expect(gw.rolePids('worker').length).toBe(2);
    const pids = new Set([gw.proc.pid, ...gw.rolePids('smtpd'), ...gw.rolePids('relay'), ...gw.rolePids('worker')]);
    expect(pids.size).toBe(5);
  });

  it('delivers a swaks message to the maildir byte-identical apart from the added headers', async () => {
    const msg = tokenMessage('swaks1');
    const file = join(dir, 'swaks1.eml');
    // swaks ends the DATA with its own CRLF before the final dot, so the file has none.
    await writeFile(file, msg.subarray(0, msg.length - 2));
    const { stdout } = await run('swaks', ['--server', `127.0.0.1:${port}`, '--from', 'alice@example.org', '--to', 'bob@example.com', '--data', `@${file}`]);
    // swaks marks server replies in clear with '<-' ('<~' under TLS).
    expect(stdout).toMatch(/^<- {2}250 2\.0\.0 Ok: queued as [0-9A-Z]{20}/m);
    const maildir = join(dir, 'maildir');
    await waitUntil(async () => (await maildirTokens(maildir)).has('swaks1'), 10_000, 'swaks1 delivered');
    const names = await readdir(join(maildir, 'new'));
    let delivered: Buffer | undefined;
    for (const n of names) {
      const b = await readFile(join(maildir, 'new', n));
      if (b.includes('X-Test-Token: swaks1')) delivered = b;
    }
    const text = delivered!.toString('latin1');
    // Everything after our Received header is exactly what swaks sent (swaks adds no headers with --data).
    const at = text.indexOf(msg.toString('latin1'));
    expect(at).toBeGreaterThan(0);
    expect(text.slice(at)).toBe(msg.toString('latin1'));
    const added = text.slice(0, at);
    expect(added).toMatch(/^Return-Path: <alice@example\.org>\r\n/);
    expect(added).toMatch(/Received: from \S+ \(.*\[127\.0\.0\.1\]\)\r\n\tby gw\.test\.example/);
    expect(await readdir(join(maildir, 'tmp'))).toEqual([]);
  });

  it('relays to Postfix smtp-sink over SMTP with the envelope intact', async () => {
    const r = await sendTokens(port, ['sink1'], { to: ['carol@example.net', 'dave@example.net'] });
    expect(r.accepted).toEqual(['sink1']);
    // smtp-sink creates its dump file before it has written it: wait for the whole record.
    const dumped = async () => {
      const [f] = await readdir(sinkDir());
      return f !== undefined && /sink1/.test(await readFile(join(sinkDir(), f), 'latin1'));
    };
    await waitUntil(dumped, 10_000, 'smtp-sink received');
    const [name] = await readdir(sinkDir());
    const dump = await readFile(join(sinkDir(), name!), 'latin1');
    expect(dump).toMatch(/^X-Client-Addr: 127\.0\.0\.1/m);
    // smtp-sink -d records the SMTP command arguments as X-Mail-Args / X-Rcpt-Args.
    expect(dump).toMatch(/^X-Mail-Args: <alice@example\.org>$/m);
    expect(dump).toMatch(/^X-Rcpt-Args: <carol@example\.net>$/m);
    expect(dump).toMatch(/^X-Rcpt-Args: <dave@example\.net>$/m);
    // smtp-sink writes its dumps with LF line ends; what Postern relayed follows its Received header.
    const sent = tokenMessage('sink1', 'alice@example.org', 'carol@example.net, dave@example.net').toString('latin1');
    const noDate = (t: string) => t.replace(/\r\n/g, '\n').replace(/^Date: .*\n/m, ''); // the sent copy was made a moment later
    expect(noDate(dump)).toContain(noDate(sent));
  });

  it('lists the queue and checks the config through the CLI', async () => {
    const { stdout } = await run(process.execPath, [MAIN, 'queue', 'list', '-c', join(dir, 'postern.yaml')]);
    expect(stdout).toMatch(/^ID\tSTATE\tAGE\tSIZE\tSENDER\tRECIPIENTS/);
    expect(stdout).toMatch(/-- \d+ entr(y|ies)/);
    const ok = await run(process.execPath, [MAIN, 'check', '-c', join(dir, 'postern.yaml')]);
    expect(ok.stdout).toMatch(/OK/);
  });

  it('reloads a valid config on SIGHUP and keeps the running one when the new one is broken', async () => {
    const config = join(dir, 'postern.yaml');
    const good = await readFile(config, 'utf8');
    await writeFile(config, good.replace('workers: 2', 'workers: "many"'));
    process.kill(gw.proc.pid!, 'SIGHUP');
    const rejected = await gw.waitFor((l) => l.event === 'supervisor.reload_rejected');
    expect(String(rejected.reason)).toMatch(/workers/);
    await writeFile(config, good);
    process.kill(gw.proc.pid!, 'SIGHUP');
    await gw.waitFor((l) => l.event === 'supervisor.reloaded');
    // still accepting mail
    expect((await sendTokens(port, ['after-reload'])).accepted).toEqual(['after-reload']);
  });

  it('picks up an edited policy by itself, and keeps the running one when the new one is broken', async () => {
    const policy = join(dir, 'policy.yaml');
    const good = await readFile(policy, 'utf8');
    const before = gw.logs.length;
    await writeFile(policy, 'rules:\n  - name: oops\n    when: { directon: inbound }\n    do: [decrypt]\n');
    const rejected = await gw.waitFor((l) => gw.logs.indexOf(l) >= before && l.event === 'supervisor.reload_rejected');
    expect(String(rejected.reason)).toMatch(/policy\.yaml:3:13: rule "oops": rules\.0\.when\.directon: unknown condition/);
    // A valid edit is loaded. (Writing back the very text the roles run would load nothing: the
    // watcher reloads only a policy other than the one loaded, since the cluster's follower.)
    await writeFile(policy, `${good}# edited by hand\n`);
    await gw.waitFor((l) => gw.logs.indexOf(l) >= before && l.event === 'supervisor.reloaded');
    expect((await sendTokens(port, ['after-policy-edit'])).accepted).toEqual(['after-policy-edit']);
  });

  it('restarts a crashed smtpd and keeps accepting', async () => {
    const [pid] = gw.rolePids('smtpd');
    process.kill(pid!, 'SIGKILL');
    await gw.waitFor((l) => l.event === 'supervisor.role_died' && l.role === 'smtpd');
    await waitUntil(async () => gw.rolePids('smtpd').length === 2 && gw.logs.filter((l) => l.event === 'supervisor.ready').length >= 2, 10_000, 'smtpd restarted');
    expect((await sendTokens(port, ['after-crash'])).accepted).toEqual(['after-crash']);
  });

  it('stops cleanly on SIGTERM with exit code 0', async () => {
    const r = await gw.stop();
    expect(r).toEqual({ code: 0, signal: null });
    expect(gw.logs.some((l) => l.event === 'supervisor.stopped')).toBe(true);
  });
});

describe('postern check', () => {
  it('names the file, line and key of each problem and exits 1', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = join(dir, 'postern.yaml');
      await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
      await writeFile(file, 'hostname: gw.example\nsmtp:\n  max_message_size: fifty\n');
      const r = await run(process.execPath, [MAIN, 'check', '-c', file]).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}:3:`);
      expect(r.stderr).toMatch(/smtp\.max_message_size: "fifty" — expected a size like 50MB/);
    } finally {
      await cleanup();
    }
  });
});
