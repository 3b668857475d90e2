import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ParameterSyntaxError, ResumeFailedError, TransactionBusyError, TransactionChangedError, type Envelope } from '../../../src/core/index.js';
import { DataCheckpoints, decideMail, envelopeChange, isStoredRecipient, parseTransid, resumeAt, TRANSID_MAX } from '../../../src/smtpd/checkpoint.js';
import { PartialStore, Spool, type PartialOwner } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/config.js';

const envelope = (over: Partial<Envelope> = {}): Envelope => ({
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com' }],
  client: { address: '192.0.2.7', port: 1234, helo: 'mx.example.org', hostname: '[192.0.2.7]', protocol: 'ESMTP', trusted: false },
  receivedAt: new Date().toISOString(),
  ...over,
});
const owner: PartialOwner = { address: '192.0.2.7', helo: 'mx.example.org', tls: false };

describe('TRANSID syntax (RFC 1845 §2)', () => {
  it('takes <local@domain> of dot-separated atoms, case kept', () => {
    for (const ok of ['<a@b>', '<12345.67-89@Client.Example.ORG>', "<x!#$%&'*+^_`{|}~@y>", `<${'a'.repeat(TRANSID_MAX - 4)}@b>`]) {
      expect(parseTransid(ok)).toBe(ok);
    }
  });

  it('refuses hostile and malformed values with 501 5.5.4', () => {
    const bad: (string | true | undefined)[] = [
      true,
      undefined,
      '',
      'a@b',
      '<a@b',
      '<ab>',
      '<@b>',
      '<a@>',
      '<a@b@c>',
      '<a..b@c>',
      '<.a@c>',
      '<a.@c>',
      '<a b@c>',
      '<a\tb@c>',
      '<a\x00@c>',
      '<a\r\n@c>',
      '<a"b@c>',
      '<a/b@c>',
      '<a[b]@c>',
      '<a=b@c>',
      '<a;b@c>',
      '<é@c>',
      '<a@b>x',
      `<${'a'.repeat(TRANSID_MAX - 3)}@b>`,
      `<${'a'.repeat(10_000)}@b>`,
    ];
    for (const v of bad) {
      let err: unknown;
      try {
        parseTransid(v);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(v)).toBeInstanceOf(ParameterSyntaxError);
      expect((err as ParameterSyntaxError).reply).toMatchObject({ code: 501, status: '5.5.4' });
    }
  });
});

describe('a resumed transaction keeps its envelope', () => {
  it('names the MAIL FROM field that changed', () => {
    const e = envelope({ body: '8BITMIME', envid: 'abc' });
    expect(envelopeChange(e, { sender: 'Alice@example.org', body: '8BITMIME', envid: 'abc' })).toBeNull();
    expect(envelopeChange(e, { sender: 'mallory@example.org', body: '8BITMIME', envid: 'abc' })).toBe('sender');
    expect(envelopeChange(e, { sender: 'alice@example.org', envid: 'abc' })).toBe('BODY');
    expect(envelopeChange(e, { sender: 'alice@example.org', body: '8BITMIME', envid: 'abc', requireTls: true })).toBe('REQUIRETLS');
    expect(envelopeChange(e, { sender: 'alice@example.org', body: '8BITMIME', envid: 'abd' })).toBe('ENVID');
    expect(envelopeChange(e, { sender: 'alice@example.org', body: '8BITMIME', envid: 'abc', ret: 'HDRS' })).toBe('RET');
    expect(envelopeChange(envelope(), { sender: 'alice@example.org', body: '7BIT' })).toBeNull();
    expect(envelopeChange(envelope(), { sender: '' })).toBe('sender');
  });

  it('accepts RCPT TO again only for a stored recipient (any spelling of it)', () => {
    expect(isStoredRecipient(envelope().recipients, 'BOB@example.com')).toBe(true);
    expect(isStoredRecipient(envelope().recipients, 'dave@example.com')).toBe(false);
  });
});

