/**
 * HKP client (draft-shaw-openpgp-hkp §3): GET /pks/lookup?op=get&options=mr&search=<address> on
 * the configured key servers. Each server is asked only about addresses matching one of its
 * patterns: a partner's server cannot hold other people's keys, a look-up there only slows the
 * mail down, and every look-up tells a third party whom we are writing to.
 *
 * Key servers are not the domain's own word (anyone may upload a key naming anyone to an SKS-style
 * server; keys.openpgp.org verifies addresses), so WKD is asked first, and only keys with a user
 * id for the address are taken. Untrusted input: the server's answer (armored or binary).
 */
import { compilePatterns, splitAddress, type AddressMatcher } from './address.js';
import { deadline, DirectoryFetchError, fetchBounded } from './http.js';
import { keysForAddress, type LookupOutcome } from './keys.js';

export interface HkpServer {
  /** http(s)://host[:port][/prefix] (hkp:// and hkps:// are rewritten by the config loader). */
  url: string;
  /** Address or domain patterns ("*@partner.example", "*.example.org", "*"). */
  patterns: string[];
  /** Per look-up, in ms. */
  timeout: number;
}

/** hkp://host → http://host:11371, hkps://host → https://host, http(s) as is; null if none of those. */
export function hkpBaseUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return null;
  }
  if (u.search || u.hash || u.username || u.password) return null;
  if (u.protocol === 'hkp:' || u.protocol === 'hkps:') {
    if (!u.host) return null;
    const web = new URL(`${u.protocol === 'hkp:' ? 'http' : 'https'}://${u.host}${u.pathname}`);
    // 11371 is HKP's own port; hkps is HTTPS on 443.
    if (u.protocol === 'hkp:' && !u.port) web.port = '11371';
    u = web;
  } else if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return u.href.replace(/\/+$/, '');
}

export function hkpLookupUrl(base: string, address: string): string {
  return `${base}/pks/lookup?op=get&options=mr&search=${encodeURIComponent(address)}`;
}

export class HkpClient {
  private readonly servers: { server: HkpServer; base: string; matches: AddressMatcher }[];

  constructor(
    servers: readonly HkpServer[],
    private readonly opts: { maxBytes: number; maxRedirects?: number },
  ) {
    this.servers = servers.map((server) => {
      const base = hkpBaseUrl(server.url);
      if (!base) throw new DirectoryFetchError('network', `${JSON.stringify(server.url)} is not a key server URL`);
      return { server, base, matches: compilePatterns(server.patterns) };
    });
  }

  /** The servers that may hold keys for `address`, in configured order. */
  serversFor(address: string): HkpServer[] {
    const a = splitAddress(address);
    return a ? this.servers.filter((s) => s.matches(a)).map((s) => s.server) : [];
  }

  /** Ask one server (which should be one of serversFor(address)). Never rejects. */
  async lookup(server: HkpServer, address: string, signal?: AbortSignal): Promise<LookupOutcome> {
    const entry = this.servers.find((s) => s.server === server);
    const base = entry?.base ?? hkpBaseUrl(server.url);
    const a = splitAddress(address);
    if (!base || !a) return { status: 'error', keys: [], notes: [`cannot ask ${server.url} about ${JSON.stringify(address)}`] };
    // Key servers index addresses lower-cased (keys.openpgp.org, Hockeypuck, SKS); some match exactly.
    const url = hkpLookupUrl(base, a.address.toLowerCase());
    const d = deadline(server.timeout, signal);
    try {
      const res = await fetchBounded(url, { signal: d.signal, maxBytes: this.opts.maxBytes, maxRedirects: this.opts.maxRedirects ?? 3, accept: 'application/pgp-keys, text/plain, */*;q=0.5' });
      if (res.status === 404 || res.status === 410) return { status: 'not-found', keys: [], notes: [`${base}: ${res.status}`] };
      const { keys, problems } = await keysForAddress(res.body, a.address);
      const notes = problems.map((p) => `${base}: ${p}`);
      if (keys.length) return { status: 'found', keys, url: res.url, notes };
      return { status: 'error', keys: [], notes: notes.length ? notes : [`${base}: empty answer`] };
    } catch (err) {
      return { status: 'error', keys: [], notes: [`${base}: ${(err as Error).message}`] };
    } finally {
      d.clear();
    }
  }
}
