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

/**
 * TLS toward a next hop, Postfix's smtp_tls_security_level: none (never), may (when offered,
 * certificate unchecked), encrypt (always, unchecked), verify (a trusted CA and the host name),
 * dane (RFC 7672 TLSA records, `may` without DNSSEC), sts (the domain's RFC 8461 MTA-STS policy).
 */
export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify' | 'dane' | 'sts';

export type RouteTarget =
  | { kind: 'mx'; tls: TlsLevel }
  /** dane and sts are levels of MX delivery: an smtp:// route has the others. */
  | { kind: 'smtp'; host: string; port: number; tls: Exclude<TlsLevel, 'dane' | 'sts'> }
  /** Always TLS; `verify` also checks the certificate against the CAs and the host name. */
  | { kind: 'smtps'; host: string; port: number; tls?: 'verify' }
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
  /**
   * MAIL FROM gets 452 4.3.1 while the spool's file system has less than this free (bytes), or
   * less than this plus the SIZE= the client declared. 0: no check (writes are checked anyway).
   */
  min_free_space: number;
  max_recipients: number;
  /** Close a client that sends nothing for this long (ms). */
  idle_timeout: number;
  /**
   * Concurrent client connections per listener, counted separately for trusted_networks and for
   * everyone else, so outsiders can never take the slots of the internal mail server.
   */
  max_connections: number;
  /** Concurrent connections per listener from one client outside trusted_networks (IPv6: per /64). */
  max_connections_per_client: number;
  /** The whole DATA phase of one message, however slowly it arrives (ms). */
  data_timeout: number;
  /** The whole session of a client outside trusted_networks (ms); a message in DATA may finish. */
  session_timeout: number;
  /** Bare CR or LF in DATA: reject (550 5.5.2, the default) or normalise to CRLF for trusted clients. */
  bare_newline: 'reject' | 'normalize_trusted';
  /** Look up the client's PTR name for the Received header. Off by default (slow, spoofable). */
  reverse_dns: boolean;
  /** Extra text in the 220 greeting. */
  banner?: string;
  /**
   * CHECKPOINT/RESTART (RFC 1845): MAIL FROM … TRANSID=, and a transaction cut off in DATA/BDAT
   * resumes from the last checkpointed offset. Experimental and rare: off by default.
   */
  checkpoint: boolean;
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
  /** An idle cached next-hop connection is closed after this long (ms; 0: not kept). */
  connection_cache_time: number;
  /** Admin's reply classification, tried before the built-in table. */
  reply_rules: ReplyRule[];
  /** Addresses that reach this gateway from outside (Postfix's proxy_interfaces): an MX there is a loop. */
  own_addresses: string[];
  /** The TLS level of routes that name none. */
  tls: TlsLevel;
  /** Absolute path of a PEM bundle of CAs trusted besides the system's, for verify and sts. */
  tls_ca_file?: string;
}

/** A next hop's reply that means something other than its code says (e.g. a 5xx "try again later"). */
export interface ReplyRule {
  /** Regular expression source, matched case-insensitively against the whole reply line. */
  match: string;
  action: 'defer' | 'bounce';
  reason?: string;
}

export interface CaConfig {
  /** CRL distribution point URL written into issued certificates. */
  crl_url?: string;
  /** Key type of issued certificates (RSA-2048 has the widest client support). */
  key_type: 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ec-p256' | 'ec-p384';
  /** Validity of issued certificates (ms). */
  validity: number;
}

/** Revocation checking of the certificates used to encrypt and of signers (pki/ RevocationChecker). */
export interface RevocationConfig {
  /** What an unknown status means, per direction: soft = usable and flagged, hard = not usable. */
  mode: { inbound: 'soft' | 'hard'; outbound: 'soft' | 'hard' };
  /** Per OCSP or CRL request (ms). */
  timeout: number;
  ocsp: boolean;
  crl: boolean;
  /** Answers are reused at most this long (ms), even when their nextUpdate is later; and this long when they have none. */
  cache_ttl: number;
}

export interface SmimeConfig {
  /** Content encryption when the recipient's capabilities are unknown. */
  cipher: 'aes-256-cbc' | 'aes-128-cbc' | 'aes-256-gcm' | 'aes-128-gcm';
  /** AES-256-GCM (AuthEnvelopedData) for recipients whose signed mail advertised it. */
  prefer_gcm: boolean;
  /** RSA key transport: PKCS#1 v1.5 (what all clients read) or RSA-OAEP. */
  rsa_padding: 'pkcs1' | 'oaep';
  sign_hash: 'sha-256' | 'sha-384' | 'sha-512';
  /** multipart/signed (readable without S/MIME) or opaque signed-data. */
  signature: 'detached' | 'opaque';
  /** Add the sender's own certificate as a recipient, so the sender can read sent mail. */
  encrypt_to_sender: boolean;
  /** Accept SHA-1 signatures as valid (off: SHA-1 and MD5 signatures are invalid). */
  allow_sha1: boolean;
  /** Store the certificates of valid signatures on incoming mail (RFC 8550). */
  auto_import: boolean;
  /** Neutralise remote references in the HTML of decrypted content that neither AES-GCM nor a valid signature authenticates. */
  strip_remote_content: boolean;
}

