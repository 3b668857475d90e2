/**
 * DNS questions whose answer must say whether it was DNSSEC-validated (DANE, RFC 7672): TLSA, and
 * MX for the domain. Node 20's resolver knows neither TLSA nor the AD flag, so these go over the
 * wire (dns-packet) to the resolvers of /etc/resolv.conf with RD, AD and EDNS0 DO set: UDP, and
 * TCP when the answer is truncated. Like Postfix, the AD bit of the resolver is trusted as it
 * comes: DANE needs a validating resolver on the machine itself (README), since an AD bit that
 * crossed a network is only as good as that network.
 *
 * Every reply is untrusted: its id and question must be ours, its size is bounded, and records
 * of another name or type are ignored. Failures throw with Node's dns codes (ESERVFAIL,
 * ETIMEOUT, ECONNREFUSED, EFORMERR), so callers treat them like the other resolver errors.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { getServers } from 'node:dns';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { TlsaRecord } from './tls-peer.js';

/** An answer and whether the resolver vouched for it (AD); no records when the name or type does not exist. */
export interface SecureAnswer<T> {
  records: T[];
  secure: boolean;
}

export interface NameServer {
  host: string;
  port: number;
}

export interface SecureDnsOptions {
  /** The resolvers to ask, in order; /etc/resolv.conf's (via Node) by default. */
  servers?: readonly NameServer[];
  /** Per query and server (ms). */
  timeout?: number;
}

/** A TCP answer is at most 64 KiB by its length prefix; a UDP one what we offer in EDNS0. */
const UDP_PAYLOAD = 1232;

type Decoded = ReturnType<typeof dnsPacket.decode> & { rcode?: string };

export class SecureDns {
  private readonly timeout: number;

  constructor(private readonly opts: SecureDnsOptions = {}) {
    this.timeout = opts.timeout ?? 5000;
  }

  async resolveTlsa(name: string): Promise<SecureAnswer<TlsaRecord>> {
    const r = await this.ask(name, 'TLSA');
    const records: TlsaRecord[] = [];
    for (const a of r.answers) {
      if (a.type !== 'TLSA' || !sameName(a.name, name)) continue;
      const d = (a as { data: unknown }).data as { usage: number; selector: number; matchingType: number; certificate: Buffer };
      records.push({ usage: d.usage, selector: d.selector, matchingType: d.matchingType, data: Buffer.from(d.certificate) });
    }
    return { records, secure: r.secure };
  }

  async resolveMxSecure(domain: string): Promise<SecureAnswer<{ exchange: string; priority: number }>> {
    const r = await this.ask(domain, 'MX');
    const records = r.answers
      .filter((a) => a.type === 'MX' && sameName(a.name, domain))
      .map((a) => {
        const d = (a as { data: unknown }).data as { preference: number; exchange: string };
        return { exchange: d.exchange, priority: d.preference };
      });
    return { records, secure: r.secure };
  }

  /** One question to each server in turn until one answers; NXDOMAIN and NODATA are empty answers. */
  private async ask(name: string, type: 'TLSA' | 'MX'): Promise<{ answers: dnsPacket.Answer[]; secure: boolean }> {
    const servers = this.opts.servers ?? systemServers();
    let last: unknown = dnsError('ECONNREFUSED', name);
    for (const server of servers) {
      let reply: Decoded;
      try {
        reply = await this.exchange(server, name, type);
      } catch (err) {
        last = err;
        continue;
      }
      const rcode = reply.rcode ?? 'NOERROR';
      if (rcode === 'SERVFAIL') throw dnsError('ESERVFAIL', name); // a validation failure looks like this: never "insecure"
      if (rcode === 'REFUSED') {
        last = dnsError('EREFUSED', name);
        continue;
      }
      if (rcode !== 'NOERROR' && rcode !== 'NXDOMAIN') throw dnsError('EFORMERR', name);
      return { answers: rcode === 'NXDOMAIN' ? [] : (reply.answers ?? []), secure: reply.flag_ad === true };
    }
    throw last;
  }

  private async exchange(server: NameServer, name: string, type: 'TLSA' | 'MX'): Promise<Decoded> {
    const id = randomInt(0, 65536);
    const query = dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
      questions: [{ type, name }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: UDP_PAYLOAD, flags: dnsPacket.DNSSEC_OK } as unknown as dnsPacket.Answer],
    });
    const udp = await this.udp(server, query, id, name, type);
    return udp.flag_tc ? this.tcp(server, query, id, name, type) : udp;
  }

  private udp(server: NameServer, query: Buffer, id: number, name: string, type: string): Promise<Decoded> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      const done = (err: Error | null, r?: Decoded) => {
        clearTimeout(timer);
        socket.close();
        if (err) reject(err);
        else resolve(r!);
      };
      const timer = setTimeout(() => done(dnsError('ETIMEOUT', name)), this.timeout);
      socket.on('error', (e: NodeJS.ErrnoException) => done(dnsError(e.code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'ESERVFAIL', name)));
      // Only the server we asked, with our id and question: anything else is spoofing or noise.
      socket.on('message', (msg, rinfo) => {
        if (rinfo.port !== server.port) return;
        const r = decode(msg);
        if (r && matches(r, id, name, type)) done(null, r);
      });
      socket.send(query, server.port, server.host);
    });
  }

  private tcp(server: NameServer, query: Buffer, id: number, name: string, type: string): Promise<Decoded> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: server.host, port: server.port });
      let buf = Buffer.alloc(0);
      const done = (err: Error | null, r?: Decoded) => {
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(r!);
      };
      const timer = setTimeout(() => done(dnsError('ETIMEOUT', name)), this.timeout);
      socket.on('error', () => done(dnsError('ESERVFAIL', name)));
      socket.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        socket.write(Buffer.concat([len, query]));
      });
      socket.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const r = decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        done(r && matches(r, id, name, type) ? null : dnsError('EFORMERR', name), r);
      });
      socket.on('close', () => done(dnsError('ESERVFAIL', name)));
    });
  }
}

function decode(msg: Buffer): Decoded | undefined {
  try {
    return dnsPacket.decode(msg) as Decoded;
  } catch {
    return undefined;
  }
}

function matches(r: Decoded, id: number, name: string, type: string): boolean {
  const q = r.questions?.[0];
  return r.type === 'response' && r.id === id && !!q && q.type === type && sameName(q.name, name);
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');
}

/** Node's view of /etc/resolv.conf: "127.0.0.1", "[::1]:5353", "192.0.2.1:53". */
function systemServers(): NameServer[] {
  return getServers().map((s) => {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
    return m ? { host: m[1]!, port: Number(m[2] ?? 53) } : { host: s, port: 53 };
  });
}

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`query ${code} ${name}`), { code });
}
