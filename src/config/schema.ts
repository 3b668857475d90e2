/**
 * The schema of postern.yaml as the admin writes it (before paths are resolved). Unknown keys are
 * errors, not silently ignored: a mistyped "max_mesage_size" must not leave the default in force.
 */
import { isIP } from 'node:net';
import { hostname as osHostname, availableParallelism } from 'node:os';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { canonicalDomain } from '../core/address.js';
import { parseDuration, parseSize } from './units.js';

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === null) ctx.addIssue({ code: 'custom', message: `${show(v)} — expected a size like 50MB` });
  return n ?? 0;
});

const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === null) ctx.addIssue({ code: 'custom', message: `${show(v)} — expected a duration like 30s, 5m, 4h or 5d` });
  return n ?? 0;
});

/** A time limit of 0 would fire at once: a typo, not a wish to disable it. */
const atLeastOneSecond = duration.refine((n) => n >= 1000, { message: 'expected a duration of at least 1s' });

/**
 * Failed sign-ins (the portal's pages, the admin console): after `account` failures for one
 * account (or `client` from one address) each further try waits `backoff`, doubling up to
 * `max_backoff`; a success clears the account's count.
 */
const lockout = z
  .strictObject({
    account: z.number().int().min(1).default(5),
    client: z.number().int().min(1).default(20),
    backoff: atLeastOneSecond.default(60_000),
    max_backoff: atLeastOneSecond.default(3_600_000),
  })
  .prefault({});

/**
 * A PostgreSQL login: the URL names host, port, database and user (and TLS by sslmode); the
 * password comes from an environment variable or a file, so the config can be shown and kept
 * under version control without it.
 */
const pgLogin = {
  url: z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'expected a URL like postgres://postern@db.example.org:5432/postern'),
  password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name like POSTERN_PG_PASSWORD').optional(),
  password_file: z.string().optional(),
};
const postgres = z
  .strictObject({
    ...pgLogin,
    // Connections per process at most (each worker, the relay, the portal … has its own pool).
    pool: z.number().int().min(1).max(100).default(4),
    // The portal's own login (a role granted only the portal schema: it faces the Internet);
    // without it the portal uses the keystore's login.
    portal: z.strictObject(pgLogin).optional(),
  })
  .refine((p) => !(p.password_env && p.password_file), { message: 'give password_env or password_file, not both' })
  .refine((p) => !/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(p.url), { message: 'the URL holds a password: give it by password_env or password_file instead' });

const positiveInt = (what: string) =>
  z.number().int().refine((n) => n >= 1, { message: `expected ${what} of at least 1` });

/**
 * An RFC 1035 host name in canonical form (A-label per UTS #46, lower case; see core/address.ts):
 * config domains are compared with mail addresses, so they are spelt the same way.
 */
export function asciiDomain(name: string): string | null {
  return canonicalDomain(name);
}

const domain = z.string().transform((v, ctx) => {
  const a = asciiDomain(v);
  if (!a) ctx.addIssue({ code: 'custom', message: `${show(v)} — expected a domain name like example.com` });
  return a ?? '';
});

const network = z.string().refine(
  (v) => {
    const s = v.trim();
    return s.includes('/') ? ipaddr.isValidCIDR(s) : ipaddr.isValid(s);
  },
  { error: (iss) => `${show(iss.input)} — expected an IP address or a network like 10.0.0.0/8 or 2001:db8::/32` },
);

/** "127.0.0.1:2525", "[::1]:2525", "*:25" (all IPv4 interfaces). */
const listenAddress = z.string().transform((v, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v.trim());
  const host = m ? (m[1] ?? m[2]!) : '';
  const port = m ? Number(m[3]) : -1;
  const okHost = host === '*' || isIP(host) !== 0 || asciiDomain(host) !== null;
  if (!m || !okHost || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `${show(v)} — expected host:port like 127.0.0.1:25, [::1]:25 or *:25` });
    return { host: '', port: 0 };
  }
  return { host: host === '*' ? '0.0.0.0' : host, port };
});

/**
 * The TLS security levels toward next hops, as Postfix names them (smtp_tls_security_level), and
 * the names routes had before issue 20 (opportunistic = may, required = encrypt), still accepted.
 */
