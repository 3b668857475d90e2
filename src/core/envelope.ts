/**
 * The envelope of a message as accepted over SMTP: what the client said in MAIL FROM and RCPT TO,
 * with the DSN parameters (RFC 3461) and who the client was. It travels with the message through
 * the spool unchanged; later stages add per-recipient state beside it, never inside it.
 */

export type NotifyValue = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface Recipient {
  /** The canonical form (core/address.ts) of the address given in RCPT TO: the only one compared and routed. */
  address: string;
  /** The address as the client wrote it, when that differs from the canonical form (for display). */
  original?: string;
  /** NOTIFY= values; undefined when the client gave none (the default is FAILURE). */
  notify?: NotifyValue[];
  /** ORCPT= in canonical xtext form (addr-type;xtext-address), to be echoed in DSNs. */
  orcpt?: string;
}

export interface ClientInfo {
  /** Remote IP address. */
  address: string;
  port: number;
  /** HELO/EHLO name given by the client. */
  helo: string;
  /** Reverse-DNS name when looked up, otherwise "[ip]". */
  hostname: string;
  /** "ESMTP", "ESMTPS", "ESMTPSA", ... as for the Received header. */
  protocol: string;
  /** TLS protocol and cipher when the session used TLS. */
  tls?: { protocol: string; cipher: string };
  /** True when the client's address is in trusted_networks (may relay anywhere). */
  trusted: boolean;
}

export interface Envelope {
  /** MAIL FROM address in canonical form (core/address.ts); "" for the null sender <>. */
  sender: string;
  recipients: Recipient[];
  /** RET= (RFC 3461). */
  ret?: 'FULL' | 'HDRS';
  /** ENVID= in canonical xtext form, to be echoed in DSNs. */
  envid?: string;
  /**
   * BODY= value (RFC 6152, RFC 3030). BINARYMIME content arrived by BDAT and may hold bare CR, LF
   * and NUL: only a next hop that announces BINARYMIME may receive it as is; everything else is
   * given a 7-bit or 8-bit form first (issue 20).
   */
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8?: boolean;
  /**
   * REQUIRETLS (RFC 8689) on MAIL FROM: every hop must use TLS with a verified certificate and
   * must itself announce REQUIRETLS; where it cannot, the message bounces (5.7.30), never goes in clear.
   */
  requireTls?: boolean;
  client: ClientInfo;
  /** When smtpd accepted the message, ISO 8601. */
  receivedAt: string;
}
