/**
 * xtext (RFC 3461 section 4) as used by ENVID and ORCPT, and the unitext escapes RFC 6533 adds
 * for the "utf-8" address type. The envelope keeps these encoded; a DSN shows them decoded.
 */

/**
 * Decodes "+XX" hex escapes into octets and reads the octets as UTF-8 (invalid sequences become
 * U+FFFD). Lower-case hex is accepted although RFC 3461 only writes upper case; a "+" that starts
 * no valid escape is kept literally rather than rejected, since a DSN must still be sent.
 */
export function decodeXtext(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // Raw non-ASCII (not valid xtext, but SMTPUTF8 clients send it): keep the character.
      const cp = s.codePointAt(i)!;
      bytes.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
      if (cp > 0xffff) i++;
    }
  }
  return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
}

/** RFC 6533 section 3: "\x{HHHH}" stands for one Unicode code point in utf-8 addresses. */
function decodeUnitext(s: string): string {
  return s.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (all, hex: string) => {
    const cp = parseInt(hex, 16);
    return cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? all : String.fromCodePoint(cp);
  });
}

export interface OriginalRecipient {
  /** The address type as given ("rfc822", "utf-8", ...), lower-cased. */
  type: string;
  /** The decoded address. May hold anything a client chose, control characters included. */
  address: string;
}

/** Splits "addr-type;xtext" and decodes the address part. */
export function decodeOrcpt(orcpt: string): OriginalRecipient {
  const semi = orcpt.indexOf(';');
  const rawType = semi < 0 ? '' : orcpt.slice(0, semi).trim().toLowerCase();
  // RFC 3461: addr-type is an atom; anything else is not worth echoing.
  const type = /^[a-z0-9][a-z0-9-]{0,31}$/.test(rawType) ? rawType : 'rfc822';
  let address = decodeXtext((semi < 0 ? orcpt : orcpt.slice(semi + 1)).trim());
  if (type === 'utf-8') address = decodeUnitext(address);
  return { type, address };
}
