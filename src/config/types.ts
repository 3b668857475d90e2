/**
 * The validated, frozen configuration every role receives. Paths are absolute (resolved against
 * the directory of the file that named them); sizes are bytes; durations are milliseconds.
 */

/** One entry of relay.routes, in file order (first match wins). */
export interface Route {
  /** "example.com" (exact), "*.example.com" (subdomains only) or "*" (anything). */
  pattern: string;
  target: RouteTarget;
}

export type RouteTarget =
  | { kind: 'mx'; tls: 'opportunistic' | 'required' | 'none' }
  | { kind: 'smtp'; host: string; port: number; tls: 'opportunistic' | 'required' | 'none' }
  | { kind: 'smtps'; host: string; port: number }
  | { kind: 'maildir'; path: string };

export interface ListenAddress {
  host: string;
  port: number;
}

export interface SmtpConfig {
  listen: ListenAddress[];
  /** Absolute paths; STARTTLS is offered only when set. */
  tls?: { cert: string; key: string };
  max_message_size: number;
  max_recipients: number;
  /** Close a client that sends nothing for this long (ms). */
  idle_timeout: number;
  /** Concurrent client connections per listener. */
  max_connections: number;
  /** Bare CR or LF in DATA: reject (550 5.5.2, the default) or normalise to CRLF for trusted clients. */
  bare_newline: 'reject' | 'normalize_trusted';
  /** Look up the client's PTR name for the Received header. Off by default (slow, spoofable). */
  reverse_dns: boolean;
  /** Extra text in the 220 greeting. */
  banner?: string;
}

export interface RelayConfig {
  routes: Route[];
  /** Delays between delivery attempts (ms); the last repeats. */
  retry: number[];
  /** After this long (ms) in the queue a message bounces. */
  max_queue_lifetime: number;
  /** Concurrent deliveries of the relay role. */
  concurrency: number;
  /** A delay notice (to NOTIFY=DELAY recipients) after this long in the queue (ms). */
  delay_warning: number;
  /** Bounces return the full message up to this size (bytes), only its headers above. */
  bounce_size_limit: number;
  /** Admin's reply classification, tried before the built-in table. */
  reply_rules: ReplyRule[];
}

/** A next hop's reply that means something other than its code says (e.g. a 5xx "try again later"). */
export interface ReplyRule {
  /** Regular expression source, matched case-insensitively against the whole reply line. */
  match: string;
  action: 'defer' | 'bounce';
  reason?: string;
}

export type KekConfig =
  | { file: string; passphrase_env?: undefined }
  | { passphrase_env: string; file?: undefined }
  | { pkcs11: { module: string; token: string; pin_env: string; key_label: string } };

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}

export interface Config {
  /** Absolute path of the postern.yaml this came from. */
  file: string;
  hostname: string;
  /** Absolute path. */
  data_dir: string;
  /** Lower-case domain names; "to them" is inbound. */
  internal_domains: string[];
  /** CIDR strings, as written. */
  trusted_networks: string[];
  smtp: SmtpConfig;
  relay: RelayConfig;
  keystore: { sqlite: string };
  kek: KekConfig;
  /** Absolute path of the policy file, and its parsed content (validated by policy/, issue 5). */
  policy: { file: string; document: unknown };
  /** Number of worker processes; defaults to the number of CPU cores. */
  workers: number;
  log: LogConfig;
}
