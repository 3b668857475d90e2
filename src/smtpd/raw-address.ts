/**
 * Was an address 8-bit on the wire? smtp-server decodes A-labels in MAIL FROM and RCPT TO to
 * Unicode before our handlers see the address, so `bob@xn--bcher-kva.example` (plain ASCII,
 * fine in any transaction) and `bob@bücher.example` (8-bit, only allowed with SMTPUTF8, RFC 6531
 * §3.5) look the same by then. The answer is taken from the command line itself, as smtp-server
 * parses it, and remembered per parsed-address object (the one the handlers get).
 */
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const NON_ASCII = /[^\x00-\x7f]/;

type ParseFn = (name: string, command: unknown) => object | false;

/** Wrap the connection's address parser; returns the set of parsed addresses that were 8-bit. */
export function hookRawAddresses(conn: SMTPConnection): WeakSet<object> {
  const eightBit = new WeakSet<object>();
  const c = conn as unknown as { _parseAddressCommand?: ParseFn };
  const parse = c._parseAddressCommand;
  // Fail closed on a library change: without the hook every non-ASCII address counts as 8-bit.
  if (typeof parse !== 'function') return new Proxy(eightBit, { get: (t, p) => (p === 'has' ? () => true : Reflect.get(t, p)) });
  c._parseAddressCommand = function (this: unknown, name: string, command: unknown) {
    const parsed = parse.call(this, name, command);
    if (parsed && NON_ASCII.test(String(command ?? ''))) eightBit.add(parsed);
    return parsed;
  };
  return eightBit;
}
