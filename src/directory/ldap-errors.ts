/**
 * The error of the LDAP directory: a server (or every configured one) could not answer in time.
 * Temporary (451 4.4.3, RFC 3463 "directory server failure"), so the caller defers or proceeds
 * as ldap.on_failure says. The text names the server and the reason; it never holds a password.
 */
import { PosternError } from '../core/index.js';

export class LdapUnavailableError extends PosternError {
  /** The server URL(s) that failed. */
  readonly servers: string[];
  readonly reason: string;
  /** The server was not asked (it failed less than retry_after ago): nothing new to log. */
  readonly skipped: boolean;
  constructor(server: string | string[], reason: string, options?: { cause?: unknown; skipped?: boolean }) {
    const servers = Array.isArray(server) ? server : [server];
    const why = reason.replace(/[\r\n]+/g, ' ').slice(0, 300);
    super({ code: 451, status: '4.4.3', text: `directory server ${servers.join(', ')} unavailable: ${why}` }, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.servers = servers;
    this.reason = why;
    this.skipped = options?.skipped ?? false;
  }
}
