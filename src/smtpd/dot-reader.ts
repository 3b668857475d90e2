/**
 * The content of DATA (RFC 5321 4.5.2): it ends at the first <CR><LF>.<CR><LF> (the CRLF that
 * ends the last line belongs to the message; DATA starts at a line start, so a lone ".<CR><LF>"
 * first ends an empty message), and a line that starts with ".." loses its first dot. Only a real
 * CRLF ends DATA: "<LF>.<CR><LF>" and "<CR>.<CR>" are content (bare line endings, which the
 * smuggling defence in bare-newline.ts then sees). A dot after a bare LF is unstuffed too, and a
 * single leading dot not followed by another is kept, as smtp-server did (clients that do not
 * stuff lose nothing; those that do get their dots back).
 *
 * Fed chunk by chunk; at most three bytes at a line start are held back until the next chunk
 * tells what they are.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export interface DotStep {
  /** Message content in this chunk (already unstuffed). */
  content: Buffer[];
  /** The end of DATA was found: `rest` is what the client sent after it (pipelined commands). */
  done: boolean;
  rest?: Buffer;
}

export class DotReader {
  /** Bytes held at a line start, waiting to be told apart. */
  private held: Buffer | null = null;
  /** The position where the next chunk starts is a line start. */
  private lineStart = true;
  /** That line start follows a CRLF (or the start of DATA): a "." + CRLF there ends the message. */
  private afterCrlf = true;
  /** The last byte seen was a CR (for a CRLF split across chunks). */
  private lastCr = false;

  push(chunk: Buffer): DotStep {
    const data = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = null;
    const content: Buffer[] = [];
    let from = 0; // start of content not yet emitted
    let pos = 0; // where to look for the next LF
    let ls = this.lineStart ? 0 : -1;
    let crlf = this.afterCrlf;
    const len = data.length;
    for (;;) {
      if (ls >= 0) {
        const left = len - ls;
        if (left === 0 || (data[ls] === DOT && (left === 1 || (left === 2 && data[ls + 1] === CR && crlf)))) {
          // Not enough to decide: keep the line start for the next chunk.
          if (ls > from) content.push(data.subarray(from, ls));
          if (left > 0) this.held = Buffer.from(data.subarray(ls));
          this.lineStart = true;
          this.afterCrlf = crlf;
          this.lastCr = false;
          return { content, done: false };
        }
        if (data[ls] === DOT) {
          if (data[ls + 1] === DOT) {
            // Stuffed: drop the first dot; the second is content, not a line start.
            if (ls > from) content.push(data.subarray(from, ls));
            from = ls + 1;
            pos = ls + 2;
          } else if (crlf && data[ls + 1] === CR && data[ls + 2] === LF) {
            if (ls > from) content.push(data.subarray(from, ls));
            this.held = null;
            this.lineStart = true;
            this.afterCrlf = true;
            this.lastCr = false;
            return { content, done: true, rest: data.subarray(ls + 3) };
          }
        }
        ls = -1;
      }
      const nl = data.indexOf(LF, pos);
      if (nl < 0) {
        if (len > from) content.push(data.subarray(from));
        this.lineStart = false;
        this.lastCr = len > 0 ? data[len - 1] === CR : this.lastCr;
        return { content, done: false };
      }
      crlf = nl > 0 ? data[nl - 1] === CR : this.lastCr;
      ls = nl + 1;
      pos = ls;
    }
  }
}
