/**
 * smtpd: the internet-facing SMTP listener, on Postern's own ESMTP protocol layer (input.ts reads
 * lines and content with hard limits, connection.ts is the session, commands.ts and transfer.ts
 * the commands, DATA and BDAT/CHUNKING with BINARYMIME, REQUIRETLS, ETRN). It owns the listeners
 * and STARTTLS, relay control (trusted_networks may relay anywhere, everyone else only to
 * internal_domains, with no %/!/quoted-@ routing and no address literals), the limits (size,
 * recipients, connections in all and per client, idle, DATA and session time), the SMTP
 * smuggling defence (bare CR/LF and NUL in DATA), the Received header, and the hand-over to the
 * spool: 250 only once the message is durable.
 *
 * Untrusted input: everything a client sends: commands, HELO names, addresses, ESMTP parameters,
 * the message bytes (stored verbatim apart from the prepended Received header, never parsed
 * here; BINARYMIME content may hold any byte), plus the client's reverse DNS name
 * (forward-confirmed before use).
 *
 * Secrets: the TLS private key for STARTTLS (read from smtp.tls.key, handed to Node's TLS, never
 * logged). No keystore, no KEK: this role cannot decrypt or sign anything. Message bodies are
 * never logged.
 */
export { startSmtpd, type Smtpd, type SmtpdOptions } from './server.js';
export { LineEndingScanner, type ByteViolation } from './bare-newline.js';
export { NetworkList, checkRecipient, asciiDomain, type RecipientPolicy, type RecipientVerdict } from './relay-control.js';
export { receivedHeader, rfc5322Date, type ReceivedInfo } from './received.js';
