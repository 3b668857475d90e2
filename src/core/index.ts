/**
 * core: the shared vocabulary of Postern (envelope, recipient, queue id), the typed errors with
 * their SMTP replies, the outcome catalogue (what each end of a message means: reply, status, DSN,
 * log event, metric) and the notes the worker hands the relay in a spool entry. No I/O, no untrusted input handled here, no secrets.
 */
export * from './errors.js';
export * from './envelope.js';
export * from './queue-id.js';
export * from './date.js';
export * from './address.js';
export * from './outcomes.js';
export * from './notes.js';
export * from './limits.js';
