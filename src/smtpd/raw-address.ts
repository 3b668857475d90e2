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

export interface RawAddresses {
  /** False when smtp-server no longer has the method we wrap: the raw line is then unknown. */
  hooked: boolean;
  /** Parsed addresses that held non-ASCII bytes on the wire. */
  eightBit: WeakSet<object>;
  /** The address as written on the wire (source route dropped), for display. */
  written: WeakMap<object, string>;
}

/** Wrap the connection's address parser and remember what each parsed address looked like on the wire. */
export function hookRawAddresses(conn: SMTPConnection): RawAddresses {
  const raw: RawAddresses = { hooked: false, eightBit: new WeakSet<object>(), written: new WeakMap<object, string>() };
  const c = conn as unknown as { _parseAddressCommand?: ParseFn };
  const parse = c._parseAddressCommand;
  if (typeof parse !== 'function') return raw;
  raw.hooked = true;
  c._parseAddressCommand = function (this: unknown, name: string, command: unknown) {
    const parsed = parse.call(this, name, command);
    if (parsed) {
      const line = String(command ?? '');
      if (NON_ASCII.test(line)) raw.eightBit.add(parsed);
      const m = /<([^<>]*)>/.exec(line);
      if (m) raw.written.set(parsed, m[1]!.replace(/^@[^\s,:@]+(?:,@[^\s,:@]+)*:/, ''));
    }
    return parsed;
  };
  return raw;
}

/**
 * Was this parsed address 8-bit on the wire? Without the hook (a changed smtp-server) the answer
 * fails closed on the parsed form: any non-ASCII counts, so an A-label domain (decoded to Unicode
 * by the library) then needs SMTPUTF8 too — stricter, never laxer.
 */
export function wasEightBit(raw: RawAddresses | undefined, parsed: { address: string }): boolean {
  return raw?.hooked ? raw.eightBit.has(parsed) : NON_ASCII.test(parsed.address);
}
