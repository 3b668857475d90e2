/**
 * core: the shared vocabulary of Postern (envelope, recipient, queue id) and the typed errors with
 * their SMTP replies. No I/O, no untrusted input handled here, no secrets.
 */
export * from './errors.js';
export * from './envelope.js';
export * from './queue-id.js';
export * from './date.js';
export * from './address.js';
