/**
 * Reverse DNS for the Received header, forward-confirmed (FCrDNS) as Postfix does: a PTR name
 * counts only when it resolves back to the client's address. The PTR record belongs to whoever
 * owns the client's IP, so an unconfirmed name would let anyone write "mail.bank.example" into
 * our trace headers. The connection bounds the wait (1.5 s) and checks the name's syntax.
 */
import { promises as dns } from 'node:dns';
import ipaddr from 'ipaddr.js';

export interface DnsLike {
  reverse(ip: string): Promise<string[]>;
  lookup(name: string, opts: { all: true }): Promise<{ address: string }[]>;
}

/** A callback-style reverse resolver (the shape smtp-server used; kept for its callers). */
export interface ReverseResolver {
  reverse(ip: string, callback: (err: Error | null, names?: string[]) => void): void;
}

export function fcrdnsResolver(resolver: DnsLike = dns): ReverseResolver {
  return {
    reverse(ip, callback) {
      confirmedNames(resolver, ip).then(
        (names) => callback(null, names),
        (err: Error) => callback(err),
      );
    },
  };
}

export async function confirmedNames(resolver: DnsLike, ip: string): Promise<string[]> {
  const names = (await resolver.reverse(ip)).slice(0, 5);
  for (const name of names) {
    try {
      const addrs = await resolver.lookup(name, { all: true });
      if (addrs.some((a) => sameIp(a.address, ip))) return [name];
    } catch {
      // this name does not resolve; try the next
    }
  }
  return [];
}

function sameIp(a: string, b: string): boolean {
  try {
    return ipaddr.process(a).toNormalizedString() === ipaddr.process(b).toNormalizedString();
  } catch {
    return false;
  }
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

/**
 * The client's confirmed name for the Received header, or null: none, not confirmed, not a
 * plausible host name (a PTR record can hold any bytes, CR LF included), or no answer in time.
 */
export async function clientName(ip: string, timeoutMs: number, resolver: DnsLike = dns): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), timeoutMs);
    timer.unref();
  });
  try {
    const names = await Promise.race([confirmedNames(resolver, ip).catch(() => [] as string[]), late]);
    const name = (names[0] ?? '').toLowerCase().replace(/\.$/, '');
    return HOSTNAME.test(name) ? name : null;
  } finally {
    clearTimeout(timer);
  }
}
