/**
 * Reverse DNS for the Received header, forward-confirmed (FCrDNS) as Postfix does: a PTR name
 * counts only when it resolves back to the client's address. The PTR record belongs to whoever
 * owns the client's IP, so an unconfirmed name would let anyone write "mail.bank.example" into
 * our trace headers. smtp-server validates the name's syntax and bounds the wait (1.5 s).
 */
import { promises as dns } from 'node:dns';
import ipaddr from 'ipaddr.js';
import type { SMTPServerResolver } from 'smtp-server';

export interface DnsLike {
  reverse(ip: string): Promise<string[]>;
  lookup(name: string, opts: { all: true }): Promise<{ address: string }[]>;
}

export function fcrdnsResolver(resolver: DnsLike = dns): SMTPServerResolver {
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
