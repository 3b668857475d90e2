import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionCounter, clientKey, gateAccepts, type Admission } from '../../../src/smtpd/client-limits.js';

const limits = (maxConnections: number, maxConnectionsPerClient: number) => ({ maxConnections, maxConnectionsPerClient });
const admitted = (a: Admission): Extract<Admission, { ok: true }> => {
  if (!a.ok) throw new Error(`refused: ${a.reason} ${a.client}`);
  return a;
};

describe('clientKey', () => {
  it('counts IPv4 per address, IPv4-mapped IPv6 as IPv4, IPv6 per /64', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('::1')).toBe('::/64');
  });
});

describe('ConnectionCounter', () => {
  it('admits max_connections_per_client sessions from one outside client, then refuses that client only', () => {
    const c = new ConnectionCounter();
    const l = limits(100, 3);
    const held = [1, 2, 3].map(() => admitted(c.admit('198.51.100.1', false, l)));
    expect(c.admit('198.51.100.1', false, l)).toEqual({ ok: false, reason: 'client_connections', client: '198.51.100.1' });
    expect(c.admit('198.51.100.2', false, l).ok).toBe(true);
    expect(c.held('198.51.100.1')).toMatchObject({ untrusted: 4, client: 3, clients: 2 });
    held[0]!.release();
    held[0]!.release(); // a second release must not free a slot someone else holds
    expect(c.held('198.51.100.1').client).toBe(2);
    expect(c.admit('198.51.100.1', false, l).ok).toBe(true);
    expect(c.admit('198.51.100.1', false, l).ok).toBe(false);
  });

  it('counts every address of one IPv6 /64 as one client', () => {
    const c = new ConnectionCounter();
    const l = limits(100, 2);
    admitted(c.admit('2001:db8:1:2::a', false, l));
    admitted(c.admit('2001:db8:1:2::b', false, l));
    expect(c.admit('2001:db8:1:2:ffff::c', false, l)).toEqual({ ok: false, reason: 'client_connections', client: '2001:db8:1:2::/64' });
    expect(c.admit('2001:db8:1:3::a', false, l).ok).toBe(true);
  });

  it('refuses outsiders over max_connections, however many addresses they use', () => {
    const c = new ConnectionCounter();
    const l = limits(3, 10);
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) admitted(c.admit(ip, false, l));
    expect(c.admit('203.0.113.4', false, l)).toEqual({ ok: false, reason: 'connections', client: '203.0.113.4' });
  });

  it('keeps trusted clients in their own pool: never refused because outsiders are many, no per-client limit', () => {
    const c = new ConnectionCounter();
    const l = limits(3, 1);
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) admitted(c.admit(ip, false, l));
    expect(c.admit('203.0.113.9', false, l).ok).toBe(false);
    // The internal server: one address, max_connections sessions, although outsiders fill theirs.
    const trusted = [1, 2, 3].map(() => admitted(c.admit('10.0.0.25', true, l)));
    expect(c.admit('10.0.0.25', true, l)).toEqual({ ok: false, reason: 'connections', client: '10.0.0.25' });
    // ... and a full trusted pool takes nothing from outsiders either.
    expect(c.held()).toMatchObject({ trusted: 3, untrusted: 3 });
    trusted[2]!.release();
    expect(c.admit('10.0.0.25', true, l).ok).toBe(true);
  });

  it('applies new limits to the next admission (reload) and forgets clients that left', () => {
    const c = new ConnectionCounter();
    const a = admitted(c.admit('198.51.100.1', false, limits(10, 5)));
    const b = admitted(c.admit('198.51.100.1', false, limits(10, 5)));
    expect(c.admit('198.51.100.1', false, limits(10, 2)).ok).toBe(false);
    expect(c.admit('198.51.100.1', false, limits(10, 3)).ok).toBe(true);
    a.release();
    b.release();
    expect(c.held('198.51.100.1')).toMatchObject({ untrusted: 1, client: 1, clients: 1 });
  });
});

describe('gateAccepts (real sockets on 127.0.0.1 and 127.0.0.2)', () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** Connect from `from`; resolves 'greeted' when the handler answered, 'closed' when the gate closed it. */
  function attempt(port: number, from: string): Promise<{ socket: Socket; outcome: 'greeted' | 'closed' }> {
    return new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.once('data', () => resolve({ socket, outcome: 'greeted' }));
      socket.once('close', () => resolve({ socket, outcome: 'closed' }));
    });
  }

  it('closes sockets over the cap in the outside pool only; the trusted pool has its own', async () => {
    server = createServer((s) => s.write('hello\r\n'));
    gateAccepts(server, (ip) => ip === '127.0.0.2', () => 2);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as { port: number };

    const a = await attempt(port, '127.0.0.1');
    const b = await attempt(port, '127.0.0.1');
    expect([a.outcome, b.outcome]).toEqual(['greeted', 'greeted']);
    expect((await attempt(port, '127.0.0.1')).outcome).toBe('closed');
    expect((await attempt(port, '127.0.0.2')).outcome).toBe('greeted');
    expect((await attempt(port, '127.0.0.2')).outcome).toBe('greeted');
    expect((await attempt(port, '127.0.0.2')).outcome).toBe('closed');

    // A slot comes back when its socket closes.
    await new Promise<void>((r) => {
      a.socket.once('close', () => r());
      a.socket.destroy();
    });
    let next = await attempt(port, '127.0.0.1');
    // The server may see the close a moment after the client: try until the gate has counted it.
    for (let i = 0; next.outcome === 'closed' && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      next = await attempt(port, '127.0.0.1');
    }
    expect(next.outcome).toBe('greeted');
  });
});