export const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify', 'dane', 'sts'] as const;
const tlsMode = z.enum([...TLS_LEVELS, 'opportunistic', 'required'], {
  error: (iss) => `${show(iss.input)} — expected a TLS level: none, may, encrypt, verify, dane or sts (opportunistic and required are the old names of may and encrypt)`,
});

/** The raw route target: "mx", "smtp://host:port", "smtps://host:port", "maildir:PATH", or { via, tls }. */
export type RawRouteTarget = { via: string; tls?: z.infer<typeof tlsMode> };
export type RawTlsLevel = z.infer<typeof tlsMode>;

const routeTarget = z.union([
  z.string().transform((via): RawRouteTarget => ({ via })),
  z.strictObject({ via: z.string(), tls: tlsMode.optional() }),
]);

const routePattern = z.string().refine(
  (p) => p === '*' || asciiDomain(p.startsWith('*.') ? p.slice(2) : p) !== null,
  { error: (iss) => `route ${show(iss.input)} — expected a domain, "*.domain" or "*"` },
);

/** relay.reply_rules: a next hop's reply matched by a regular expression, and what it really means. */
const replyRule = z.strictObject({
  match: z.string().refine(
    (re) => {
      try {
        new RegExp(re, 'i');
        return true;
      } catch {
        return false;
      }
    },
    { error: (iss) => `${show(iss.input)} — expected a regular expression` },
  ),
  action: z.enum(['defer', 'bounce']),
  reason: z.string().optional(),
});

/**
 * A directory search pattern: "partner.example", "*.example.org" (subdomains), "*" (anything), or
 * with a local part, "*@partner.example", "sales-*@example.org" (`*` is any run of characters).
 */
