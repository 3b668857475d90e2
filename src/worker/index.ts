/**
 * worker: claims accepted messages from the spool, applies policy and transforms, and writes the
 * results to outgoing/ before removing the input. Untrusted input: the whole message (parsed by
 * later stages). Secrets: private keys, unsealed through the keystore and kept prepared in crypto-keys.ts; never logged.
 * A failure never produces plaintext: the message stays queued.
 */
export { startWorker } from './worker.js';
export type { Worker, WorkerOptions } from './worker.js';
export type { PolicyContext, Decision } from './decide.js';
export { decide } from './decide.js';
export { CryptoKeys } from './crypto-keys.js';
export { PgpKeys } from './pgp-keys.js';
export { StoreLookups, type StoreReads } from './store-lookups.js';
export { watchStore, type StoreWatch } from './store-watch.js';
export type { KeySources } from './key-sources.js';
