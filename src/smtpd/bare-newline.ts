/**
 * The SMTP smuggling defence (SEC Consult, 2023). smtpd ends DATA only at <CR><LF>.<CR><LF>
 * (dot-reader.ts), but a bare CR or bare LF (and NUL) inside the message is content. Relayed onwards, such a
 * byte can make a downstream server that is lenient about line endings see an end of DATA where we
 * saw none, and then run the "message body" as SMTP commands: a second, forged message. So every
 * byte of the un-dot-stuffed DATA stream goes through this scanner, chunk by chunk (a CR at the
 * end of one chunk and its LF at the start of the next is a proper CRLF).
 *
 * - reject mode: the first bare CR, bare LF or NUL makes the message unacceptable (Postfix
 *   smtpd_forbid_bare_newline = reject).
 * - normalize mode (trusted clients only): a bare CR or LF becomes CRLF, as Postfix "normalize"
 *   does, so what we relay has one unambiguous line structure.
 *
 * NUL is rejected in both modes. RFC 5321 allows it only with BINARYMIME (BDAT, where this
 * scanner is not used: the content is binary and counted, not dot-terminated), and several published smuggling sequences (e.g. <CR><LF>\0.<CR><LF>) rely on a downstream MTA
 * that drops NULs and then sees <CR><LF>.<CR><LF>. Postfix accepts NUL by default; we do not.
 */

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const LF_BUF = Buffer.from([LF]);
const CR_BUF = Buffer.from([CR]);

export type ByteViolation = 'bare CR' | 'bare LF' | 'NUL';

export class LineEndingScanner {
  /** The previous byte (possibly of the previous chunk) was a CR whose LF has not been seen yet. */
  private pendingCR = false;
  private found: ByteViolation | null = null;
  /** Number of line endings rewritten (normalize mode). */
  normalized = 0;

  constructor(private readonly normalize: boolean) {}

  /** The first violation that made the message unacceptable, or null. */
  get violation(): ByteViolation | null {
    return this.found;
  }

  /**
   * Scan one chunk. Returns the bytes to store (the chunk itself when nothing changed, a new
   * buffer when line endings were normalised), or null once the message is unacceptable.
   */
  push(chunk: Buffer): Buffer | null {
    if (this.found) return null;
    if (this.clean(chunk)) {
      if (chunk.length) this.pendingCR = chunk[chunk.length - 1] === CR;
      return chunk;
    }
    let parts: Buffer[] | null = null;
    let start = 0;
    const len = chunk.length;
    for (let i = 0; i < len; i++) {
      const b = chunk[i];
      if (b === CR) {
        // Two CRs in a row: the first one was bare.
        if (this.pendingCR) {
          if (!this.fix('bare CR')) return null;
          (parts ??= []).push(chunk.subarray(start, i), LF_BUF);
          start = i;
        }
        this.pendingCR = true;
      } else if (b === LF) {
        if (!this.pendingCR) {
          if (!this.fix('bare LF')) return null;
          (parts ??= []).push(chunk.subarray(start, i), CR_BUF);
          start = i;
        }
        this.pendingCR = false;
      } else {
        if (this.pendingCR) {
          if (!this.fix('bare CR')) return null;
          (parts ??= []).push(chunk.subarray(start, i), LF_BUF);
          start = i;
        }
        this.pendingCR = false;
        if (b === NUL) {
          this.found = 'NUL';
          return null;
        }
      }
    }
    if (!parts) return chunk;
    parts.push(chunk.subarray(start));
    return Buffer.concat(parts);
  }

  /**
   * True when `chunk` breaks no rule and needs no change: no NUL, every LF right after a CR and
   * every CR right before an LF (one at its very end waits for the next chunk). Native searches,
   * two per line, instead of a JavaScript test per byte: a 10 MB message costs a third of the
   * CPU. Any chunk that fails goes through the byte loop in push(), which finds the first
   * violation in order (so the reply and the log say the same as before) or normalises.
   */
  private clean(chunk: Buffer): boolean {
    const len = chunk.length;
    if (len === 0) return true;
    // A CR left pending must meet its LF first; an LF first with no CR pending is bare.
    if (this.pendingCR !== (chunk[0] === LF)) return false;
    if (chunk.indexOf(NUL) >= 0) return false;
    let from = this.pendingCR ? 1 : 0;
    for (let nl = chunk.indexOf(LF, from); nl >= 0; nl = chunk.indexOf(LF, from)) {
      // The line's first CR must be the one right before its LF (none earlier, not missing).
      if (nl === from || chunk.indexOf(CR, from) !== nl - 1) return false;
      from = nl + 1;
    }
    const cr = chunk.indexOf(CR, from);
    return cr < 0 || cr === len - 1;
  }

  /**
   * End of DATA. A message that ends in a CR without its LF has a bare CR there. Returns bytes
   * still to store (an LF in normalize mode), an empty buffer, or null when unacceptable.
   */
  end(): Buffer | null {
    if (this.found) return null;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (!this.fix('bare CR')) return null;
      return Buffer.from(LF_BUF);
    }
    return Buffer.alloc(0);
  }

  /** A bare CR or LF was seen: true when it may be normalised, else records the violation. */
  private fix(kind: ByteViolation): boolean {
    if (this.normalize) {
      this.normalized++;
      return true;
    }
    this.found = kind;
    return false;
  }
}