const addressPattern = z.string().refine(
  (v) => {
    const s = v.trim();
    if (s === '*') return true;
    const at = s.lastIndexOf('@');
    if (at >= 0 && !/^[^\s@<>"\\/?#%]+$/.test(s.slice(0, at))) return false;
    const d = at >= 0 ? s.slice(at + 1) : s;
    return d === '*' || asciiDomain(d.startsWith('*.') ? d.slice(2) : d) !== null;
  },
  { error: (iss) => `${show(iss.input)} — expected a pattern like partner.example, *.example.org, *@partner.example or *` },
);

/** hkp://host[:port] (port 11371), hkps://host[:port], http(s)://host[:port][/path] → an http(s) base URL. */
const keyServerUrl = z.string().transform((v, ctx) => {
  let u: URL | null = null;
  try {
    u = new URL(v.trim());
  } catch {
    /* reported below */
  }
  if (u && (u.protocol === 'hkp:' || u.protocol === 'hkps:') && u.host) {
    const web: URL = new URL(`${u.protocol === 'hkp:' ? 'http' : 'https'}://${u.host}${u.pathname}`);
    if (u.protocol === 'hkp:' && !u.port) web.port = '11371';
    u = web;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) {
    ctx.addIssue({ code: 'custom', message: `${show(v)} — expected a key server URL like hkps://keys.openpgp.org or http://keys.partner.example:11371` });
    return '';
  }
  return u.href.replace(/\/+$/, '');
});

const kek = z.union([
  z.strictObject({ file: z.string() }),
  z.strictObject({ passphrase_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
  z.strictObject({
    pkcs11: z.strictObject({ module: z.string(), token: z.string(), pin_env: z.string(), key_label: z.string() }),
  }),
]);

/** ldap://host[:port] or ldaps://host[:port]: ldapts takes nothing else (no DN, no query). */
const ldapUrl = z.string().transform((v, ctx) => {
  let u: URL | null = null;
  try {
    u = new URL(v.trim());
  } catch {
    /* reported below */
  }
  if (!u || (u.protocol !== 'ldap:' && u.protocol !== 'ldaps:') || !u.hostname || (u.pathname && u.pathname !== '/') || u.search || u.hash || u.username || u.password) {
    ctx.addIssue({ code: 'custom', message: `${show(v)} — expected ldap://host[:port] or ldaps://host[:port]` });
    return '';
  }
  return `${u.protocol}//${u.host}`;
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
const ldapScope = z.enum(['base', 'one', 'sub']);

const ldapServer = z
  .strictObject({
    url: ldapUrl,
    starttls: z.boolean().default(false),
    tls: z.strictObject({ ca_file: z.string().optional(), reject_unauthorized: z.boolean().default(true) }).prefault({}),
    bind_dn: z.string().min(1).optional(),
    password_env: envName.optional(),
    password_file: z.string().min(1).optional(),
    base_dn: z.string().min(1, 'expected the DN to search under, e.g. ou=people,dc=example,dc=com'),
    scope: ldapScope.default('sub'),
    timeout: duration.default(5_000),
    // mailAlternateAddress (the qmail/Postfix schemas): aliases find their owner's entry too.
    user_filter: z.string().default('(|(mail={address})(mailAlternateAddress={address}))'),
    attributes: z
      .strictObject({
        mail: z.string().min(1).default('mail'),
        certificate: z.array(z.string().min(1)).default(['userCertificate;binary', 'userSMIMECertificate']),
        // Empty string or null: the directory has no memberOf (use group_search).
        member_of: z.union([z.string(), z.null()]).default('memberOf'),
        policy: z.array(z.string().min(1)).default(['departmentNumber', 'ou', 'title', 'employeeType']),
      })
      .prefault({}),
    group_search: z
      .strictObject({
        base: z.string().min(1),
        scope: ldapScope.default('sub'),
        filter: z.string().default('(member={dn})'),
        name: z.string().min(1).default('cn'),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.password_env && s.password_file) ctx.addIssue({ code: 'custom', path: ['password_file'], message: 'give password_env or password_file, not both' });
    if (s.bind_dn && !s.password_env && !s.password_file) ctx.addIssue({ code: 'custom', path: ['bind_dn'], message: 'bind_dn needs password_env or password_file' });
    if (!s.bind_dn && (s.password_env || s.password_file)) ctx.addIssue({ code: 'custom', path: ['bind_dn'], message: 'a password is configured but no bind_dn to use it with' });
    if (s.starttls && s.url.startsWith('ldaps:')) ctx.addIssue({ code: 'custom', path: ['starttls'], message: 'ldaps:// is TLS already; starttls applies to ldap:// only' });
  });

export const rawConfigSchema = z.strictObject({
  hostname: domain.default(osHostname()),
  data_dir: z.string().default('../var'),
  internal_domains: z.array(domain).default([]),
  trusted_networks: z.array(network).default(['127.0.0.0/8', '::1/128']),
  smtp: z
    .strictObject({
      listen: z.array(listenAddress).min(1, 'expected at least one host:port').default([{ host: '127.0.0.1', port: 2525 }]),
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
      max_message_size: size.default(50 * 1024 * 1024),
      // Postfix's queue_minfree; the default (load.ts) depends on max_message_size. 0: no check.
      min_free_space: size.optional(),
      max_recipients: positiveInt('a number').default(100),
      // RFC 5321 4.5.3.2.7: a server should wait at least 5 minutes for the next command.
      idle_timeout: duration.default(300_000),
      max_connections: positiveInt('a number').default(100),
      // Postfix's smtpd_client_connection_count_limit (50 there): one outside address may hold
      // at most a tenth of the default max_connections.
      max_connections_per_client: positiveInt('a number').default(10),
      data_timeout: atLeastOneSecond.default(600_000),
      session_timeout: atLeastOneSecond.default(1_800_000),
      bare_newline: z.enum(['reject', 'normalize_trusted']).default('reject'),
      reverse_dns: z.boolean().default(false),
      banner: z.string().optional(),
      // RFC 1845 CHECKPOINT/RESTART: experimental, hardly any client speaks it (issue 20).
      checkpoint: z.boolean().default(false),
    })
    .prefault({}),
  relay: z
    .strictObject({
      routes: z.record(routePattern, routeTarget).default({ '*': { via: 'mx' } }),
      retry: z.array(duration).min(1, 'expected at least one delay').default([60_000, 300_000, 900_000, 3_600_000, 14_400_000]),
      max_queue_lifetime: duration.default(5 * 86_400_000),
      concurrency: positiveInt('a number').default(20),
      // RFC 3461 NOTIFY=DELAY: a delay notice once a message has waited this long (sendmail's 4h).
      delay_warning: duration.default(4 * 3_600_000),
      // Postfix's bounce_size_limit: a bounce returns the whole message only up to this size.
      bounce_size_limit: size.default(50 * 1024),
      // Postfix's smtp_connection_cache_time_limit: an idle next-hop connection is closed (QUIT)
      // after this long. At most 5m: a server closes an idle session itself then (RFC 5321
      // 4.5.3.2.7), and every idle connection we keep holds one of its session slots. 0: none kept.
      connection_cache_time: duration
        .refine((n) => n <= 300_000, { message: 'expected a duration of at most 5m (an idle connection holds one of the next hop\'s session slots)' })
        .default(2_000),
      reply_rules: z.array(replyRule).default([]),
      // Postfix's proxy_interfaces: addresses that reach this gateway from outside (NAT, a load
      // balancer, a front MTA). An MX resolving to one of them, or to a listen address, is a loop.
      own_addresses: z.array(z.string().refine((v) => isIP(v.trim()) !== 0, { error: (iss) => `${show(iss.input)} — expected an IP address` })).default([]),
      // The TLS level of every route that names none (Postfix's smtp_tls_security_level).
      tls: tlsMode.default('may'),
      // PEM bundle of CAs trusted for verify/sts besides the system's (Postfix's smtp_tls_CAfile).
      tls_ca_file: z.string().optional(),
    })
    .prefault({}),
  keystore: z
    .strictObject({
      sqlite: z.string().default('postern.db'),
      // A cluster (issue 19): every node names the same PostgreSQL database; sqlite is then unused.
      postgres: postgres.optional(),
    })
    .prefault({}),
  cluster: z
    .strictObject({
      // This node's name in `postern cluster status` and the heartbeat table: the host name by default.
      node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'expected a node name like mx1 (letters, digits, . _ : -)').optional(),
      // How often a node writes its heartbeat, and checks for changes it may have missed (the
      // safety net under LISTEN/NOTIFY).
      heartbeat: atLeastOneSecond.default(10_000),
    })
    .prefault({}),
  ca: z
    .strictObject({
      // Written into every certificate the internal CA issues; the portal will publish the CRL there.
      crl_url: z.url({ protocol: /^https?$/, error: (iss) => `${show(iss.input)} — expected an http(s) URL` }).optional(),
      key_type: z.enum(['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384']).default('rsa-2048'),
      validity: duration.default(730 * 86_400_000),
    })
    .prefault({}),
  revocation: z
    .strictObject({
      // soft: an unknown status (responder down, no answer) is allowed and flagged; hard: not usable.
      // Outbound soft too: refusing a recipient's certificate for want of an answer would send the
      // mail in plaintext under an opportunistic policy, which is worse than encrypting to it.
      mode: z
        .strictObject({ inbound: z.enum(['soft', 'hard']).default('soft'), outbound: z.enum(['soft', 'hard']).default('soft') })
        .prefault({}),
      timeout: duration.default(5_000),
      ocsp: z.boolean().default(true),
      crl: z.boolean().default(true),
      cache_ttl: duration.default(3_600_000),
    })
    .prefault({}),
  smime: z
    .strictObject({
      // What is used when a recipient's capabilities are unknown: AES-256-CBC is what every client
      // since Outlook 2010 and Thunderbird 3 reads; GCM only where their signed mail advertised it.
      cipher: z.enum(['aes-256-cbc', 'aes-128-cbc', 'aes-256-gcm', 'aes-128-gcm']).default('aes-256-cbc'),
      prefer_gcm: z.boolean().default(true),
      rsa_padding: z.enum(['pkcs1', 'oaep']).default('pkcs1'),
      sign_hash: z.enum(['sha-256', 'sha-384', 'sha-512']).default('sha-256'),
      signature: z.enum(['detached', 'opaque']).default('detached'),
      encrypt_to_sender: z.boolean().default(false),
      allow_sha1: z.boolean().default(false),
      auto_import: z.boolean().default(true),
      // EFAIL (CBC gadgets): no automatic remote loads in HTML that decrypted unauthenticated and unsigned.
      strip_remote_content: z.boolean().default(true),
    })
    .prefault({}),
  // RFC 9788 for signed and encrypted mail, S/MIME and OpenPGP alike; `header_protection: copy`
  // is short for { mode: copy }. obscure: an encrypted message's Subject is "[...]" outside.
  header_protection: z
    .preprocess(
      (v) => (typeof v === 'string' ? { mode: v } : v),
      z.strictObject({
        mode: z.enum(['obscure', 'copy', 'off']).default('obscure'),
        // Opt-in, as RFC 9788 has it "when configured": it changes the text the recipient reads
        // (and, on large messages, costs a rewrite of the body).
        legacy_display: z.boolean().default(false),
      }),
    )
    .prefault({}),
  discovery: z
    .strictObject({
      // Off unless domains are named: every look-up tells the domain whom we write to.
      wkd: z
        .strictObject({
          domains: z.union([z.literal('*').transform(() => ['*']), z.array(addressPattern)]).default([]),
          timeout: duration.default(5_000),
        })
        .prefault({}),
      hkp: z
        .strictObject({
          servers: z
            .array(
              z.strictObject({
                url: keyServerUrl,
                patterns: z.array(addressPattern).min(1, 'expected at least one pattern (which addresses this server may hold)'),
                timeout: duration.default(5_000),
              }),
            )
            .default([]),
        })
        .prefault({}),
      cache_ttl: duration.default(3_600_000),
      negative_ttl: duration.default(600_000),
      max_key_size: size.default(512 * 1024),
      // Autocrypt Level 1: import keys from incoming headers, add ours to outgoing mail.
      autocrypt: z.boolean().default(true),
    })
    .prefault({}),
  portal: z
    .strictObject({
      // Empty: the portal role does not run.
      listen: z.array(listenAddress).default([]),
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
      wkd: z.boolean().default(true),
      index_ttl: duration.default(60_000),
      // The portal's address as the Internet reaches it (the PDF's Reply button links here); absent:
      // PDF mail has no Reply button.
      url: z.url({ protocol: /^https?$/, error: (iss) => `${show(iss.input)} — expected an http(s) URL like https://mail.example.org` }).optional(),
      // The pages' header: the organisation's name (default: pdf.organisation, else the domain of
      // `hostname`) and a logo (PNG, JPEG or SVG, relative to this file; default: pdf.logo).
      organisation: z.string().min(1).max(200).optional(),
      logo: z.string().optional(),
      // A reply's attachments, all together, and how many.
      max_upload: size.default(25 * 1024 * 1024),
      max_uploads: z.number().int().min(0).max(100).default(10),
      // A session ends after this long without a request, and after session_max in any case.
      session_idle: atLeastOneSecond.default(15 * 60_000),
      session_max: atLeastOneSecond.default(8 * 3_600_000),
      // Failed log-ins: after `account` failures for one account (or `client` from one address)
      // each further try waits `backoff`, doubling up to `max_backoff`; a success clears the count.
      lockout,
    })
    .prefault({}),
  // The admin console and its API (issue 18): faces the inside only, may unseal (like the worker).
  admin: z
    .strictObject({
      // Empty: the admin role does not run.
      listen: z.array(listenAddress).default([{ host: '127.0.0.1', port: 8443 }]),
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
      // A session ends after this long without a request, and after session_max in any case.
      session_idle: atLeastOneSecond.default(15 * 60_000),
      session_max: atLeastOneSecond.default(8 * 3_600_000),
      // Failed log-ins, as for the portal: per account, per client address, doubling back-off.
      lockout,
      // Client addresses that may read /metrics without signing in (a Prometheus server).
      metrics_from: z.array(network).default(['127.0.0.0/8', '::1/128']),
    })
    .prefault({}),
  // PDF mail (issue 16): the mail and its attachments in a password-protected PDF, for recipients
  // without keys (the method `pdf` in the policy's encrypt action).
  pdf: z
    .strictObject({
      // AES-256 (PDF 2.0, R6) opens in every reader since Acrobat 9 (2008); aes-128 (R4) for older ones.
      cipher: z.enum(['aes-256', 'aes-128']).default('aes-256'),
      // pair: one password per sender and recipient; recipient: one per recipient for all senders.
      password_scope: z.enum(['pair', 'recipient']).default('pair'),
      // The Reply button's link works this long after the mail was sent.
      reply_validity: atLeastOneSecond.default(90 * 86_400_000),
      // The cover page: the organisation's name (default: the domain of `hostname`), a logo
      // (PNG or JPEG, relative to this file) and a text.
      organisation: z.string().max(200).optional(),
      logo: z.string().optional(),
      cover_text: z.string().max(4000).optional(),
      // The last page, above the Reply button.
      instructions: z.string().max(4000).optional(),
      reply_label: z.string().min(1).max(40).default('Reply'),
      // The text of the mail that carries the PDF ({sender}, {organisation} are filled in); html
      // optional beside it.
      message_text: z.string().max(10_000).optional(),
      message_html: z.string().max(50_000).optional(),
      // Fonts to embed, in fallback order (TrueType/OpenType files; default: DejaVu Sans, then
      // Droid Sans Fallback for CJK, where the system has them).
      fonts: z.array(z.string()).optional(),
      // Past these the message is held with the reason rather than half put into a PDF.
      max_attachments: positiveInt('a number of attachments').default(1000),
    })
    .prefault({}),
  // Webmail (issue 17): for recipients without keys, the mail waits in a mailbox on the portal,
  // sealed to the account's key (the method `webmail` in the policy's encrypt action); the
  // recipient gets a notice with the link.
  webmail: z
    .strictObject({
      // Mail older than this goes, and so do accounts nobody used (no log-in, no mail) for as long.
      retention: duration.refine((n) => n >= 3_600_000, { message: 'expected a duration of at least 1h' }).default(90 * 86_400_000),
      // The notice to the recipient: {sender}, {organisation} and {url} (the mailbox's link) are
      // filled in; never the message's subject or text. From: the organisation at postmaster@hostname
      // unless notice_from names another address.
      notice_subject: z.string().min(1).max(200).optional(),
      notice_text: z.string().min(1).max(10_000).optional(),
      notice_from: z.string().max(300).optional(),
      // A message larger than this, or one that would take a mailbox past max_mailbox, is held
      // with the reason (absent: no limit beyond smtp.max_message_size).
      max_message_size: size.optional(),
      max_mailbox: size.optional(),
    })
    .prefault({}),
  ldap: z
    .strictObject({
      // Off unless servers are named.
      servers: z.array(ldapServer).default([]),
      cache_ttl: duration.default(900_000),
      negative_ttl: duration.default(120_000),
      retry_after: duration.default(30_000),
      // Fail closed: a policy that depends on groups must not run without them.
      on_failure: z.enum(['defer', 'proceed']).default('defer'),
    })
    .prefault({}),
  kek: kek.default({ file: 'kek.key' }),
  policy: z.string().default('policy.yaml'),
  workers: positiveInt('a number of processes').default(availableParallelism()),
  worker: z
    .strictObject({
      // A transform (decrypt, verify, sign, encrypt, its look-ups) that takes longer is a temporary
      // failure for its message; the supervisor's watchdog restarts a worker stuck that long.
      transform_timeout: atLeastOneSecond.default(60_000),
      // A message the worker defers (the keystore or a directory unreachable, a transform that
      // timed out) is tried again after this long, like Postfix's minimal_backoff_time.
      retry: atLeastOneSecond.default(60_000),
      // OpenPGP data inflated beyond this is refused (a compression bomb); the default (load.ts)
      // is a multiple of smtp.max_message_size.
      max_decompressed_size: size.refine((n) => n >= 1024, { message: 'expected a size of at least 1KB' }).optional(),
    })
    .prefault({}),
  // Postfix's mail_owner: started as root, smtpd and the portal run as this account.
  user: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'expected an account name like postern').default('postern'),
  // Postfix's import_environment: NAME passes the supervisor's value, NAME=VALUE sets one. Not
  // PATH alone: locale, time zone and CA bundle decide how roles log and verify.
  import_environment: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/s, 'expected NAME or NAME=VALUE'))
    .default(['PATH', 'TZ', 'LANG', 'LC_ALL', 'LC_CTYPE', 'NODE_EXTRA_CA_CERTS', 'POSTERN_LOG_LEVEL']),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') })
    .prefault({}),
});

export type RawConfig = z.output<typeof rawConfigSchema>;
