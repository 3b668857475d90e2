/**
 * smtp-server waits a fixed 100 ms before its 220 greeting to catch clients that talk first (spam
 * bots that do not wait for the greeting get "421 You talk too soon"). That is worth keeping on
 * the Internet-facing side, but for our own mail server, which hands us every outbound message on
 * a new connection, it caps throughput at 10 messages per second per connection slot (Postfix's
 * smtp-source, for one, opens a connection per message). So the pause is skipped for clients in
 * trusted_networks, as Postfix's postscreen applies its greet wait only to untrusted clients.
 *
 * smtp-server has no option for this; we wrap SMTPConnection.prototype.init once (the wrapper
 * falls back to the library's own init for every server that has not opted in, and for untrusted
 * clients). Checked against smtp-server 3.21: init() = _setListeners(() => setTimeout(connectionReady, 100)).
 */
import type { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const skipFor = new WeakMap<object, (ip: string) => boolean>();
let installed = false;

/** Greet clients for which `noPause(ip)` is true without the early-talker pause. */
export function skipGreetPause(server: SMTPServer, noPause: (ip: string) => boolean): void {
  install();
  skipFor.set(server, noPause);
}

function install(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as SMTPConnection & { _server?: object };
  const libraryInit = proto.init;
  proto.init = function (this: SMTPConnection & { _server?: object }) {
    const noPause = this._server ? skipFor.get(this._server) : undefined;
    if (!noPause || !this.remoteAddress || !noPause(this.remoteAddress)) return libraryInit.call(this);
    this._setListeners(() => this.connectionReady());
  };
}
