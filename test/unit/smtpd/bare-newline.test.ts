import { describe, expect, it } from 'vitest';
import { LineEndingScanner } from '../../../src/smtpd/bare-newline.js';

/** Reference: the whole message at once. */
function reference(data: Buffer, normalize: boolean): Buffer | null {
  const s = data.toString('latin1');
  if (s.includes('\0')) return null;
  const bare = /\r(?!\n)|(?<!\r)\n/.test(s);
  if (bare && !normalize) return null;
  return Buffer.from(s.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/** Feed `data` split at `cuts` and collect the output (null when rejected). */
function scan(data: Buffer, cuts: number[], normalize: boolean): Buffer | null {
  const sc = new LineEndingScanner(normalize);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, data.length]) {
    const r = sc.push(data.subarray(prev, c));
    if (!r) return null;
    out.push(r);
    prev = c;
  }
  const tail = sc.end();
  if (!tail) return null;
  out.push(tail);
  return Buffer.concat(out);
}

const SAMPLES = [
  'a\r\nb\r\n',
  'a\nb\r\n',
  'a\rb\r\n',
  'a\r\r\nb',
  'a\r\n\r\n.\r\n',
  'end with cr\r',
  'end with lf\n',
  '\n',
  '\r',
  '\r\n',
  '\r\r',
  '\n\n',
  'x\r\n\0.\r\n',
  'body\r\n.\r\r\nMAIL FROM:<x>\r\n',
  'body\r\r\n.\r\r\n',
  'message 1 body\n.\nMAIL FROM:<s@x>\r\n',
  'message 1 body\r.\rMAIL\r\n',
  'no line ending at all',
  '',
];

describe('LineEndingScanner', () => {
  for (const normalize of [false, true]) {
    it(`matches the whole-message reference for every split into 1..3 chunks (${normalize ? 'normalize' : 'reject'})`, () => {
      for (const sample of SAMPLES) {
        const data = Buffer.from(sample, 'latin1');
        const want = reference(data, normalize);
        for (let i = 0; i <= data.length; i++) {
          for (let j = i; j <= data.length; j++) {
            const got = scan(data, [i, j], normalize);
            expect(got === null ? null : got.toString('latin1'), `${JSON.stringify(sample)} cut at ${i},${j}`).toBe(
              want === null ? null : want.toString('latin1'),
            );
          }
        }
      }
    });
  }

  it('returns the same buffer (no copy) when nothing needs changing', () => {
    const chunk = Buffer.from('Subject: x\r\n\r\nhello\r\n');
    expect(new LineEndingScanner(true).push(chunk)).toBe(chunk);
  });

  it('reports which byte was at fault, and stays rejected', () => {
    const lf = new LineEndingScanner(false);
    expect(lf.push(Buffer.from('a\r\nb\nc'))).toBeNull();
    expect(lf.violation).toBe('bare LF');
    expect(lf.push(Buffer.from('fine\r\n'))).toBeNull();

    const cr = new LineEndingScanner(false);
    expect(cr.push(Buffer.from('a\r'))).not.toBeNull(); // may still be followed by LF
    expect(cr.push(Buffer.from('b'))).toBeNull();
    expect(cr.violation).toBe('bare CR');

    const trailing = new LineEndingScanner(false);
    expect(trailing.push(Buffer.from('a\r'))).not.toBeNull();
    expect(trailing.end()).toBeNull();
    expect(trailing.violation).toBe('bare CR');

    const nul = new LineEndingScanner(true);
    expect(nul.push(Buffer.from('a\r\n\0'))).toBeNull();
    expect(nul.violation).toBe('NUL');
  });

  it('counts normalised line endings', () => {
    const sc = new LineEndingScanner(true);
    sc.push(Buffer.from('a\nb\rc\r\n'));
    sc.end();
    expect(sc.normalized).toBe(2);
  });

  it('handles a CRLF split over many one-byte chunks of a large message', () => {
    const msg = Buffer.from('line\r\n'.repeat(1000));
    const sc = new LineEndingScanner(false);
    for (let i = 0; i < msg.length; i++) expect(sc.push(msg.subarray(i, i + 1))).not.toBeNull();
    expect(sc.end()).toEqual(Buffer.alloc(0));
  });

  it('finds the first fault, or none, in long messages cut into uneven chunks (the fast path for clean chunks)', () => {
    // A deterministic generator: CRLF lines of varying length, one fault (or none) somewhere.
    let x = 0x9e3779b9;
    const rnd = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const firstFault = (s: string): string | null => {
      for (let i = 0; i < s.length; i++) {
        if (s[i] === '\0') return 'NUL';
        if (s[i] === '\r' && s[i + 1] !== '\n') return 'bare CR';
        if (s[i] === '\n' && s[i - 1] !== '\r') return 'bare LF';
      }
      return null;
    };
    const faults = ['', '\n', '\r', '\0', '\r\r', '\n\r', 'x\rx'];
    for (let round = 0; round < 300; round++) {
      const lines: string[] = [];
      for (let l = rnd(40) + 1; l > 0; l--) lines.push('.'.repeat(rnd(2)) + 'a'.repeat(rnd(90)) + '\r\n');
      let text = lines.join('');
      const fault = faults[rnd(faults.length)]!;
      const at = rnd(text.length + 1);
      text = text.slice(0, at) + fault + text.slice(at);
      if (rnd(5) === 0) text = text.slice(0, -1); // ends in a CR
      const data = Buffer.from(text, 'latin1');
      const cuts: number[] = [];
      for (let c = rnd(7) + 1; c < data.length; c += rnd(97) + 1) cuts.push(c);
      for (const normalize of [false, true]) {
        const want = reference(data, normalize);
        const sc = new LineEndingScanner(normalize);
        const out: Buffer[] = [];
        let prev = 0;
        let ok = true;
        for (const c of [...cuts, data.length]) {
          const r = sc.push(data.subarray(prev, c));
          prev = c;
          if (!r) {
            ok = false;
            break;
          }
          out.push(r);
        }
        const tail = ok ? sc.end() : null;
        const got = tail ? Buffer.concat([...out, tail]) : null;
        expect(got?.toString('latin1') ?? null, JSON.stringify(text)).toBe(want?.toString('latin1') ?? null);
        if (!normalize) expect(sc.violation, JSON.stringify(text)).toBe(firstFault(text));
      }
    }
  });
});
