/**
 * Hostile messages through the running gateway, over SMTP (the issue's "done when"): an OpenPGP
 * compression bomb made by gpg (256 MB of zeros, encrypted to the gateway's key), 10,000 nested
 * multiparts, a CMS blob claiming 2^31 bytes and one nested 10,000 levels deep with indefinite
 * lengths — each sent together with a normal message. The hostile one is held with its limit as
 * the reason, the normal one delivered, and the workers are the same processes afterwards (no
 * crash, no restart); the bomb costs the worker about its limit in memory (VmHWM), not 256 MB.
 * A recipient the message is only passed through for gets it as it came while the others are held.
 * And worker.transform_timeout on the real path: a key server that accepts and never answers
 * stalls a message's key look-up; the message is deferred and the worker serves the next one.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const date = () => new Date().toUTCString();
const head = (subject: string) => `From: Mallory <mallory@partner.example>\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nDate: ${date()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@partner.example>\r\nMIME-Version: 1.0\r\n`;
const normal = (token: string) => Buffer.from(`${head(`normal ${token}`)}Content-Type: text/plain\r\n\r\nan ordinary message, ${token}\r\n`);
const b64 = (der: Buffer) => der.toString('base64').replace(/.{76}/g, '$&\r\n');
const pkcs7 = (subject: string, der: Buffer) =>
  Buffer.from(`${head(subject)}Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n${b64(der)}\r\n`);

/** VmHWM (peak resident set) of a process, in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

describe('hostile messages through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let gpg: GpgHome;
  let aliceFpr: string;
  let silent: Server;
  const stalled: Socket[] = [];
  const md = maildirOf(() => dir);

  /** Send the hostile message and a normal one at once; the hold reason of the hostile one. */
  async function hostile(raw: Buffer, token: string): Promise<string> {
    const [a, b] = await Promise.all([sendRaw(port, 'mallory@partner.example', ['alice@example.com'], raw), sendRaw(port, 'carol@partner.example', ['alice@example.com'], normal(token))]);
    expect(a).toMatch(/^250 /);
    expect(b).toMatch(/^250 /);
    const queueId = /queued as (\S+)/.exec(a)?.[1];
    await md.waitDelivered('alice@example.com', `an ordinary message, ${token}`);
    const spool = await Spool.open(dir);
    let reason = '';
    await waitUntil(async () => {
      for (const name of await spool.list('hold')) {
        const e = await spool.read('hold', name);
        if (e.meta.notes?.heldFrom === queueId || (queueId === undefined && e.body.includes(Buffer.from(token)))) reason = String(e.meta.notes?.holdReason);
      }
      return reason !== '';
    }, 60_000, `the hostile message of ${token} held`);
    // One log event for it, with the same reason (the log is written in blocks: waited for).
    await gw.waitFor((l) => l.event === 'worker.limit_exceeded' && l.reason === reason && l.queueId === queueId);
    return reason;
  }

  beforeAll(async () => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
    ({ dir, cleanup } = await tempDir('postern-limits-gw-'));
    port = await freePort();
    // A key server that accepts connections and never answers: the stalled look-up.
    silent = createServer((s) => void stalled.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const hkpPort = (silent.address() as { port: number }).port;
    const config = await writeGatewayConfig(
      dir,
      port,
      `worker:\n  transform_timeout: 3s\n  max_decompressed_size: 4MB\ndiscovery:\n  hkp:\n    servers:\n      - { url: "http://127.0.0.1:${hkpPort}", patterns: ["*@stall.example"], timeout: 60s }\n`,
    );
    const gen = await runPostern(config, ['pgp', 'generate', 'alice@example.com', '--name', 'Alice']);
    expect(gen.code, gen.stderr).toBe(0);
    aliceFpr = /([0-9A-F]{40})/.exec(gen.stdout)![1]!;
    const exported = await runPostern(config, ['pgp', 'export', aliceFpr, '--out', join(dir, 'alice.asc')]);
    expect(exported.code, exported.stderr).toBe(0);
    gpg = gpgHome();
    gpg.import(await readFile(join(dir, 'alice.asc')));
    gw = await startGateway(config);
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    for (const s of stalled) s.destroy();
    silent?.close();
    gpg?.close();
    await cleanup();
  });

  it('an OpenPGP compression bomb (256 MB of zeros) is held at 4 MB; the worker peaks near its limit, not the bomb', async () => {
    const armored = gpg.run(['--armor', '--compress-algo', 'zlib', '-z', '9', '--trust-model', 'always', '--encrypt', '--recipient', aliceFpr], Buffer.alloc(256 << 20)).stdout.toString();
    expect(armored.length).toBeLessThan(1 << 20);
    const raw = Buffer.from(
      `${head('bomb b1')}Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pp"\r\n\r\n--pp\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--pp\r\nContent-Type: application/octet-stream\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}\r\n--pp--\r\n`,
    );
    const workers = gw.rolePids('worker');
    const before = await Promise.all(workers.map(peakRss));
    const reason = await hostile(raw, 'b1');
    expect(reason).toBe('OpenPGP compressed data inflates to more than 4 MB (worker.max_decompressed_size): a decompression bomb, not opened');
    const after = await Promise.all(workers.map(peakRss));
    const growth = Math.max(...after.map((a, i) => a - before[i]!));
    console.log(`compression bomb: worker peak RSS ${before.map((b) => (b / 2 ** 20).toFixed(0)).join('/')} → ${after.map((a) => (a / 2 ** 20).toFixed(0)).join('/')} MB (growth ${(growth / 2 ** 20).toFixed(1)} MB; the bomb is 256 MB)`);
    // Inflated data up to the 4 MB limit, a copy of it, the message: far below the bomb's 256 MB.
    expect(growth).toBeLessThan(96 << 20);
  }, 180_000);

  it('10,000 nested multiparts are held (MIME nesting deeper than 50 levels)', async () => {
    let e = 'Content-Type: text/plain\r\n\r\nbottom\r\n';
    for (let i = 9999; i >= 0; i--) e = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${e}\r\n--n${i}--\r\n`;
    const reason = await hostile(Buffer.from(`${head('nested n1')}${e}`), 'n1');
    expect(reason).toBe('MIME parts nested deeper than 50 levels');
  }, 120_000);

  it('a CMS blob claiming 2^31 bytes is held before anything is read', async () => {
    const der = Buffer.concat([Buffer.from([0x30, 0x84, 0x80, 0x00, 0x00, 0x00, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x80]), Buffer.alloc(300, 0x41)]);
    const reason = await hostile(pkcs7('cms c1', der), 'c1');
    expect(reason).toMatch(/^an ASN\.1 length of 2147483648 bytes in a CMS object of 319 bytes: refused before anything was read$/);
  }, 120_000);

  it('a CMS blob nested 10,000 levels deep with indefinite lengths is held', async () => {
    const der = Buffer.concat([Buffer.from([0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]), Buffer.from(Array.from({ length: 10_000 }, () => [0xa0, 0x80]).flat()), Buffer.alloc(20_002)]);
    const reason = await hostile(pkcs7('cms d1', der), 'd1');
    expect(reason).toBe('a CMS object nested deeper than 40 levels');
  }, 120_000);

  it('only the recipients whose plan opens the message are held: a copy passed through for another goes out as it came', async () => {
    const der = Buffer.concat([Buffer.from([0x30, 0x84, 0x80, 0x00, 0x00, 0x00, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x80]), Buffer.alloc(300, 0x42)]);
    const raw = pkcs7('cms p1', der);
    const reply = await sendRaw(port, 'mallory@partner.example', ['alice@example.com', 'bob@elsewhere.example'], raw);
    const queueId = /queued as (\S+)/.exec(reply)![1];
    // bob@elsewhere.example: neither side internal, nothing to open — relayed as it came.
    const copy = await readFile(await md.waitDelivered('bob@elsewhere.example', 'cms p1'), 'latin1');
    expect(copy).toContain(b64(der).slice(0, 60));
    await gw.waitFor((l) => l.event === 'worker.limit_exceeded' && l.queueId === queueId);
    const spool = await Spool.open(dir);
    const held = await Promise.all((await spool.list('hold')).map((n) => spool.read('hold', n)));
    const mine = held.filter((e) => e.body.includes(Buffer.from('cms p1')));
    expect(mine.map((e) => e.meta.envelope.recipients.map((r) => r.address))).toEqual([['alice@example.com']]);
    expect(String(mine[0]!.meta.notes?.holdReason)).toMatch(/^an ASN\.1 length of 2147483648 bytes/);
  }, 120_000);

  it('after all of them the workers are the same processes: nothing crashed, nothing was restarted', () => {
    expect(gw.rolePids('worker')).toHaveLength(2);
    for (const pid of gw.rolePids('worker')) expect(() => process.kill(pid, 0)).not.toThrow();
    expect(gw.logs.filter((l) => l.event === 'supervisor.role_died' || l.event === 'supervisor.worker_unresponsive')).toEqual([]);
  });

  it('a key look-up that never answers: the message is deferred after worker.transform_timeout, the next one delivered', async () => {
    const stuck = Buffer.from(`From: alice@example.com\r\nTo: dave@stall.example\r\nSubject: stuck s1\r\nDate: ${date()}\r\n\r\nwaits for a key server, s1\r\n`);
    expect(await sendRaw(port, 'alice@example.com', ['dave@stall.example'], stuck)).toMatch(/^250 /);
    await gw.waitFor((l) => l.event === 'worker.transform_timeout', 30_000);
    expect(await sendRaw(port, 'carol@partner.example', ['alice@example.com'], normal('s2'))).toMatch(/^250 /);
    await md.waitDelivered('alice@example.com', 'an ordinary message, s2');
    // Deferred, not passed on: not delivered, not held, and tried again later.
    expect(await md.delivered('dave@stall.example', 'stuck s1')).toBeUndefined();
    const t = gw.logs.find((l) => l.event === 'worker.transform_timeout')!;
    expect(t).toMatchObject({ timeoutMs: 3000, attempt: 1, retryInMs: 60_000 });
    expect(gw.logs.some((l) => l.event === 'supervisor.worker_unresponsive')).toBe(false);
  }, 60_000);
});
