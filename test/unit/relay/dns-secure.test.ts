/**
 * The DNS wire client for DANE: TLSA and MX with the AD bit, against a resolver the test runs on
 * loopback (dns-packet on UDP and TCP): AD set or not, NXDOMAIN, SERVFAIL, truncation to TCP,
 * answers with another id or of another name (spoofing) ignored.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { SecureDns } from '../../../src/relay/dns-secure.js';

type Handler = (q: dnsPacket.DecodedPacket) => { rcode?: number; ad?: boolean; tc?: boolean; answers?: dnsPacket.Answer[]; id?: number; name?: string } | 'silent';

interface Fake {
  port: number;
  udpQueries: string[];
  tcpQueries: string[];
  close(): Promise<void>;
}

const fakes: Fake[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

/** A resolver on 127.0.0.1 (UDP and TCP on one port) answering as `handler` says. */
async function fakeResolver(handler: Handler): Promise<Fake> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const port = udp.address().port;
  const tcp = net.createServer();
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', r));
  const fake: Fake = { port, udpQueries: [], tcpQueries: [], close: async () => { udp.close(); await new Promise((r) => tcp.close(r)); } };
  const respond = (msg: Buffer, viaTcp: boolean): Buffer | undefined => {
    const q = dnsPacket.decode(msg) as dnsPacket.DecodedPacket;
    (viaTcp ? fake.tcpQueries : fake.udpQueries).push(`${q.questions![0]!.type} ${q.questions![0]!.name} do=${JSON.stringify(q.additionals?.[0] && (q.additionals[0] as { flags?: number }).flags)}`);
    const a = handler(q);
    if (a === 'silent') return undefined;
    const flags = (a.rcode ?? 0) | (a.ad ? dnsPacket.AUTHENTIC_DATA : 0) | (a.tc && !viaTcp ? dnsPacket.TRUNCATED_RESPONSE : 0) | dnsPacket.RECURSION_AVAILABLE;
    const question = { ...q.questions![0]!, ...(a.name ? { name: a.name } : {}) };
    return dnsPacket.encode({ type: 'response', id: a.id ?? q.id, flags, questions: [question], answers: a.tc && !viaTcp ? [] : (a.answers ?? []) });
  };
  udp.on('message', (msg, rinfo) => {
    const out = respond(msg, false);
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  tcp.on('connection', (s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const out = respond(buf.subarray(2, 2 + buf.readUInt16BE(0)), true);
      if (!out) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(out.length);
      s.end(Buffer.concat([len, out]));
    });
  });
  fakes.push(fake);
  return fake;
}

const tlsa = (name: string, data: Buffer): dnsPacket.Answer => ({ type: 'TLSA', name, ttl: 60, data: { usage: 3, selector: 1, matchingType: 1, certificate: data } } as unknown as dnsPacket.Answer);

describe('SecureDns', () => {
  const name = '_25._tcp.mx.example.net';

  it('asks with DO and reads TLSA records and the AD bit', async () => {
    const data = randomBytes(32);
    const f = await fakeResolver(() => ({ ad: true, answers: [tlsa(name, data), tlsa('_25._tcp.other.example', randomBytes(32))] }));
    const dns = new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 2000 });
    expect(await dns.resolveTlsa(name)).toEqual({ records: [{ usage: 3, selector: 1, matchingType: 1, data }], secure: true });
    expect(f.udpQueries).toEqual([`TLSA ${name} do=${dnsPacket.DNSSEC_OK}`]);
  });

  it('an answer without AD is insecure; NXDOMAIN is no records', async () => {
    const f = await fakeResolver((q) => (q.questions![0]!.name === name ? { ad: false, answers: [tlsa(name, randomBytes(32))] } : { rcode: 3, ad: true }));
    const dns = new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 2000 });
    expect((await dns.resolveTlsa(name)).secure).toBe(false);
    expect(await dns.resolveTlsa('_25._tcp.none.example')).toEqual({ records: [], secure: true });
  });

  it('SERVFAIL (a validation failure) throws ESERVFAIL; silence ETIMEOUT', async () => {
    const f = await fakeResolver(() => ({ rcode: 2 }));
    await expect(new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 2000 }).resolveTlsa(name)).rejects.toMatchObject({ code: 'ESERVFAIL' });
    const g = await fakeResolver(() => 'silent');
    await expect(new SecureDns({ servers: [{ host: '127.0.0.1', port: g.port }], timeout: 300 }).resolveTlsa(name)).rejects.toMatchObject({ code: 'ETIMEOUT' });
  });

  it('a truncated UDP answer is asked again over TCP', async () => {
    const data = randomBytes(32);
    const f = await fakeResolver(() => ({ ad: true, tc: true, answers: [tlsa(name, data)] }));
    const dns = new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 2000 });
    expect(await dns.resolveTlsa(name)).toEqual({ records: [{ usage: 3, selector: 1, matchingType: 1, data }], secure: true });
    expect(f.udpQueries).toHaveLength(1);
    expect(f.tcpQueries).toHaveLength(1);
  });

  it('an answer with another id or for another name is not taken (spoofing)', async () => {
    const f = await fakeResolver((q) => ({ ad: true, id: (q.id! + 1) % 65536, answers: [tlsa(name, randomBytes(32))] }));
    await expect(new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 300 }).resolveTlsa(name)).rejects.toMatchObject({ code: 'ETIMEOUT' });
    const g = await fakeResolver(() => ({ ad: true, name: 'evil.example', answers: [tlsa('evil.example', randomBytes(32))] }));
    await expect(new SecureDns({ servers: [{ host: '127.0.0.1', port: g.port }], timeout: 300 }).resolveTlsa(name)).rejects.toMatchObject({ code: 'ETIMEOUT' });
  });

  it('MX with its AD bit', async () => {
    const f = await fakeResolver(() => ({ ad: true, answers: [{ type: 'MX', name: 'example.net', ttl: 60, data: { preference: 10, exchange: 'mx.example.net' } } as dnsPacket.Answer] }));
    const dns = new SecureDns({ servers: [{ host: '127.0.0.1', port: f.port }], timeout: 2000 });
    expect(await dns.resolveMxSecure('example.net')).toEqual({ records: [{ exchange: 'mx.example.net', priority: 10 }], secure: true });
  });
});