/** Header protection (RFC 9788) of outgoing signed and encrypted mail; incoming mail is always read with it. */
export interface HeaderProtectionConfig {
  /** obscure: hcp_baseline (Subject "[...]" outside encrypted mail); copy: the outer header stays; off: no protected header section. */
  mode: 'obscure' | 'copy' | 'off';
  /** Encrypted mail whose Subject is hidden shows it at the top of its text for readers without RFC 9788. */
  legacy_display: boolean;
}

export type KekConfig =
  | { file: string; passphrase_env?: undefined }
  | { passphrase_env: string; file?: undefined }
  | { pkcs11: { module: string; token: string; pin_env: string; key_label: string } };

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}

/** One HKP key server and the addresses it may be asked about. */
export interface HkpServerConfig {
  /** http(s) base URL (hkp://host became http://host:11371, hkps://host https://host). */
  url: string;
  /** "partner.example", "*.example.org", "*@partner.example", "*": only matching addresses are looked up here. */
  patterns: string[];
  /** Per look-up (ms). */
  timeout: number;
}

/** OpenPGP key discovery for recipients without a key in the store (directory/). */
export interface DiscoveryConfig {
  wkd: {
    /** Domain patterns whose Web Key Directory is asked ("*": every external domain); empty: off. */
    domains: string[];
    /** Per look-up, both WKD methods together (ms). */
    timeout: number;
  };
  /** Asked in order, after WKD; empty: off. */
  hkp: { servers: HkpServerConfig[] };
  /** A found key is remembered this long (ms) per process. */
  cache_ttl: number;
  /** "No key" (or a failed look-up) is remembered this long (ms), so a dead server costs one time-out, not one per mail. */
  negative_ttl: number;
  /** Largest answer read from a directory (bytes). */
  max_key_size: number;
  /** Autocrypt Level 1: keys from incoming Autocrypt headers are imported, ours added to outgoing mail. */
  autocrypt: boolean;
}

/** The portal role: HTTP(S) for WKD (our users' public keys) and health. */
export interface PortalConfig {
  /** Where it listens; empty: the portal does not run. */
  listen: ListenAddress[];
  /** Absolute paths; HTTPS when set (WKD clients require https in front, here or at a proxy). */
  tls?: { cert: string; key: string };
  /** Serve /.well-known/openpgpkey/ for internal_domains. */
  wkd: boolean;
  /** The hash → address index is rebuilt from the keystore after this long (ms). */
  index_ttl: number;
  /** Base URL the Internet reaches the portal at (no trailing slash); the PDF's Reply button links below it. */
  url?: string;
  /** The pages' header: always set (portal.organisation, pdf.organisation or the domain of hostname). */
  organisation: string;
  /** Absolute path of a PNG, JPEG or SVG logo for the pages' header (portal.logo, else pdf.logo). */
  logo?: string;
  /** Bytes of a reply's attachments, together, and how many. */
  max_upload: number;
  max_uploads: number;
  /** A session ends after this long idle, and after session_max (ms) in any case. */
  session_idle: number;
  session_max: number;
  /** Failed log-ins before back-off, per account and per client address; the back-off, doubling to max_backoff (ms). */
  lockout: { account: number; client: number; backoff: number; max_backoff: number };
}

/** The admin role (src/admin/): console and API for the people who run the gateway. */
export interface AdminConfig {
  /** Where it listens; empty: the admin role does not run. */
  listen: ListenAddress[];
  /** Absolute paths; HTTPS when set. Without it the role listens on loopback only. */
  tls?: { cert: string; key: string };
  /** A session ends after this long idle, and after session_max (ms) in any case. */
  session_idle: number;
  session_max: number;
  /** As the portal's sign-in lock-out. */
  lockout: PortalConfig['lockout'];
  /** CIDRs that may scrape /metrics without a session. */
  metrics_from: string[];
}

/** PDF mail (src/pdfmail/, worker/methods/pdf.ts). */
export interface PdfConfig {
  cipher: 'aes-256' | 'aes-128';
  password_scope: 'pair' | 'recipient';
  /** How long a Reply link works (ms). */
  reply_validity: number;
  organisation: string;
  /** Absolute path of a PNG or JPEG, checked readable at load. */
  logo?: string;
  cover_text: string;
  /** Absent: a default that speaks of the Reply button where there is one (config/pdf.ts). */
  instructions?: string;
  reply_label: string;
  /** Text of the carrying mail ({sender}, {organisation} filled in), and optional HTML beside it. */
  /** Absent: as instructions. */
  message_text?: string;
  message_html?: string;
  /** Absolute font paths in fallback order; absent: the defaults the system has (pdfmail/fonts.ts). */
  fonts?: string[];
  max_attachments: number;
}

