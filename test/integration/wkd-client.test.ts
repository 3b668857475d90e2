/**
 * The WKD client against real HTTP servers on 127.0.0.1: advanced then direct method, the URL
 * layout (hash, ?l=), the address filter, secret parts thrown away, and the limits — a server
 * that never answers, one that trickles, bodies too large, redirect loops, garbage, 404.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WkdClient, wkdHash, wkdUrls } from '../../src/directory/index.js';
import { generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { hang, startHttpPeer, type HttpPeer } from '../unit/directory/http-peer.js';

const ADDRESS = 'Alice.Smith@Partner.Example';
const HASH = wkdHash('Alice.Smith');

describe('WKD client', () => {
  let alice: ParsedPgpKey;
  let bob: ParsedPgpKey;
  let both: Buffer;
  let peers: HttpPeer[] = [];

  beforeAll(async () => {
    alice = await generatePgpKey({ address: 'alice.smith@partner.example', name: 'Alice' });
    bob = await generatePgpKey({ address: 'bob@partner.example' });
    const { publicKey } = await openpgp.generateKey({ userIDs: [{ email: 'alice.smith@partner.example' }, { email: 'ceo@victim.example' }], format: 'binary', config: { v6Keys: false } });
    both = Buffer.from(publicKey);
  });
  afterEach(async () => {
    await Promise.all(peers.map((p) => p.close()));
    peers = [];
  });

  async function peer(handle: HttpPeer['handle']): Promise<HttpPeer> {
    const p = await startHttpPeer(handle);
    peers.push(p);
    return p;
  }
  const client = (p: HttpPeer, over: Partial<ConstructorParameters<typeof WkdClient>[0]> = {}) => new WkdClient({ timeout: 2_000, maxBytes: 64 * 1024, origin: () => p.origin, ...over });

  it('builds the URLs of the draft (advanced and direct), with the local part as written', () => {
    expect(wkdHash('Joe.Doe')).toBe('iy9q119eutrkn8s1mk4r39qejnbu3n5q');
    expect(wkdUrls('Joe.Doe@Example.ORG')).toEqual({
      advanced: 'https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe',
      direct: 'https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe',
      hash: 'iy9q119eutrkn8s1mk4r39qejnbu3n5q',
    });
  });

  it('finds a key by the advanced method (binary body) and asks nothing more', async () => {
    const p = await peer((req, res) => {
      if (req.url === `/.well-known/openpgpkey/partner.example/hu/${HASH}?l=Alice.Smith`) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(alice.publicKey);
      else res.writeHead(404).end();
    });
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('found');
    expect(out.keys.map((k) => k.key.info.fingerprint)).toEqual([alice.info.fingerprint]);
    expect(out.keys[0]!.key.secretKey).toBeUndefined();
    expect(p.requests).toHaveLength(1);
  });

  it('falls back to the direct method when the advanced one has no key', async () => {
    const p = await peer((req, res) => {
      if (req.url === `/.well-known/openpgpkey/hu/${HASH}?l=Alice.Smith`) res.writeHead(200).end(alice.publicKey);
      else res.writeHead(404).end();
    });
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('found');
    expect(p.requests).toEqual([`/.well-known/openpgpkey/partner.example/hu/${HASH}?l=Alice.Smith`, `/.well-known/openpgpkey/hu/${HASH}?l=Alice.Smith`]);
  });

  it('404 on both methods is not-found', async () => {
    const p = await peer((_q, res) => res.writeHead(404).end());
    const out = await client(p).lookup(ADDRESS);
    expect(out).toMatchObject({ status: 'not-found', keys: [] });
    expect(p.requests).toHaveLength(2);
  });

  it("drops a key for another address, and says so", async () => {
    const p = await peer((_q, res) => res.writeHead(200).end(bob.publicKey));
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('error');
    expect(out.keys).toEqual([]);
    expect(out.notes.join('\n')).toMatch(new RegExp(`key ${bob.info.fingerprint} dropped: its user ids are for bob@partner.example, not alice.smith@partner.example`, 'i'));
  });

  it('binds a key naming several addresses to the one asked about only', async () => {
    const p = await peer((_q, res) => res.writeHead(200).end(both));
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('found');
    expect(out.keys[0]!.key.info.addresses).toEqual(['alice.smith@partner.example']);
    expect(out.keys[0]!.claimed.sort()).toEqual(['alice.smith@partner.example', 'ceo@victim.example']);
  });

  it('keeps only the public part of a secret key a server sends', async () => {
    const p = await peer((_q, res) => res.writeHead(200).end(alice.secretKey));
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('found');
    const k = out.keys[0]!.key;
    expect(k.secretKey).toBeUndefined();
    expect(k.info.hasSecret).toBe(false);
    expect(k.publicKey.equals(alice.publicKey)).toBe(true);
    expect(out.notes.join('\n')).toMatch(/only the public key is used/);
  });

  it.each([
    ['garbage', Buffer.from('<html>It works!</html>')],
    ['an empty body', Buffer.alloc(0)],
    ['random bytes', Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff))],
    ['a truncated key', () => alice.publicKey.subarray(0, 40)],
  ])('a body of %s is no key (error, not a throw)', async (_name, body) => {
    const p = await peer((_q, res) => res.writeHead(200).end(typeof body === 'function' ? body() : body));
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('error');
    expect(out.keys).toEqual([]);
    expect(p.requests).toHaveLength(2);
  });

  // No stopwatch beyond "it did wait" (a lower bound cannot flake: load delays a timer, never
  // advances it). The server never finishes, so only the deadline can end the look-up — the test's
  // own time-out guards against one that never does — and "not more than the time-out" is the work
  // done: one deadline for both methods, so the direct method is not tried once it has passed.
  /** What the advanced method says when the deadline ends it, waiting for the head or the body. */
  const DEADLINE = /^advanced: (no answer from \S+ in time|time-out after 300 ms)$/;
  it('a server that never answers costs the time-out, not more', async () => {
    const p = await peer(hang);
    const t0 = Date.now();
    const out = await client(p, { timeout: 300 }).lookup(ADDRESS);
    const ms = Date.now() - t0;
    expect(out.status).toBe('error');
    expect(out.notes).toEqual([expect.stringMatching(DEADLINE), 'direct: not tried, time is up']);
    expect(p.requests).toHaveLength(1);
    expect(ms).toBeGreaterThanOrEqual(280);
  });

  it('a server that trickles its body forever costs the time-out too', async () => {
    const p = await peer((_q, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write(Buffer.from([0x99])), 20);
      res.on('close', () => clearInterval(t));
    });
    const out = await client(p, { timeout: 300 }).lookup(ADDRESS);
    expect(out.status).toBe('error');
    expect(out.notes).toEqual([expect.stringMatching(DEADLINE), 'direct: not tried, time is up']);
    expect(p.requests).toHaveLength(1);
  });

  it('refuses bodies over the limit (announced or not)', async () => {
    const big = Buffer.alloc(100_000, 0x41);
    const announced = await peer((_q, res) => res.writeHead(200, { 'content-length': big.length }).end(big));
    const out1 = await client(announced, { maxBytes: 10_000 }).lookup(ADDRESS);
    expect(out1.status).toBe('error');
    expect(out1.notes.join('\n')).toMatch(/announced 100000 bytes/);
    const chunked = await peer((_q, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write(big.subarray(0, 10_000));
      res.end();
    });
    const out2 = await client(chunked, { maxBytes: 10_000 }).lookup(ADDRESS);
    expect(out2.notes.join('\n')).toMatch(/more than 10000 bytes/);
  });

  it('follows a few redirects, not a loop', async () => {
    const p = await peer((req, res) => {
      if (req.url?.startsWith('/moved')) res.writeHead(200).end(alice.publicKey);
      else if (req.url?.startsWith('/loop')) res.writeHead(302, { location: '/loop' }).end();
      else if (req.url?.includes('/partner.example/')) res.writeHead(301, { location: '/moved' }).end();
      else res.writeHead(302, { location: '/loop' }).end();
    });
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('found');
    expect(out.url).toBe(`${p.origin}/moved`);

    p.handle = (_q, res) => res.writeHead(302, { location: '/loop' }).end();
    const loop = await client(p).lookup(ADDRESS);
    expect(loop.status).toBe('error');
    expect(loop.notes.join('\n')).toMatch(/more than 3 redirects/);
  });

  it('an unreachable server is an error, quickly', async () => {
    const p = await peer(hang);
    await p.close();
    peers = [];
    const out = await client(p).lookup(ADDRESS);
    expect(out.status).toBe('error');
    expect(out.notes.join('\n')).toMatch(/ECONNREFUSED/);
  });

  it('answers for a non-address without asking', async () => {
    const p = await peer(hang);
    expect((await client(p).lookup('not an address')).status).toBe('error');
    await sleep(10);
    expect(p.requests).toEqual([]);
  });
});