describe('offsets and checkpoints during DATA', () => {
  let cleanup: () => Promise<void>;
  let store: PartialStore;

  beforeEach(async () => {
    const t = await tempDir('postern-ckpt-');
    cleanup = t.cleanup;
    store = new PartialStore(await Spool.open(t.dir));
  });
  afterEach(async () => {
    await cleanup();
  });

  /** Feed `chunks` as the DATA path does; return the offset a lost connection keeps. */
  async function cut(chunks: string[], every = Infinity): Promise<{ kept: number; checkpoints: number[] }> {
    const w = store.begin(owner, '<t@c>', envelope())!;
    const cp = new DataCheckpoints(w, every);
    const checkpoints: number[] = [];
    for (const c of chunks) {
      for (const piece of cp.pieces(Buffer.from(c, 'latin1'))) {
        w.write(piece);
        cp.stored(piece);
      }
      if (cp.due) {
        await cp.checkpoint();
        checkpoints.push(w.offset);
      }
    }
    return { kept: await w.keep(), checkpoints };
  }

  it('marks only right after a CRLF of the client data', async () => {
    expect((await cut(['Subject: a\r\n', 'body'])).kept).toBe(12);
    expect((await cut(['Subject: a\r\nbody line\r\npart'])).kept).toBe(23);
    expect((await cut(['no line end at all'])).kept).toBe(0);
  });

  it('never marks after a lone CR: the cut falls between CR and LF', async () => {
    expect((await cut(['a\r\nbc\r'])).kept).toBe(3);
    // The LF arrives first in the next chunk: that CRLF counts.
    expect((await cut(['a\r\nbc\r', '\nd'])).kept).toBe(7);
  });

  it('does not take a bare LF (normalise mode) for the end of a line', async () => {
    expect((await cut(['a\r\nb\nc'])).kept).toBe(3);
  });

  it('handles a cut inside CRLF "." and byte-by-byte delivery', async () => {
    // Un-dot-stuffed data: the client's "..x" line arrives as ".x"; a cut right after its dot
    // keeps the line before it.
    expect((await cut(['a\r\n', '.'])).kept).toBe(3);
    const bytes = 'l1\r\n.dot\r\n\r\nl4\r\nl5'.split('');
    expect((await cut(bytes)).kept).toBe(16);
  });

  it('checkpoints every N octets at the last line start, and announces only what is on disk', async () => {
    // 14 octets in, the checkpoint is at 12 (the start of the "cccc" line); 24 after 10 more.
    const { kept, checkpoints } = await cut(['aaaa\r\nbbbb\r\ncc', 'cc\r\ndd', 'dd\r\n', 'eeee'], 10);
    expect(checkpoints).toEqual([12, 24]);
    expect(kept).toBe(24);
  });

  it('answers a resumable TRANSID with 355 and its offset, refuses a changed sender, and waits for a busy one', async () => {
    expect(decideMail(store, owner, '<t@c>', { sender: 'alice@example.org' })).toEqual({ kind: 'fresh', transid: '<t@c>' });
    const w = store.begin(owner, '<t@c>', envelope())!;
    const busy = decideMail(store, owner, '<t@c>', { sender: 'alice@example.org' });
    expect(busy.kind === 'refuse' && busy.error).toBeInstanceOf(TransactionBusyError);
    w.write(Buffer.from('x\r\n'));
    w.mark(3);
    await w.keep();

    const changed = decideMail(store, owner, '<t@c>', { sender: 'mallory@example.org' });
    expect(changed.kind === 'refuse' && changed.error).toBeInstanceOf(TransactionChangedError);
    // Still there for the right MAIL FROM; nothing is opened until DATA.
    const d = decideMail(store, owner, '<t@c>', { sender: 'alice@example.org' });
    expect(d).toMatchObject({ kind: 'resume', offset: 3, reply: '355 3 is the transaction offset' });
    if (d.kind !== 'resume') return;
    expect(d.envelope.recipients.map((r) => r.address)).toEqual(['bob@example.com', 'carol@example.com']);
    expect(decideMail(store, owner, '<t@c>', { sender: 'alice@example.org' }).kind).toBe('resume');

    const writer = await resumeAt(store, owner, '<t@c>', 3);
    expect(writer.offset).toBe(3);
    // A second connection of the same client, at DATA meanwhile: not the same partial twice.
    await expect(resumeAt(store, owner, '<t@c>', 3)).rejects.toThrow(TransactionBusyError);
    await writer.keep();
    // The announced offset no longer matches what is stored: start again, never splice.
    await expect(resumeAt(store, owner, '<t@c>', 2)).rejects.toThrow(ResumeFailedError);
    const again = await resumeAt(store, owner, '<t@c>', 3);
    expect(again.offset).toBe(3);
    await again.abort();
  });
});
