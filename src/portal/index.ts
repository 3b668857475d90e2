/**
 * portal: the HTTP(S) face of the gateway — for now the Web Key Directory of our users (their
 * OpenPGP public keys, by WKD hash, for internal_domains, advanced and direct layouts, with the
 * policy file) and /health; the PDF-mail reply page, certificates over HTTP and metrics come with
 * their issues. Run as the `portal` role: `startPortal({ config, store, log })`, `close()` on stop.
 *
 * Untrusted input: every HTTP request (path, Host, query), from anyone who can reach it.
 * Secrets: the TLS private key, read at start (as root, before the role drops to `user:`); keys
 * come from the public key file the supervisor publishes (PublicKeyFile), never from postern.db,
 * and every key is checked to hold no secret packet before it is sent.
 */
export { startPortal, PortalError, type Portal, type PortalOptions } from './server.js';
export { WkdIndex, policyFor, type PortalKey, type PortalStore } from './wkd.js';
export { PublicKeyFile } from './key-file.js';
export { publicPacketsOnly } from './packets.js';
