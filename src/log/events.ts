/**
 * Every log event code Postern writes, with its level and what it means: the one list admins,
 * alert rules, tests and the coming admin API read. A code is "<role>.<what>" (or
 * "<role>.<area>.<what>") and, once released, is never renamed (DESIGN.md: stable event codes).
 *
 * test/unit/log/events.test.ts reads every `event:` in src/ and fails on a code used but not
 * listed here, on a code listed but never used, and on a literal `log.<level>(…)` call whose
 * level this list does not give. The log calls keep writing plain strings rather than
 * `EVENTS.x` references: the scan gives the same safety without touching ~130 call sites that
 * four other modules own, and a code in a log line stays greppable as written. New code that
 * wants the compiler's check can type its code as `EventCode`.
 */
import type { RoleName } from '../supervisor/index.js';

export type EventLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface EventInfo {
  /** The level(s) the code is logged at; several when a call site picks it by severity. */
  level: EventLevel | readonly EventLevel[];
  /** One line: what happened, in a mail admin's words. */
  meaning: string;
}

/** The life of every role process (roles/run.ts), one code per role: "smtpd.stopping" … */
const ROLE_LIFE = {
  unprivileged: { level: 'info', meaning: 'started as root, the role now runs as the unprivileged user' },
  start_failed: { level: 'fatal', meaning: 'the role could not start (config, listen address, keystore); the supervisor is told why' },
  start_later: { level: 'error', meaning: 'the role cannot start now for a passing reason (the cluster database cannot be reached); the supervisor starts it again with back-off' },
  stopping: { level: 'info', meaning: 'the role was asked to stop (signal or supervisor)' },
  close_error: { level: 'error', meaning: 'an error while the role was stopping; it stops anyway' },
  reloaded: { level: 'info', meaning: 'the role took the new configuration' },
  reload_rejected: { level: 'error', meaning: 'the new configuration is invalid; the role keeps the running one' },
} as const satisfies Record<string, EventInfo>;

type RoleLife = { readonly [K in `${RoleName}.${keyof typeof ROLE_LIFE}`]: EventInfo };

function roleLife(roles: readonly RoleName[]): RoleLife {
  const out: Record<string, EventInfo> = {};
  for (const r of roles) for (const [what, info] of Object.entries(ROLE_LIFE)) out[`${r}.${what}`] = info;
  return out as RoleLife;
}

