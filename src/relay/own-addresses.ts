/**
 * Which next-hop addresses are this gateway itself, for loop prevention (RFC 5321 §5.1): an MX
 * may name another host but resolve to one of our addresses, and mail sent there comes straight
 * back. Postfix's smtp client compares MX addresses with inet_interfaces (every interface address
 * when it listens on all) and proxy_interfaces; Postern does the same with its listeners and
 * relay.own_addresses.
 *
 * Our listeners count only on their own port: the relay connects to MX hosts on one port (25,
 * another in tests), and a listener on a different port is not where that connection lands.
 * relay.own_addresses (NAT, a load balancer, a front MTA that passes mail to us) count on any
 * port: mail sent there reaches us whatever the port behind them.
 */
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';

export interface OwnAddressSources {
  /** smtp.listen: "0.0.0.0" or "::" means every address of the machine. */
  listen: readonly { host: string; port: number }[];
  /** relay.own_addresses. */
  extra?: readonly string[];
  /** The machine's interface addresses; os.networkInterfaces() unless a test gives them. */
  interfaces?: () => string[];
}

/** True when a connection to address:port would reach this gateway. */
export type OwnAddressCheck = (address: string, port: number) => boolean;

/** One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 compressed, no zone; undefined if not an IP. */
export function canonicalIp(address: string): string | undefined {
  try {
    const a = ipaddr.process(address.trim());
    if (a.kind() === 'ipv6') (a as ipaddr.IPv6).zoneId = undefined;
    return a.toString();
  } catch {
    return undefined;
  }
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

const WILDCARD = new Set(['0.0.0.0', '::']);

function range(a: string): string {
  return ipaddr.parse(a).range();
}

/**
 * What a listener's host covers. A host name (rare in smtp.listen) counts only as "localhost":
 * resolving others here would make loop detection depend on the resolver it guards against.
 */
function listenerCovers(host: string, a: string, interfaces: () => string[]): boolean {
  const h = host.toLowerCase() === 'localhost' ? '127.0.0.1' : canonicalIp(host);
  if (h === undefined) return false;
  if (h === a) return true;
  const target = range(a);
  if (WILDCARD.has(h)) {
    // A connect to 0.0.0.0 or :: goes to the local host, and all of 127/8 is this machine: a
    // hostile zone may publish them as MX addresses precisely to make us talk to ourselves.
    if (target === 'loopback' || target === 'unspecified') return true;
    // Each interface address of the machine. Read per check: addresses come and go (DHCP, VPN),
    // and the lookup is cheap beside a delivery.
    return interfaces().some((i) => canonicalIp(i) === a);
  }
  // The unspecified address reaches a loopback listener too (Linux connects it to the local host).
  return target === 'unspecified' && range(h) === 'loopback';
}

export function ownAddressCheck(src: OwnAddressSources): OwnAddressCheck {
  const extra = new Set((src.extra ?? []).map(canonicalIp).filter((a): a is string => a !== undefined));
  const interfaces = src.interfaces ?? machineAddresses;
  return (address, port) => {
    const a = canonicalIp(address);
    if (a === undefined) return false;
    if (extra.has(a)) return true;
    return src.listen.some((l) => l.port === port && listenerCovers(l.host, a, interfaces));
  };
}
