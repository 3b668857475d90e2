/**
 * The HKP client against real HTTP servers on 127.0.0.1: the lookup URL of the draft, armored
 * answers, the address filter, time-outs, 404 — and the search patterns: a server is asked only
 * about addresses it may hold (requests are counted).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HkpClient, hkpBaseUrl, type HkpServer } from '../../src/directory/index.js';
import { armorPublicKey, generatePgpKey, type ParsedPgpKey } from '../../src/openpgp/index.js';
import { hang, startHttpPeer, type HttpPeer } from '../unit/directory/http-peer.js';

describe('HKP client', () => {
  let carol: ParsedPgpKey;
  let armored: string;
  let peers: HttpPeer[] = [];

  beforeAll(async () => {
    carol = await generatePgpKey({ address: 'carol@partner.example' });
    armored = await armorPublicKey(carol.publicKey);
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
  const keyserver = (req: Parameters<HttpPeer['handle']>[0], res: Parameters<HttpPeer['handle']>[1]) => {
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/pks/lookup' && u.searchParams.get('op') === 'get' && u.searchParams.get('options') === 'mr' && u.searchParams.get('search') === 'carol@partner.example') {
      res.writeHead(200, { 'content-type': 'application/pgp-keys' }).end(armored);
    } else res.writeHead(404).end('No keys found');
  };

  it('normalises hkp:// and hkps:// URLs', () => {
    expect(hkpBaseUrl('hkp://keys.partner.example')).toBe('http://keys.partner.example:11371');
    expect(hkpBaseUrl('hkp://keys.partner.example:8080')).toBe('http://keys.partner.example:8080');
    expect(hkpBaseUrl('hkps://keys.openpgp.org')).toBe('https://keys.openpgp.org');
    expect(hkpBaseUrl('http://127.0.0.1:1234/prefix/')).toBe('http://127.0.0.1:1234/prefix');
    expect(hkpBaseUrl('ldap://x')).toBeNull();
    expect(hkpBaseUrl('https://x/?q=1')).toBeNull();
  });

  it('gets an armored key with op=get&options=mr&search=<address>', async () => {
    const p = await peer(keyserver);
    const server: HkpServer = { url: p.origin, patterns: ['*@partner.example'], timeout: 2_000 };
    const hkp = new HkpClient([server], { maxBytes: 64 * 1024 });
    const out = await hkp.lookup(server, 'Carol@Partner.Example');
    expect(out.status).toBe('found');
    expect(out.keys.map((k) => k.key.info.fingerprint)).toEqual([carol.info.fingerprint]);
    expect(p.requests).toEqual(['/pks/lookup?op=get&options=mr&search=carol%40partner.example']);
  });

  it('404 is not-found; a key for someone else is dropped; garbage is an error', async () => {
    const other = await generatePgpKey({ address: 'mallory@partner.example' });
    const p = await peer((req, res) => {
      const s = new URL(req.url!, 'http://x').searchParams.get('search');
      if (s === 'dave@partner.example') res.writeHead(200).end(other.publicKey);
      else if (s === 'erin@partner.example') res.writeHead(200).end('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n');
      else res.writeHead(404).end();
    });
    const server: HkpServer = { url: p.origin, patterns: ['*'], timeout: 2_000 };
    const hkp = new HkpClient([server], { maxBytes: 64 * 1024 });
    expect((await hkp.lookup(server, 'frank@partner.example')).status).toBe('not-found');
    const dave = await hkp.lookup(server, 'dave@partner.example');
    expect(dave).toMatchObject({ status: 'error', keys: [] });
    expect(dave.notes.join()).toMatch(/dropped: its user ids are for mallory@partner.example/);
    expect((await hkp.lookup(server, 'erin@partner.example')).status).toBe('error');
  });

  it('a server that never answers costs its time-out', async () => {
    // The server never answers, so only the 250 ms deadline can end the look-up: the note says it
    // did (not a network error), one request was made, and the test's own time-out guards against a
    // look-up that never ends (no stopwatch: they flake on a loaded machine).
    const p = await peer(hang);
    const server: HkpServer = { url: p.origin, patterns: ['*'], timeout: 250 };
    const out = await new HkpClient([server], { maxBytes: 1024 }).lookup(server, 'carol@partner.example');
    expect(out.status).toBe('error');
    expect(out.notes).toEqual([expect.stringMatching(/: (no answer from \S+ in time|time-out after 250 ms)$/)]);
    expect(p.requests).toHaveLength(1);
  });

  it('asks a server only about addresses matching its patterns', async () => {
    const partner = await peer(keyserver);
    const org = await peer(keyserver);
    const servers: HkpServer[] = [
      { url: partner.origin, patterns: ['*@partner.example'], timeout: 2_000 },
      { url: org.origin, patterns: ['*.example.org', 'sales-*@example.net'], timeout: 2_000 },
    ];
    const hkp = new HkpClient(servers, { maxBytes: 64 * 1024 });
    const ask = async (address: string) => {
      for (const s of hkp.serversFor(address)) await hkp.lookup(s, address);
    };
    expect(hkp.serversFor('carol@partner.example').map((s) => s.url)).toEqual([partner.origin]);
    expect(hkp.serversFor('x@mail.example.org').map((s) => s.url)).toEqual([org.origin]);
    expect(hkp.serversFor('x@example.org')).toEqual([]); // "*.example.org" is subdomains only
    expect(hkp.serversFor('sales-emea@Example.NET').map((s) => s.url)).toEqual([org.origin]);
    for (const a of ['carol@partner.example', 'someone@elsewhere.example', 'x@sub.partner.example', 'x@example.org', 'support@example.net', 'x@mail.example.org']) await ask(a);
    expect(partner.requests).toEqual(['/pks/lookup?op=get&options=mr&search=carol%40partner.example']);
    expect(org.requests).toEqual(['/pks/lookup?op=get&options=mr&search=x%40mail.example.org']);
  });
});
