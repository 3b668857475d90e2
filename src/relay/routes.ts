/**
 * relay.routes: which next hop a recipient domain goes to. First match wins, in file order, so an
 * admin can put exceptions above a catch-all; matching is on the lower-cased domain because DNS
 * names are case-insensitive and RCPT TO keeps whatever case the client used.
 */
import type { Route, RouteTarget } from '../config/types.js';

/** The domain part of an address, lower-cased, without a trailing root dot; "" when there is none. */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return ''; // RCPT TO:<postmaster> has no domain: only "*" routes it
  return address
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '');
}

function matches(pattern: string, domain: string): boolean {
  const p = pattern.toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*.')) {
    // Subdomains only: "*.example.com" must not route the apex, nor "badexample.com".
    return domain.length > p.length - 1 && domain.endsWith(p.slice(1));
  }
  return domain === p;
}

export function matchRoute(routes: readonly Route[], domain: string): Route | undefined {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return routes.find((r) => matches(r.pattern, d));
}

/** A stable identity of a next hop: recipients with the same key share one transaction. */
export function targetKey(t: RouteTarget): string {
  switch (t.kind) {
    case 'mx':
      return `mx?tls=${t.tls}`;
    case 'smtp':
      return `smtp://${t.host}:${t.port}?tls=${t.tls}`;
    case 'smtps':
      return t.tls ? `smtps://${t.host}:${t.port}?tls=${t.tls}` : `smtps://${t.host}:${t.port}`;
    case 'maildir':
      return `maildir:${t.path}`;
  }
}

/** How a target is named in logs (no secrets in any of them). */
export function describeTarget(t: RouteTarget): string {
  switch (t.kind) {
    case 'mx':
      return t.tls === 'may' ? 'mx' : `mx (tls ${t.tls})`;
    case 'smtp':
      return t.tls === 'may' ? `smtp://${t.host}:${t.port}` : `smtp://${t.host}:${t.port} (tls ${t.tls})`;
    case 'smtps':
      return t.tls ? `smtps://${t.host}:${t.port} (tls ${t.tls})` : `smtps://${t.host}:${t.port}`;
    case 'maildir':
      return `maildir:${t.path}`;
  }
}

export interface RecipientGroup {
  key: string;
  target: RouteTarget;
  /** For mx routes: the recipient domain whose exchangers the group goes to. */
  domain?: string;
  /** In envelope order. */
  recipients: string[];
}

/**
 * Split recipients into one group per distinct target (one SMTP transaction or maildir batch
 * each). For "mx" each recipient domain is its own group: different domains have different MX
 * hosts (domains sharing exchangers still share the pooled connections).
 */
export function groupByRoute(routes: readonly Route[], recipients: readonly string[]): { groups: RecipientGroup[]; unrouted: string[] } {
  const groups = new Map<string, RecipientGroup>();
  const unrouted: string[] = [];
  for (const rcpt of recipients) {
    const route = matchRoute(routes, recipientDomain(rcpt));
    if (!route) {
      unrouted.push(rcpt);
      continue;
    }
    const domain = route.target.kind === 'mx' ? recipientDomain(rcpt) : undefined;
    const key = domain === undefined ? targetKey(route.target) : `${targetKey(route.target)}:${domain}`;
    let g = groups.get(key);
    if (!g) {
      g = { key, target: route.target, recipients: [], ...(domain === undefined ? {} : { domain }) };
      groups.set(key, g);
    }
    g.recipients.push(rcpt);
  }
  return { groups: [...groups.values()], unrouted };
}
