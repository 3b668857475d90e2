/**
 * What smtpd takes from the Config, checked and pre-computed once per (re)load. A session keeps
 * the settings it started with, so a reload never changes the rules halfway through a transaction.
 */
import type { Config } from '../config/types.js';
import { NetworkList, asciiDomain } from './relay-control.js';

export interface SmtpdSettings {
  hostname: string;
  internalDomains: ReadonlySet<string>;
  postmasterDomain: string;
  trusted: NetworkList;
  bareNewline: Config['smtp']['bare_newline'];
  maxConnections: number;
  maxConnectionsPerClient: number;
  dataTimeout: number;
  sessionTimeout: number;
  maxMessageSize: number;
  maxRecipients: number;
  /** smtp.min_free_space (bytes; 0: no check). */
  minFreeSpace: number;
  /** Silence from the client longer than this (ms) ends the session. */
  idleTimeout: number;
  /** Extra text of the 220 greeting. */
  banner?: string;
  /** Look up (and forward-confirm) the client's PTR name before the greeting. */
  reverseDns: boolean;
  /** Offer CHECKPOINT (RFC 1845). */
  checkpoint: boolean;
}

/** Throws (with the offending value named) when the config cannot be used. */
export function deriveSettings(config: Config): SmtpdSettings {
  const internal = new Set<string>();
  for (const d of config.internal_domains) {
    const a = asciiDomain(d);
    if (!a) throw new Error(`internal_domains: ${JSON.stringify(d)} is not a domain name`);
    internal.add(a);
  }
  return {
    hostname: config.hostname,
    internalDomains: internal,
    // RFC 5321 4.5.1: "RCPT TO:<postmaster>" must work; the first internal domain is where the
    // admin reads mail (our own hostname would route back to us).
    postmasterDomain: [...internal][0] ?? config.hostname.toLowerCase(),
    trusted: new NetworkList(config.trusted_networks),
    bareNewline: config.smtp.bare_newline,
    maxConnections: config.smtp.max_connections,
    maxConnectionsPerClient: config.smtp.max_connections_per_client,
    dataTimeout: config.smtp.data_timeout,
    sessionTimeout: config.smtp.session_timeout,
    maxMessageSize: config.smtp.max_message_size,
    maxRecipients: config.smtp.max_recipients,
    minFreeSpace: config.smtp.min_free_space,
    idleTimeout: config.smtp.idle_timeout,
    ...(config.smtp.banner ? { banner: config.smtp.banner } : {}),
    reverseDns: config.smtp.reverse_dns,
    checkpoint: config.smtp.checkpoint,
  };
}
