/**
 * CRLs from ldap:// and ldaps:// distribution points (RFC 4516 URLs in certificates and CRLs,
 * RFC 4523 attributes): the LdapFetcher that pki's RevocationChecker is given. A URL with a host
 * is read anonymously from that host (one connection per read: CRLs are cached until their
 * nextUpdate, so reads are rare); a URL without one (`ldap:///CN=…`, as Active Directory
 * Certificate Services writes them) is read from the configured ldap.servers, in order.
 *
 * Untrusted input: the URL (from a certificate anyone can make) and every byte the server sends.
 * So only revocation list attributes are read (a URL cannot make us fetch anything else, nor
 * bind as anyone: critical extensions such as !bindname are refused), the answer is cut at
 * maxBytes on the socket, the whole read at timeoutMs, and the values are handed to pki/ as
 * bytes to parse and verify. Secrets: the configured servers' bind passwords, used through
 * ldap-client.ts as for any other search.
 */
import type { LdapServerConfig } from '../config/types.js';
import type { LdapFetcher } from '../pki/index.js';
import { LdapServerClient } from './ldap-client.js';

export interface LdapUrl {
  /** ldap://host:port or ldaps://host:port; undefined when the URL names no host. */
  server?: string;
  dn: string;
  attributes: string[];
  scope: 'base' | 'one' | 'sub';
  filter: string;
}

export class LdapUrlError extends Error {
  override readonly name = 'LdapUrlError';
}

const REVOCATION_ATTRIBUTE = /^(certificateRevocationList|authorityRevocationList|deltaRevocationList)(;binary)?$/i;
const SCOPES: Record<string, LdapUrl['scope']> = { base: 'base', one: 'one', sub: 'sub' };

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new LdapUrlError(`bad percent-encoding in the ${what}`);
  }
}

/** RFC 4516: ldap[s]://[host[:port]]/dn[?attributes[?scope[?filter[?extensions]]]]. */
export function parseLdapUrl(url: string): LdapUrl {
  const m = /^(ldaps?):\/\/([^/?#]*)(?:\/([^?#]*)(?:\?([^?#]*)(?:\?([^?#]*)(?:\?([^?#]*)(?:\?([^?#]*))?)?)?)?)?$/i.exec(url);
  if (!m) throw new LdapUrlError('not an RFC 4516 LDAP URL');
  const [, scheme, hostport = '', dn = '', attrs = '', scope = '', filter = '', exts = ''] = m;
  const out: LdapUrl = {
    dn: decode(dn, 'DN'),
    attributes: attrs ? decode(attrs, 'attributes').split(',').map((a) => a.trim()).filter(Boolean) : [],
    scope: scope ? (SCOPES[decode(scope, 'scope').toLowerCase()] ?? badScope(scope)) : 'base',
    filter: filter ? decode(filter, 'filter') : '(objectClass=*)',
  };
  // RFC 4516 allows the filter without its outer parentheses (AD CS writes objectClass=cRLDistributionPoint).
  if (!out.filter.startsWith('(')) out.filter = `(${out.filter})`;
  if (hostport) {
    const h = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(hostport);
    if (!h || (h[2] !== undefined && (Number(h[2]) < 1 || Number(h[2]) > 65535))) throw new LdapUrlError(`bad host ${JSON.stringify(hostport.slice(0, 100))}`);
    out.server = `${scheme!.toLowerCase()}://${h[1]}${h[2] ? `:${h[2]}` : ''}`;
  }
  // RFC 4516 §2: a critical extension we do not implement forbids using the URL.
  for (const ext of exts.split(',').filter(Boolean)) {
    if (ext.startsWith('!')) throw new LdapUrlError(`the URL has the critical extension ${JSON.stringify(decode(ext.slice(1).split('=')[0]!, 'extension'))}, which is not supported`);
  }
  return out;
}

function badScope(scope: string): never {
  throw new LdapUrlError(`unknown scope ${JSON.stringify(scope.slice(0, 20))}`);
}

/** Values of `attribute` (any options, e.g. ";binary") across the entries. */
function valuesOf(attributes: Map<string, (string | Buffer)[]>, attribute: string): Buffer[] {
  const base = attribute.split(';')[0]!.toLowerCase();
  const out: Buffer[] = [];
  for (const [k, values] of attributes) {
    if (k.split(';')[0] !== base) continue;
    // A string value was decoded as text by the client: not the DER the server stored.
    for (const v of values) if (Buffer.isBuffer(v)) out.push(v);
  }
  return out;
}

/**
 * The LdapFetcher for the revocation checker. `servers`: where host-less URLs are read (the
 * config's ldap.servers); none: such URLs fail with a reason.
 */
export function ldapCrlFetcher(opts: { servers?: readonly LdapServerConfig[] } = {}): LdapFetcher {
  return async (req) => {
    const u = parseLdapUrl(req.url);
    const attributes = u.attributes.length ? u.attributes : [req.attribute];
    for (const a of attributes) {
      if (!REVOCATION_ATTRIBUTE.test(a)) throw new LdapUrlError(`the URL asks for ${JSON.stringify(a.slice(0, 60))}, which is not a revocation list attribute`);
    }
    const targets: LdapServerConfig[] = u.server
      ? [{ url: u.server, starttls: false, tls: { reject_unauthorized: true }, base_dn: u.dn, scope: u.scope, timeout: req.timeoutMs, user_filter: u.filter, attributes: { mail: 'mail', certificate: [], policy: [] } }]
      : (opts.servers ?? []).map((s) => ({ ...s, timeout: Math.min(s.timeout, req.timeoutMs) }));
    if (!targets.length) throw new LdapUrlError('the URL names no server, and no LDAP server is configured (ldap.servers)');
    const failures: string[] = [];
    for (const server of targets) {
      // retry_after 0: the checker remembers failed URLs itself.
      const client = new LdapServerClient(server, 0, Date.now, { maxBytes: req.maxBytes });
      try {
        const entries = await client.run((search) => search({ base: u.dn, scope: u.scope, filter: u.filter, attributes, binary: attributes, sizeLimit: 4 }));
        const values = entries.flatMap((e) => attributes.flatMap((a) => valuesOf(e.attributes, a)));
        if (values.length) return values;
        failures.push(`${server.url}: ${entries.length ? `the entry has no ${attributes.join(' or ')}` : `no entry ${u.dn}`}`);
      } catch (err) {
        // noSuchObject (32) is an answer, not an outage: say so plainly.
        const code = ((err as Error).cause as { code?: number } | undefined)?.code;
        failures.push(code === 32 ? `${server.url}: no entry ${u.dn}` : (err as Error).message);
      } finally {
        await client.close();
      }
    }
    throw new Error(failures.join('; '));
  };
}
