/**
 * Web Key Directory client (draft-koch-openpgp-webkey-service §3.1): the advanced method
 * (https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>), then the
 * direct method (https://<domain>/.well-known/openpgpkey/hu/<hash>?l=<local>) when the advanced
 * one gave no key. The domain's own server speaks for the domain, so this is the source preferred
 * over key servers; still, only keys with a user id for the address asked about are taken.
 *
 * Untrusted input: the recipient address (it names the host we connect to — only public key
 * bytes are ever read back, and they are parsed, never echoed) and everything the server sends.
 * One deadline covers both methods, redirects and bodies.
 */
import { splitAddress, wkdHash } from './address.js';
import { deadline, DirectoryFetchError, fetchBounded } from './http.js';
import { keysForAddress, type LookupOutcome } from './keys.js';

export type WkdMethod = 'advanced' | 'direct';

export interface WkdOptions {
  /** The whole look-up (both methods), in ms. */
  timeout: number;
  /** Largest body read, in bytes. */
  maxBytes: number;
  maxRedirects?: number;
  /**
   * The origin asked for a domain by each method. Default https://openpgpkey.<domain> (advanced)
   * and https://<domain> (direct); tests serve http on 127.0.0.1.
   */
  origin?: (method: WkdMethod, domain: string) => string;
}

const defaultOrigin = (method: WkdMethod, domain: string) => (method === 'advanced' ? `https://openpgpkey.${domain}` : `https://${domain}`);

/** Both WKD URLs of an address (what `gpg-wks-client --print-wkd-url` prints for the advanced one). */
export function wkdUrls(address: string, origin: WkdOptions['origin'] = defaultOrigin): { advanced: string; direct: string; hash: string } | null {
  const a = splitAddress(address);
  if (!a) return null;
  const hash = wkdHash(a.local);
  const l = `?l=${encodeURIComponent(a.local)}`;
  return {
    advanced: `${origin('advanced', a.domain).replace(/\/$/, '')}/.well-known/openpgpkey/${a.domain}/hu/${hash}${l}`,
    direct: `${origin('direct', a.domain).replace(/\/$/, '')}/.well-known/openpgpkey/hu/${hash}${l}`,
    hash,
  };
}

export class WkdClient {
  constructor(private readonly opts: WkdOptions) {}

  /** Never rejects: failures are an 'error' outcome with notes. */
  async lookup(address: string, signal?: AbortSignal): Promise<LookupOutcome> {
    const urls = wkdUrls(address, this.opts.origin);
    if (!urls) return { status: 'error', keys: [], notes: [`${JSON.stringify(address)} is not an address WKD can look up`] };
    const notes: string[] = [];
    const d = deadline(this.opts.timeout, signal);
    let failed = false;
    try {
      for (const method of ['advanced', 'direct'] as const) {
        if (d.signal.aborted) {
          notes.push(`${method}: not tried, time is up`);
          failed = true;
          break;
        }
        const url = urls[method];
        try {
          const res = await fetchBounded(url, { signal: d.signal, maxBytes: this.opts.maxBytes, maxRedirects: this.opts.maxRedirects ?? 3 });
          if (res.status === 404 || res.status === 410) {
            notes.push(`${method}: ${res.status} from ${new URL(res.url).origin}`);
            continue;
          }
          const { keys, problems } = await keysForAddress(res.body, address);
          notes.push(...problems.map((p) => `${method}: ${p}`));
          if (keys.length) return { status: 'found', keys, url: res.url, notes };
          // A body without a key for the address: broken or someone else's; the direct method may do better.
          if (!problems.length) notes.push(`${method}: empty answer from ${new URL(res.url).origin}`);
          failed = true;
        } catch (err) {
          const e = err instanceof DirectoryFetchError ? err : new DirectoryFetchError('network', (err as Error).message);
          // No openpgpkey.<domain> in DNS is the normal way to say "use the direct method".
          const absent = method === 'advanced' && e.kind === 'network' && /ENOTFOUND|EAI_AGAIN/.test(e.message);
          notes.push(`${method}: ${absent ? 'no openpgpkey subdomain' : e.message}`);
          if (!absent) failed = true;
        }
      }
    } finally {
      d.clear();
    }
    return { status: failed ? 'error' : 'not-found', keys: [], notes };
  }
}
