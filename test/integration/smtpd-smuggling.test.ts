/**
 * SMTP smuggling: every published fake end-of-DATA sequence, and every recorded DATA-phase
 * transcript, sent raw after DATA with a smuggled MAIL/RCPT/DATA behind it. Whatever happens,
 * at most one message may be queued and none may carry the smuggled sender.
 *
 * The expected verdict comes from an independent reading of the bytes: message 1 ends at the
 * first <CR><LF>.<CR><LF> (the only end of DATA); if what precedes it has a bare CR/LF or a NUL it
 * must be refused (550, connection closed) unless normalize_trusted applies to a trusted client,
 * where line endings are repaired but NUL still refused; otherwise it is queued byte-exactly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { SmtpTestClient } from '../helpers/smtp-client.js';
import { splitReceived, startTestSmtpd, type SmtpdHarness } from '../helpers/smtp-harness.js';

const DIR = resolve(import.meta.dirname, '../../../shared/corpora/smtp-smuggling');
const SMUGGLED = 'smuggled@example.net';

interface Case {
  name: string;
  /** The bytes sent after the 354, up to and including the final <CR><LF>.<CR><LF>. */
  data: Buffer;
}

const sequences = JSON.parse(readFileSync(join(DIR, 'eod-sequences.json'), 'utf8')) as { unique_sequences: Record<string, string[]> };
const cases: Case[] = [
  ...Object.entries(sequences.unique_sequences).map(([hex, names]) => ({
    name: `sequence ${hex} (${names.join(', ')})`,
    data: Buffer.concat([
      Buffer.from(`From: alice@example.org\r\nTo: bob@example.com\r\nSubject: smuggling ${hex}\r\n\r\nmessage 1 body`),
      Buffer.from(hex, 'hex'),
      Buffer.from(
        `MAIL FROM:<${SMUGGLED}>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nFrom: ${SMUGGLED}\r\nTo: bob@example.com\r\nSubject: SMUGGLED\r\n\r\n` +
          'if you can read this as a separate message, the server is vulnerable\r\n.\r\n',
      ),
    ]),
  })),
  ...readdirSync(join(DIR, 'transcripts'))
    .filter((f) => f.endsWith('.data.bin'))
    .sort()
    .map((f) => ({ name: `transcript ${f}`, data: readFileSync(join(DIR, 'transcripts', f)) })),
];

type Expect = { verdict: 'reject'; status: RegExp } | { verdict: 'queue'; body: Buffer };

/** What a correct gateway does with `data` (see the header comment). */
function oracle(data: Buffer, normalize: boolean): Expect {
  const full = '\r\n' + data.toString('latin1'); // DATA starts at the beginning of a line
  const end = full.indexOf('\r\n.\r\n');
  if (end < 0) throw new Error('test data has no end of DATA');
  // message 1, un-dot-stuffed the way smtp-server does (a dot after any LF)
  const body = full.slice(2, end + 2).replace(/(^|\n)\.(?=\.)/g, '$1');
  const bare = /\r(?!\n)|(?<!\r)\n/.test(body);
  if (body.includes('\0')) return { verdict: 'reject', status: bare && !normalize ? /^550 5\.(5\.2|6\.0) / : /^550 5\.6\.0 / };
  if (bare && !normalize) return { verdict: 'reject', status: /^550 5\.5\.2 / };
  return { verdict: 'queue', body: Buffer.from(body.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1') };
}

function modeSuite(title: string, over: Parameters<typeof startTestSmtpd>[0], normalize: boolean): void {
  describe(title, () => {
    let h: SmtpdHarness;
    beforeAll(async () => {
      // example.org (the transcripts' smuggled recipient) is internal, so a smuggled RCPT would pass.
      h = await startTestSmtpd({ internal_domains: ['example.com', 'example.org'], ...over });
    });
    afterAll(async () => {
      await h?.stop();
    });

    cases.forEach((c, i) => {
      it.concurrent(c.name, async ({ expect }) => {
        const sender = `case${i}@example.org`;
        const want = oracle(c.data, normalize);
        const client = await SmtpTestClient.connect(h.port);
        expect((await client.cmd('EHLO attacker.test')).code).toBe(250);
        expect((await client.cmd(`MAIL FROM:<${sender}>`)).code).toBe(250);
        expect((await client.cmd('RCPT TO:<bob@example.com>')).code).toBe(250);
        expect((await client.cmd('DATA')).code).toBe(354);
        client.write(Buffer.concat([c.data, Buffer.from('QUIT\r\n')])); // pipelined, as an attacker would
        const replies = await client.readUntilClosed();

        const entries = (await h.incoming()).filter((e) => e.meta.envelope.sender === sender || e.meta.envelope.sender === SMUGGLED);
        expect((await h.incoming()).some((e) => e.meta.envelope.sender === SMUGGLED)).toBe(false);
        expect(entries.length).toBeLessThanOrEqual(1);
        if (want.verdict === 'reject') {
          expect(replies[0]?.raw).toMatch(want.status);
          // we hang up: nothing the client pipelined after the message is answered
          expect(replies).toHaveLength(1);
          expect(entries).toHaveLength(0);
        } else {
          expect(replies[0]?.raw).toMatch(/^250 2\.0\.0 Ok: queued as \w+$/);
          expect(replies.slice(1).every((r) => r.code !== 250 && r.code !== 354)).toBe(true);
          expect(entries).toHaveLength(1);
          const { rest } = splitReceived(entries[0]!.body);
          expect(rest.toString('latin1')).toBe(want.body.toString('latin1'));
        }
      });
    });
  });
}

describe('SMTP smuggling', () => {
  it('covers 16 unique sequences and 16 transcripts', () => {
    if (cases.length !== 32) throw new Error(`expected 32 cases, got ${cases.length}`);
  });
  modeSuite('bare_newline: reject (trusted client)', {}, false);
  modeSuite('bare_newline: normalize_trusted, trusted client', { smtp: { bare_newline: 'normalize_trusted' } }, true);
  modeSuite('bare_newline: normalize_trusted, untrusted client', { smtp: { bare_newline: 'normalize_trusted' }, trusted_networks: ['10.9.9.0/24'] }, false);
});