const CODES = {
  // smtpd: the listener facing the Internet and the internal MTA
  'smtpd.listening': { level: 'info', meaning: 'smtpd accepts connections on these addresses' },
  'smtpd.listen_unchanged': { level: 'warn', meaning: 'smtp.listen changed in a reload; takes effect at restart' },
  'smtpd.queued': { level: 'info', meaning: 'a message was made durable in the spool and answered 250' },
  'smtpd.reject': { level: 'info', meaning: 'a command or message was refused with the reply logged (relay, size, smuggling, syntax…)' },
  'smtpd.error': { level: 'warn', meaning: 'a client connection failed (reset, TLS error); other sessions unaffected' },
  'smtpd.internal_error': { level: 'error', meaning: 'a handler failed unexpectedly; the client got 451 4.3.0 and keeps its message' },
  'smtpd.socket_error': { level: 'debug', meaning: 'a client socket failed (reset, broken pipe); that session ends, others are unaffected' },
  'smtpd.tls_error': { level: 'debug', meaning: 'a STARTTLS handshake or TLS record failed; that session ends' },
  'smtpd.etrn': { level: 'info', meaning: 'ETRN from a trusted client moved the deferred mail of a domain back to outgoing/ (RFC 1985)' },
  'smtpd.etrn_failed': { level: 'error', meaning: 'ETRN could not read or move the deferred queue; the client got 458' },
  'smtpd.transaction_checkpointed': { level: 'info', meaning: 'a transaction cut off in DATA was kept in spool/partial for its client to resume (RFC 1845 CHECKPOINT)' },
  'smtpd.transaction_resumed': { level: 'info', meaning: 'MAIL FROM with the TRANSID of a kept transaction: answered 355 with its offset (RFC 1845)' },
  'smtpd.partial_expired': { level: 'info', meaning: 'a kept transaction had expired or was unusable; the client starts afresh' },
  'smtpd.partials_swept': { level: 'info', meaning: 'expired or unusable checkpointed transactions removed from spool/partial' },
  'smtpd.partials_sweep_failed': { level: 'warn', meaning: 'spool/partial could not be cleaned; retried at the next sweep' },
  'smtpd.statfs_failed': { level: 'warn', meaning: 'free space of the spool unknown; mail accepted (each write is still checked)' },
  'smtpd.tls_reload_failed': { level: 'error', meaning: 'the new TLS certificate or key cannot be used; the previous one stays' },

  // worker: policy, keys and transforms
  'worker.done': { level: 'info', meaning: 'a message was processed and its outputs are durable in outgoing/ or hold/' },
  'worker.large_streamed': { level: 'info', meaning: 'a large message was signed/encrypted as a stream from its spool file, never loaded whole' },
  'worker.binary_converted': { level: 'info', meaning: 'a BINARYMIME message (RFC 3030) was given its DATA form: binary parts re-encoded to base64, BODY now 8BITMIME or 7BIT' },
  'worker.binary_unconvertible': { level: 'warn', meaning: 'a BINARYMIME message cannot be re-encoded faithfully (binary content under a signature, an unreadable structure): its transforms are refused (5.6.3) and only a BINARYMIME next hop may take it' },
  'worker.large_fallback': { level: 'debug', meaning: 'a large message needs a step that does not stream (the reason says which); processed in memory' },
  'worker.plan': { level: 'debug', meaning: 'the policy plan for one recipient (rules, actions, verdict)' },
  'worker.deferred': { level: 'warn', meaning: 'outcome deferred_temporary: a temporary failure (a directory down); tried again later' },
  'worker.store_unavailable': { level: 'warn', meaning: 'outcome deferred_store: the keystore cannot be reached (PostgreSQL down?); the message waits and is tried again, never sent in clear' },
  'worker.no_space': { level: 'warn', meaning: 'outcome deferred_no_space: the spool file system is full; message left in place' },
  'worker.error': { level: 'error', meaning: 'processing failed; the message stays queued and is tried again' },
  'worker.scan_error': { level: 'error', meaning: 'incoming/ could not be listed' },
  'worker.held': { level: 'warn', meaning: 'outcome held_policy or held_encryption: recipients held in hold/ with the reason' },
  'worker.held_after_errors': { level: 'error', meaning: 'outcome held_after_errors: processing failed repeatedly; message held for an admin' },
  'worker.held_poison': { level: 'error', meaning: 'outcome held_poison: the message crashed the worker every time; held' },
  'worker.limit_exceeded': { level: 'warn', meaning: 'outcome held_limit: the message goes past a limit against hostile mail; held for the recipients whose plan opens it, the reason names the limit' },
  'worker.transform_timeout': { level: 'warn', meaning: 'outcome deferred_transform_timeout: processing took longer than worker.transform_timeout; deferred, the slot serves other mail' },
  'worker.held_after_timeouts': { level: 'error', meaning: 'outcome held_after_timeouts: processing took too long three times; held for an admin' },
  'worker.suspect': { level: 'warn', meaning: 'a worker died with this message before; it is processed alone to find out' },
  'worker.deleted': { level: 'warn', meaning: 'outcome dropped_policy: recipients deleted by a policy rule' },
  'worker.redirected': { level: 'info', meaning: 'recipients redirected to other addresses by policy' },
  'worker.copied': { level: 'info', meaning: 'a copy of the message as it arrived was queued for these addresses by policy' },
  'worker.sign_skipped': { level: 'info', meaning: 'not signed: the sending client is not trusted' },
  'worker.sender_notified': { level: 'info', meaning: 'a notify_sender delivery report was queued for the sender' },
  'worker.alert': { level: 'warn', meaning: 'an admin alert was queued by a policy rule' },
  'worker.notice_failed': { level: 'error', meaning: 'a delivery report or alert could not be written; the mail itself goes on' },
  'worker.kek_followed': { level: 'info', meaning: 'the KEK was rotated on another node of the cluster; this worker took the new KEK its config names, without a restart' },
  'worker.kek_not_followed': { level: 'error', meaning: "the KEK was rotated on another node, but this node's config does not name the new KEK (or it cannot be opened): nothing is sealed or newly unsealed here until it does; tried again every cluster.heartbeat" },
  'worker.kek_restart': { level: 'warn', meaning: 'the KEK was rotated on another node and this config names the new one, which only a starting worker may read (root-only file): the worker stops and the supervisor starts a new one' },
  'worker.store_changes_unreadable': { level: 'warn', meaning: "the keystore's change counters could not be read: cached key look-ups are not trusted (every look-up asks the store) until they can" },
  'worker.reply_links_pruned': { level: 'info', meaning: 'expired PDF reply links (pdf.reply_validity) were removed from the keystore' },
  'worker.reply_links_prune_failed': { level: 'warn', meaning: 'expired PDF reply links could not be removed; tried again in an hour' },
  'worker.pdf_warning': { level: 'warn', meaning: 'PDF mail was made, but something in it was left out or replaced (no font for some characters, an unreadable logo); said once per kind per process' },
  'worker.pdf_password_notice': { level: 'info', meaning: "PDF mail: the pair's password notice was queued for the sender (never the password itself)" },
  'worker.webmail_account_created': { level: 'info', meaning: "webmail: a mailbox was made for an outside recipient; its password goes to the message's sender" },
  'worker.webmail_account_remade': { level: 'warn', meaning: 'webmail: the keys of a mailbox whose first password was never told (its message crashed or was held) were made anew; mail in it was removed' },
  'worker.webmail_stored': { level: 'info', meaning: 'webmail: the message was stored, sealed, in the recipient\'s mailbox (again: a retry found it stored)' },
  'worker.webmail_password_notice': { level: 'info', meaning: "webmail: the new mailbox's password notice was queued for the sender (never the password itself)" },
  'worker.reply_links_moved': { level: 'info', meaning: 'PDF reply links of an older postern.db were moved into portal.db (once, at start)' },
  'worker.webmail_pruned': { level: 'info', meaning: 'webmail mail older than webmail.retention, and mailboxes idle as long, were removed from portal.db' },
  'worker.webmail_prune_failed': { level: 'warn', meaning: 'old webmail mail could not be removed; tried again in an hour' },
  // Audit records in portal.db (the same codes, so an admin searches one list): who made, remade, reset or deleted a mailbox.
  'worker.after_commit_failed': { level: 'error', meaning: "bookkeeping after a message's outputs were queued failed (e.g. marking a PDF password told); a notice may be repeated, none is lost" },
  'worker.keys_generated': { level: 'info', meaning: 'generate_keys: a certificate or OpenPGP key was made for an internal sender' },
  'worker.keys_not_generated': { level: 'error', meaning: 'generate_keys failed (no internal CA yet?); the mail goes on' },
  'worker.policy_rejected': { level: 'error', meaning: 'the new policy file is invalid; the running policy stays' },
  'worker.encrypted': { level: 'info', meaning: 'the message was encrypted for these recipients (method, cipher)' },
  'worker.already_encrypted': { level: 'info', meaning: 'the sender encrypted the message already; passed as it is' },
  'worker.decrypted': { level: 'info', meaning: 'an S/MIME or OpenPGP message was decrypted for the recipient' },
  'worker.not_decrypted': { level: 'info', meaning: 'an encrypted message could not be decrypted (no key); delivered as it came, with the reason in X-Postern-*' },
  'worker.attachment_decrypted': { level: 'info', meaning: 'an OpenPGP attachment was decrypted' },
  'worker.attachment_not_decrypted': { level: 'info', meaning: 'an OpenPGP attachment could not be decrypted; left as it came' },
  'worker.signature': { level: 'info', meaning: 'a signature was checked (status, signer, scope)' },
  'worker.not_signed': { level: ['warn', 'error'], meaning: 'the policy asked for a signature, but the sender has no usable signing key or signing failed; sent unsigned' },
  'worker.pgp_inline_not_possible': { level: 'info', meaning: 'inline OpenPGP was asked for a message that is not plain text; sent as PGP/MIME' },
  'worker.send_keys': { level: 'info', meaning: "a subject command attached the sender's keys" },
  'worker.send_keys_missing': { level: 'warn', meaning: 'some keys asked for by a subject command are not there' },
  'worker.header_protection_ignored': { level: 'warn', meaning: 'protected header fields in a message were not used (RFC 9788)' },
  'worker.header_protection_rebind': { level: 'info', meaning: 'protected From:/Sender:/Date: differ from the outer ones; signatures checked against the protected ones' },
  'worker.header_protection_replaced': { level: 'warn', meaning: 'outer header fields differed from the protected ones and were replaced' },
  'worker.certificate_learnt': { level: 'info', meaning: "a signer's certificate was stored from a signed message" },
  'worker.certificate_not_learnt': { level: 'warn', meaning: "a signer's certificate could not be stored" },
  'worker.key_change': { level: 'warn', meaning: 'a different certificate or Autocrypt key arrived for a known address' },
  'worker.autocrypt_learnt': { level: 'info', meaning: 'an Autocrypt key was stored for the sender' },
  'worker.autocrypt_failed': { level: 'warn', meaning: 'an Autocrypt header could not be used' },
  'worker.autocrypt_ignored': { level: 'debug', meaning: 'an Autocrypt header was ignored (not for the From: address, internal sender…)' },
  'worker.autocrypt_not_added': { level: 'warn', meaning: 'no Autocrypt header could be added for this sender' },
  'worker.key_discovered': { level: 'info', meaning: 'an OpenPGP key was found by discovery (WKD, HKP) for a recipient' },
  'worker.ldap_certificate': { level: 'info', meaning: 'a certificate was found in the LDAP directory' },
  'worker.ldap_certificate_not_used': { level: 'warn', meaning: 'a directory certificate was not used (unusable, not for this address)' },
  'worker.certificate_not_used': { level: 'warn', meaning: 'a recipient certificate was not used (expired, revoked, wrong usage)' },
  'worker.certificate_unusable': { level: 'warn', meaning: 'a certificate cannot be encrypted to' },
  'worker.signing_key_unusable': { level: 'warn', meaning: "the sender's certificate cannot sign" },
  'worker.decryption_key_unusable': { level: 'warn', meaning: 'a stored private key cannot decrypt' },
  'worker.pgp_key_unreadable': { level: 'warn', meaning: 'a stored OpenPGP key cannot be read' },
  'worker.pgp_key_unusable': { level: 'warn', meaning: 'an OpenPGP key cannot be encrypted to' },
  'worker.pgp_signing_key_unusable': { level: 'warn', meaning: "the sender's OpenPGP key cannot sign" },
  'worker.pgp_decryption_key_unusable': { level: 'warn', meaning: 'a stored OpenPGP key cannot decrypt' },

  // relay: delivery, retries, notices
  'relay.delivered': { level: 'info', meaning: 'outcome delivered / relayed: the next hop took these recipients' },
  'relay.deferred': { level: 'warn', meaning: 'outcome deferred_*: a temporary failure; retried per relay.retry (reason and dsn= as Postfix words them)' },
  'relay.bounce': { level: 'warn', meaning: 'outcome bounced_*: recipients failed permanently (next hop 5xx, policy, size); a bounce goes to the sender' },
  'relay.expired': { level: 'warn', meaning: 'outcome bounced_expired: max_queue_lifetime ran out; the last temporary failure becomes the bounce' },
  'relay.held': { level: 'info', meaning: 'outcome held_admin: a hold request (queue hold, poison) moved the entry to hold/' },
  'relay.no_route': { level: 'error', meaning: 'outcome held_no_route: no relay.routes entry matches; entry held until the routes are fixed' },
  'relay.dsn': { level: 'info', meaning: 'a delivery status notification (failure, delay, success) was queued for the sender (doubleBounce: for the postmaster, about undeliverable null-sender mail)' },
  'relay.double_bounce_dropped': { level: 'warn', meaning: 'a notice to the postmaster about undeliverable null-sender mail could not be delivered either; dropped (never a triple bounce)' },
  'relay.no_space': { level: 'warn', meaning: 'outcome deferred_no_space: the spool file system is full; entry left in place' },
  'relay.error': { level: 'error', meaning: 'a spool operation failed during an attempt; the entry stays and is tried again' },
  'relay.internal_error': { level: 'error', meaning: 'a transport failed unexpectedly (a bug); recipients deferred 4.3.0' },
  'relay.corrupt': { level: 'error', meaning: 'an unreadable entry was moved to corrupt/ (never deleted)' },
  'relay.unclaim_error': { level: 'error', meaning: 'an entry could not be put back after an attempt; it stays in delivering/ until restart' },
  'relay.scan_error': { level: 'error', meaning: 'outgoing/ could not be listed' },
  'relay.handoff_connected': { level: 'info', meaning: 'a worker announces its outputs straight to the relay over data_dir/relay.sock' },
  'relay.handoff_unavailable': { level: 'warn', meaning: 'relay.sock cannot be listened on; workers announce through the supervisor (slower, nothing lost)' },
  'relay.tls_policy': { level: 'info', meaning: 'the TLS policy a recipient domain publishes (DANE, MTA-STS) applies to this delivery; which one, never a secret' },
  'relay.tls_failure': { level: 'warn', meaning: 'a next hop failed the domain\'s DANE or MTA-STS policy (or would have, in MTA-STS testing mode); counted per policy domain (TLS-RPT result types)' },
  'relay.mx_unreachable': { level: 'debug', meaning: 'no MX host of the domain could be reached; the last host failure is the reason' },

  // directory: keys from LDAP, WKD, HKP and Autocrypt
  'directory.imported': { level: 'info', meaning: 'a discovered OpenPGP key was stored' },
  'directory.import_failed': { level: 'error', meaning: 'a discovered key could not be stored' },
  'directory.unusable': { level: 'warn', meaning: 'discovery found only unusable keys (expired, revoked, no encryption subkey)' },
  'directory.discovery_failed': { level: 'error', meaning: 'key discovery failed unexpectedly; the mail goes on without' },
  'directory.wkd.found': { level: 'info', meaning: 'WKD served a key for the address' },
  'directory.wkd.not_found': { level: 'debug', meaning: 'WKD has no key for the address' },
  'directory.wkd.error': { level: 'warn', meaning: 'the WKD look-up failed (network, TLS, bad answer)' },
  'directory.hkp.found': { level: 'info', meaning: 'a key server (HKP) served a key for the address' },
  'directory.hkp.not_found': { level: 'debug', meaning: 'the key server has no key for the address' },
  'directory.hkp.error': { level: 'warn', meaning: 'the key server look-up failed' },
  'directory.autocrypt.imported': { level: 'info', meaning: 'an Autocrypt key was stored' },
  'directory.autocrypt.internal': { level: 'warn', meaning: 'an Autocrypt header for an internal address was ignored' },
  'directory.autocrypt.key_change': { level: 'warn', meaning: 'an Autocrypt header brought another key for a known address' },
  'ldap.unavailable': { level: 'warn', meaning: 'the LDAP server cannot be reached; mail deferred or proceeds per ldap.on_failure' },
  'ldap.proceed_without': { level: 'warn', meaning: 'LDAP unavailable; proceeding without directory facts (ldap.on_failure: proceed)' },
  'ldap.several_entries': { level: 'warn', meaning: 'several LDAP entries hold this address; all are used' },
  'ldap.certificate_unreadable': { level: 'warn', meaning: 'an unreadable certificate in an LDAP entry was dropped' },
  'ldap.certificate_refused': { level: 'warn', meaning: 'a certificate in an LDAP entry fails the import rules; dropped' },
  'ldap.certificate_other_address': { level: 'warn', meaning: 'a certificate in an LDAP entry does not name the address; dropped' },

  // portal: HTTPS on the Internet side
  'portal.listening': { level: 'info', meaning: 'the portal accepts HTTPS connections' },
  'portal.error': { level: 'error', meaning: 'a portal request failed' },
  'portal.refused': { level: 'info', meaning: 'a portal request was refused before its page (too large, too many, malformed); status and Fastify code' },
  'portal.csrf_refused': { level: 'warn', meaning: 'a form post without a valid CSRF token (from another site, an old form, or forged) was refused' },
  'portal.tls_reloaded': { level: 'info', meaning: "the portal's certificate and key were taken anew (SIGHUP) for new connections" },
  'portal.tls_reload_failed': { level: 'error', meaning: "the portal could not use the renewed certificate or key; it keeps the one it has" },
  'portal.wkd.served': { level: 'info', meaning: 'a WKD key was served' },
  'portal.wkd.not_found': { level: 'debug', meaning: 'no key for a WKD hash' },
  'portal.reply.login': { level: 'info', meaning: 'a PDF recipient signed in to the reply page with the PDF password' },
  'portal.reply.login_failed': { level: 'warn', meaning: 'a wrong PDF password on the reply page (counted for the lock-out)' },
  'portal.reply.locked': { level: 'warn', meaning: 'a reply page sign-in refused unchecked: too many failures for the link or the client address' },
  'portal.reply.sent': { level: 'info', meaning: 'a PDF reply was written into the spool for our user (and the replier\'s copy beside it)' },
  'portal.reply.copy_failed': { level: 'warn', meaning: 'the replier\'s PDF copy of a reply was not made (too large, or an error); the reply itself went' },
  'portal.reply.refused': { level: 'warn', meaning: 'a PDF reply was refused: its link names no sender in internal_domains' },
  'portal.reply.signed_out': { level: 'info', meaning: 'a PDF replier signed out' },
  'portal.hkp.served': { level: 'info', meaning: "an HKP look-up found one of our users' OpenPGP keys (op, address asked for, fingerprints)" },
  'portal.certs.served': { level: 'info', meaning: "one of our users' S/MIME certificates was served (format, address, fingerprints)" },

  // portal: webmail pages (src/portal/webmail/)
  'portal.webmail.login': { level: 'info', meaning: 'a webmail reader signed in' },
  'portal.webmail.login_failed': { level: 'info', meaning: 'a webmail sign-in failed (wrong or unknown address or password)' },
  'portal.webmail.locked': { level: 'warn', meaning: 'a webmail sign-in was refused unchecked: too many failures for the account or the client' },
  'portal.webmail.password_failed': { level: 'info', meaning: 'a webmail password change gave a wrong current password' },
  'portal.webmail.password_changed': { level: 'info', meaning: 'a webmail reader chose a new password (same key, rewrapped)' },
  'portal.webmail.logout': { level: 'info', meaning: 'a webmail reader signed out' },
  'portal.webmail.unreadable': { level: 'warn', meaning: 'a stored webmail message does not open with the account key (damaged or misfiled row)' },
  'portal.webmail.download': { level: 'info', meaning: 'a webmail attachment was downloaded' },
  'portal.webmail.deleted': { level: 'info', meaning: 'a webmail reader deleted a message' },
  'portal.webmail.reply': { level: 'info', meaning: 'a webmail reply was spooled' },
  'portal.webmail.reply_refused': { level: 'warn', meaning: 'a webmail reply to an address outside the message was refused (a forged form)' },
  'portal.webmail.reply_failed': { level: 'error', meaning: 'a webmail reply could not be spooled' },
  'portal.webmail.audit_failed': { level: 'error', meaning: 'a webmail audit record could not be written to portal.db' },

  // supervisor: `postern start`
  'admin.kek_followed': { level: 'info', meaning: 'the KEK was rotated on another node of the cluster; the admin console took the new KEK its config names, without a restart' },
  'admin.kek_not_followed': { level: 'error', meaning: "the KEK was rotated on another node, but this node's config does not name the new KEK (or it cannot be opened): the admin console seals and unseals nothing new until it does; tried again every cluster.heartbeat" },
  'admin.listening': { level: 'info', meaning: 'the admin console and API accept connections on admin.listen' },
  'admin.login': { level: 'info', meaning: 'an admin account signed in (console or API)' },
  'admin.login_failed': { level: 'warn', meaning: 'an admin sign-in failed: wrong or unknown name, password or TOTP code (counted for the lock-out)' },
  'admin.login_locked': { level: 'warn', meaning: 'an admin sign-in was refused unchecked: too many failures for the account or the client address' },
  'admin.csrf_refused': { level: 'warn', meaning: 'a change without a valid CSRF token (x-csrf-token or the form field) was refused' },
  'admin.denied': { level: 'warn', meaning: "an admin request was refused: the caller's roles lack the permission the route needs" },
  'admin.error': { level: 'error', meaning: 'an admin request failed unexpectedly (answered 500 without details)' },
  'admin.audit_failed': { level: 'error', meaning: 'an audit record of a refused admin change could not be written' },
  'admin.metrics_incomplete': { level: 'warn', meaning: 'a /metrics scrape lacked the figures of some role processes (busy or gone); their last figures were used' },
  'admin.tls_reloaded': { level: 'info', meaning: "the admin console's certificate and key were taken anew (SIGHUP) for new connections" },
  'admin.tls_reload_failed': { level: 'error', meaning: 'the admin console could not use the renewed certificate or key; it keeps the one it has' },
  'supervisor.admin_unavailable': { level: 'error', meaning: 'the admin role cannot run (port taken, certificate unreadable); mail is not affected, it is tried again in a minute' },
  'supervisor.reply_links_moved': { level: 'info', meaning: 'PDF reply links of an older postern.db were moved into portal.db (once, at start)' },
  'supervisor.ready': { level: 'info', meaning: 'all roles run; accepting mail' },
  'supervisor.spawn': { level: 'info', meaning: 'a role process was started' },
  'supervisor.role_died': { level: 'error', meaning: 'a role process died; restarted after a pause' },
  'supervisor.worker_unresponsive': { level: 'error', meaning: 'a worker did not answer for worker.transform_timeout (stuck in a loop); killed, its messages reclaimed, restarted' },
  'supervisor.fatal': { level: 'fatal', meaning: 'a role cannot run at all; the gateway stops' },
  'supervisor.reclaimed': { level: 'warn', meaning: 'messages claimed by a dead process were put back (crash marks written)' },
  'supervisor.reclaim_error': { level: 'error', meaning: 'reclaiming failed; the entries stay in active/ until restart' },
  'supervisor.recovered': { level: 'info', meaning: 'the spool was checked and recovered at start' },
  'supervisor.reloaded': { level: 'info', meaning: 'the configuration was reloaded' },
  'supervisor.reload_rejected': { level: 'error', meaning: 'the new configuration is invalid; the running one stays' },
  'supervisor.stopping': { level: 'info', meaning: 'the gateway is stopping' },
  'supervisor.stopped': { level: 'info', meaning: 'the gateway stopped' },
  'supervisor.tls_unreadable': { level: 'error', meaning: 'the TLS certificate cannot be read; smtpd keeps the one it has' },
  'supervisor.not_root': { level: 'warn', meaning: 'not started as root: the roles cannot be isolated by user' },
  'supervisor.group_access': { level: 'info', meaning: 'a file mode was widened to the group so the unprivileged roles can read it' },
  'supervisor.mode_tightened': { level: 'warn', meaning: 'a file mode was too open and was tightened' },
  'supervisor.owner_changed': { level: 'warn', meaning: 'a file owner was changed for the roles' },
  'supervisor.data_dir_unusable': { level: 'fatal', meaning: 'data_dir cannot be set up for the roles' },
  'supervisor.keystore_unreachable': { level: 'error', meaning: 'the cluster database cannot be reached at start (PostgreSQL down?): the gateway starts anyway, smtpd accepts into the spool, mail that needs the store waits' },
  'supervisor.keystore_unusable': { level: 'fatal', meaning: 'the keystore cannot be opened' },
  'supervisor.keys_not_published': { level: 'error', meaning: 'the public keys or certificates for the portal could not be published' },
  'supervisor.crl_not_published': { level: 'error', meaning: 'the CRL of the internal CA could not be published' },
  // A cluster's shared policy (policy/follow.ts, in the supervisor): the node's policy file follows the database.
  'policy.cluster_followed': { level: 'info', meaning: "the cluster's newest policy version was written to this node's policy file; the roles reload it" },
  'policy.cluster_seeded': { level: 'info', meaning: "the cluster had no policy version yet: this node's policy file became the first" },
  'policy.cluster_version_refused': { level: 'error', meaning: "the cluster's newest policy does not validate on this node (a groups file missing here?); the node keeps its policy file" },
  'policy.local_edit_replaced': { level: 'warn', meaning: "this node's policy file was none of the cluster's versions (edited here, or a node new to the cluster); the cluster's version replaced it, the file's text is kept in data_dir/policy-versions" },
  'policy.cluster_unreachable': { level: 'warn', meaning: 'the cluster database cannot be reached; the node keeps running on its policy file and tries again (logged once per outage)' },
  'policy.cluster_reachable': { level: 'info', meaning: "the cluster database is reachable again; the node follows the cluster's policy" },
  'policy.cluster_check_failed': { level: 'error', meaning: "the cluster's policy could not be followed (not an outage: see the reason); the node keeps its policy file" },
  'supervisor.heartbeat_failed': { level: 'warn', meaning: 'this cluster node cannot write its heartbeat to PostgreSQL (said once per outage); mail is not affected, cluster status shows the node late' },
  'supervisor.heartbeat_resumed': { level: 'info', meaning: 'the cluster heartbeat is written again after an outage' },
} as const satisfies Record<string, EventInfo>;

export const EVENTS = { ...CODES, ...roleLife(['smtpd', 'worker', 'relay', 'portal']) } as const;

export type EventCode = keyof typeof EVENTS;

export function isEventCode(code: string): code is EventCode {
  return Object.hasOwn(EVENTS, code);
}

/** The levels a code is logged at. */
export function eventLevels(code: EventCode): readonly EventLevel[] {
  const l = EVENTS[code].level;
  return typeof l === 'string' ? [l] : l;
}
