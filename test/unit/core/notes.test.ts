/**
 * The worker → relay notes: entries written before the notes were typed (the same keys, as
 * decide.ts and the relay wrote them) read back unchanged; damaged values are dropped without
 * making the entry unreadable; keys a newer version adds survive a read.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readNotes, rejectOutcome, type Envelope } from '../../../src/core/index.js';
import { decodeEntry, encodeEntry } from '../../../src/spool/record.js';

const envelope: Envelope = {
  sender: 'alice@example.com',
  recipients: [{ address: 'bob@partner.example' }],
  body: '7BIT',
  client: { address: '127.0.0.1', port: 1, helo: 'c', hostname: 'c', protocol: 'ESMTP', trusted: true },
  receivedAt: '2026-01-01T00:00:00.000Z',
};

/** A spool file as Postern wrote it before this change, byte for byte (POSTERN-SPOOL/1). */
function legacyFile(notes: unknown): Buffer {
  const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
  const head = `POSTERN-SPOOL/1\n${JSON.stringify({ id: 'Q1', envelope, group: 0, notes })}\n`;
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([Buffer.from(head), body, Buffer.from(`\nPOSTERN-END/1 ${body.length} ${sum}\n`)]);
}

describe('entry notes', () => {
  it.each([
    ['a policy refusal', { reject: 'no mail to competitors' }],
    ['a decrypted copy with its original', { decrypted: true, original: { part: 'headers', data: 'U3ViamVjdDogaGkNCg0K' } }],
    ['a policy copy', { copyOf: 'Q0' }],
    ['a notify_sender report', { noticeOf: 'Q0' }],
    ['a notice the relay queued', { dsn: 'failure', about: 'Q0' }],
    ['a held entry', { holdReason: 'held by policy', heldFrom: 'Q0' }],
  ])('reads %s written by the previous version unchanged', (_what, notes) => {
    expect(decodeEntry('f', legacyFile(notes)).meta.notes).toEqual(notes);
  });

  it('reads an entry without notes as before', () => {
    const file = Buffer.concat(encodeEntry({ id: 'Q1', envelope }, Buffer.from('x\r\n')));
    expect(decodeEntry('f', file).meta.notes).toBeUndefined();
  });

  it('drops damaged values, keeps the rest, and the entry stays deliverable', () => {
    const d = decodeEntry('f', legacyFile({ reject: 42, decrypted: 'yes', original: { part: 'whole', data: 'AAAA' }, dsn: 'bogus', copyOf: 'Q0' }));
    expect(d.meta.notes).toEqual({ copyOf: 'Q0' });
    expect(decodeEntry('f', legacyFile('not an object')).meta.notes).toBeUndefined();
    expect(decodeEntry('f', legacyFile([1, 2])).meta.notes).toBeUndefined();
  });

  it('keeps keys it does not know (written by a newer version)', () => {
    expect(readNotes({ reject: 'r', treatment: { encrypt: 'smime' } })).toEqual({ reject: 'r', treatment: { encrypt: 'smime' } });
  });

  it('round-trips the typed notes through a spool file', () => {
    const notes = { reject: 'encryption required, no key', rejectAs: 'bounced_encryption' as const };
    const file = Buffer.concat(encodeEntry({ id: 'Q1', envelope, notes }, Buffer.from('x\r\n')));
    expect(decodeEntry('f', file).meta.notes).toEqual(notes);
  });

  it('names the refusal: bounced_policy unless the worker said otherwise', () => {
    expect(rejectOutcome({ reject: 'r' })).toBe('bounced_policy');
    expect(rejectOutcome(undefined)).toBe('bounced_policy');
    expect(rejectOutcome({ reject: 'r', rejectAs: 'bounced_encryption' })).toBe('bounced_encryption');
    // Only refusals may be named there, and only held outcomes on held entries.
    expect(readNotes({ reject: 'r', rejectAs: 'relayed' })).toEqual({ reject: 'r' });
    expect(readNotes({ holdReason: 'x', heldAs: 'held_encryption' })).toEqual({ holdReason: 'x', heldAs: 'held_encryption' });
    expect(readNotes({ holdReason: 'x', heldAs: 'bounced_policy' })).toEqual({ holdReason: 'x' });
  });
});