/** Webmail (worker/methods/webmail.ts; the pages are the portal's). */
export interface WebmailConfig {
  /** ms: older mail is removed, and accounts without log-in or mail for as long. */
  retention: number;
  /** The recipient's notice: templates with {sender}, {organisation}, {url} (config/webmail.ts has the defaults). */
  notice_subject: string;
  notice_text: string;
  /** The notice's From: address (canonical); its display name is portal.organisation. */
  notice_from: string;
  /** Bytes; past them a message is held with the reason. Absent: no limit of its own. */
  max_message_size?: number;
  max_mailbox?: number;
}

/** One LDAP server (or replica) of ldap.servers; asked in order, see directory/ldap.ts. */
export interface LdapServerConfig {
  /** ldap://host[:port] or ldaps://host[:port] (proto, host and port only). */
  url: string;
  /** Upgrade an ldap:// connection with StartTLS before binding (never with ldaps://). */
  starttls: boolean;
  /** TLS of ldaps:// and StartTLS: extra trust anchors (absolute path, PEM) and whether to verify. */
  tls: { ca_file?: string; reject_unauthorized: boolean };
  /** Simple bind as this DN; absent: anonymous. */
  bind_dn?: string;
  /** Where the bind password is read (never the config file itself); exactly one with bind_dn. */
  password_env?: string;
  /** Absolute path; read at each (re)connect, so a rotated secret needs no reload. */
  password_file?: string;
  base_dn: string;
  scope: 'base' | 'one' | 'sub';
  /** Bounds a whole look-up on this server: connect, StartTLS, bind and every search (ms). */
  timeout: number;
  /** RFC 4515 filter with {address}, {local}, {domain} placeholders (values escaped). */
  user_filter: string;
  attributes: {
    /** The entry's mail attribute (read for attributesOf, e.g. policy on a user's primary address). */
    mail: string;
    /** Attributes holding DER certificates (userCertificate;binary) or PKCS#7 bundles (userSMIMECertificate). */
    certificate: string[];
    /** Attribute listing the DNs of the entry's groups (memberOf overlay, AD); absent: not read. */
    member_of?: string;
    /** Further attributes exposed to policy conditions (lower-cased names). */
    policy: string[];
  };
  /** Groups found by a search (groupOfNames member=...), in addition to member_of. */
  group_search?: { base: string; scope: 'base' | 'one' | 'sub'; filter: string; name: string };
}

/** Certificates, groups and attributes from LDAP directories (directory/ldap.ts); off when no servers. */
export interface LdapConfig {
  servers: LdapServerConfig[];
  /** A found entry is remembered this long (ms) per process. */
  cache_ttl: number;
  /** "No entry" is remembered this long (ms). */
  negative_ttl: number;
  /** After a failure a server is skipped (fails at once) for this long (ms): one time-out per period, not one per mail. */
  retry_after: number;
  /** The directory cannot be asked: defer the message (fail closed) or proceed without its facts. */
  on_failure: 'defer' | 'proceed';
}

/** Time and size budgets of one message in a worker (core/limits.ts has the fixed ones). */
export interface WorkerConfig {
  /** ms a message's processing may take before it is deferred (and a worker stuck that long is restarted). */
  transform_timeout: number;
  /** ms before a message the worker deferred (store unavailable, a temporary failure) is tried again. */
  retry: number;
  /** Bytes OpenPGP data may inflate to; default 2 × smtp.max_message_size. */
  max_decompressed_size: number;
}

export interface PostgresLogin {
  url: string;
  password_env?: string;
  /** Absolute path. */
  password_file?: string;
}

export interface KeystoreConfig {
  /** Absolute path (unused when postgres is set). */
  sqlite: string;
  /** A cluster's shared store (issue 19). */
  postgres?: PostgresLogin & { pool: number; portal?: PostgresLogin };
}

export interface ClusterConfig {
  /** This node's name (default: hostname). */
  node: string;
  heartbeat: number;
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
  keystore: KeystoreConfig;
  cluster: ClusterConfig;
  /** The internal CA (`postern ca init|issue`, and keys generated by policy). */
  ca: CaConfig;
  smime: SmimeConfig;
  header_protection: HeaderProtectionConfig;
  revocation: RevocationConfig;
  kek: KekConfig;
  discovery: DiscoveryConfig;
  portal: PortalConfig;
  admin: AdminConfig;
  pdf: PdfConfig;
  webmail: WebmailConfig;
  /** LDAP directories: recipients' certificates, groups and attributes for policy. */
  ldap: LdapConfig;
  /** Absolute path of the policy file, and its parsed content (validated by policy/, issue 5). */
  policy: { file: string; document: unknown };
  /** Number of worker processes; defaults to the number of CPU cores. */
  workers: number;
  worker: WorkerConfig;
  /** The account smtpd and the portal run as when the supervisor starts as root (Postfix's mail_owner). */
  user: string;
  /** Environment of every role: NAME (the supervisor's value) or NAME=VALUE; KEK variables never here. */
  import_environment: string[];
  log: LogConfig;
}
