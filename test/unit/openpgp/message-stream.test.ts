/**
 * PGP/MIME as a stream (openpgp/message-stream.ts) against the Buffer path (message.ts) for the
 * same multi-MB message and keys: the same MIME structure (headers, parts, micalg, packet
 * sequence; only boundary, session key and signature differ), gpg 2.2 as the independent reader
 * (decrypts to the entity byte for byte with a good signature; verifies the detached signature
 * over the exact first part), openpgp.js as the reader of SEIPDv2 for a v6 key — and the output
 * produced while the entity is read, not after. pgpOpenMessage reads it back, armour over 4 MB too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartLayout, readEntity, splitMessage } from '../../../src/mime/entity.js';
import { splitHeader } from '../../../src/mime/header-fields.js';
import { newBoundary } from '../../../src/mime/index.js';
import {
  generatePgpKey, pgpEncryptMessage, pgpMessageChunks, pgpOpenMessage, pgpSignMessage, preparePgpDecryptionKey, preparePgpRecipient, preparePgpSigner, type PgpRecipient, type PgpSigner, type PgpStreamOptions,
} from '../../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

/** ~3 MB of numbered 7-bit CRLF lines: a lost or reordered chunk shows. */
function bigMail(lines = 44_000): Buffer {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`line ${String(i).padStart(7, '0')} the quick brown fox jumps over the lazy dog, 0123456789`);
  return Buffer.from(
    'From: Pat <pat@example.com>\r\nTo: Gina <gina@example.org>\r\nSubject: the big report\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n' +
      `Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${out.join('\r\n')}\r\n`,
    'latin1',
  );
}

/** The entity in 64 KB chunks, counting what was read. */
function source(entity: Buffer, read: { bytes: number }): AsyncIterable<Buffer> {
  return (async function* () {
    for (let at = 0; at < entity.length; at += 65_536) {
      const c = entity.subarray(at, at + 65_536);
      read.bytes += c.length;
      yield Buffer.from(c);
    }
  })();
}

/** The whole streamed message, and how much of the entity had been read when the output passed 1 MB. */
async function streamed(message: Buffer, opts: Omit<PgpStreamOptions, 'boundary'>): Promise<{ out: Buffer; readAtOneMb: number; total: number }> {
  const { outer, entity } = splitMessage(message);
  const read = { bytes: 0 };
  const parts: Buffer[] = [];
  let size = 0;
  let readAtOneMb = -1;
  for await (const c of pgpMessageChunks(outer, source(entity, read), { ...opts, boundary: newBoundary(entity) })) {
    parts.push(c);
    size += c.length;
    if (readAtOneMb < 0 && size > 1 << 20) readAtOneMb = read.bytes;
  }
  return { out: Buffer.concat(parts), readAtOneMb, total: entity.length };
}

/** The structure of a PGP/MIME message with the random parts named instead of shown. */
function skeleton(message: Buffer): string {
  const e = readEntity(message);
  const boundary = e.type.params.get('boundary')!;
  const { bodyOffset } = splitHeader(message);
  const named = (s: string) => s.split(boundary).join('BOUNDARY');
  const layout = multipartLayout(e.body, boundary);
  const parts = layout.parts.map((p) => {
    const { bodyOffset: at } = splitHeader(p);
    const body = p.subarray(at).toString('latin1');
    // Armour: its first and last lines; the text between is random.
    const armour = body.startsWith('-----BEGIN PGP') ? `${body.split('\r\n')[0]} … ${body.trimEnd().split('\r\n').at(-1)}` : `${body.length} bytes`;
    return `${p.subarray(0, at).toString('latin1')}${armour}`;
  });
  return [named(message.subarray(0, bodyOffset).toString('latin1')), named(layout.preamble.toString('latin1')), ...parts, named(layout.epilogue.toString('latin1'))].join('\n====\n');
}

const armourOf = (message: Buffer, part: number) => {
  const e = readEntity(message);
  return readEntity(multipartLayout(e.body, e.type.params.get('boundary')!).parts[part]!).body;
};

describe('PGP/MIME as a stream', () => {
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let gpg: GpgHome;
  let gina: PgpRecipient;
  let ginaFpr: string;
  let pat: PgpSigner;
  let patPublic: Buffer;
  const mail = bigMail();
  const entity = splitMessage(mail).entity;

  beforeAll(async () => {
    gpg = gpgHome();
    ginaFpr = gpg.generate('Gina <gina@example.org>', 'ed25519');
    gina = await preparePgpRecipient(gpg.exportPublic(ginaFpr));
    const made = await generatePgpKey({ address: 'pat@example.com', name: 'Pat' });
    gpg.import(made.publicKey);
    pat = await preparePgpSigner(made.secretKey!);
    patPublic = made.publicKey;
  }, 60_000);
  afterAll(() => gpg?.close());

  it('sign+encrypt of a 3 MB message: the Buffer path’s structure and packets; gpg decrypts it to the entity with a good signature; output made while reading', async () => {
    expect(entity.length).toBeGreaterThan(3_000_000);
    const { out, readAtOneMb, total } = await streamed(mail, { signer: pat, recipients: [gina] });
    const buffered = await pgpEncryptMessage(mail, [gina], { signer: pat });
    expect(skeleton(out)).toBe(skeleton(buffered));
    expect(out.toString('latin1')).toMatch(/^From: Pat <pat@example.com>\r\n[\s\S]*\r\nMIME-Version: 1\.0\r\nContent-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";/);
    expect(readAtOneMb).toBeGreaterThan(0);
    expect(readAtOneMb).toBeLessThan(total);

    // Streamed packets have partial lengths: gpg's listing stops at the literal data of unknown length.
    const listing = (m: Buffer) => gpg.run(['--list-packets'], armourOf(m, 1), true).stdout.toString();
    const kinds = (l: string) => (l.match(/^:[\w ]+ packet:/gm) ?? []).slice(0, 4);
    const onePass = (l: string) => l.match(/sigclass.*/)?.[0];
    const list = listing(out);
    expect(kinds(list)).toEqual([':pubkey enc packet:', ':encrypted data packet:', ':onepass_sig packet:', ':literal data packet:']);
    expect(kinds(list)).toEqual(kinds(listing(buffered)));
    expect(onePass(list)).toBe(onePass(listing(buffered)));
    expect(list).toMatch(/mdc_method: 2/);
    expect(list).not.toMatch(/compressed packet/);
    // The CRC-24 line for v4 peers, as the Buffer path writes it.
    expect(armourOf(out, 1).toString('latin1')).toMatch(/\r\n=[A-Za-z0-9+/]{4}\r\n-----END PGP MESSAGE-----$/);

    const r = gpg.run(['--decrypt'], armourOf(out, 1));
    expect(r.stderr).toMatch(/Good signature from "Pat <pat@example.com>"/);
    expect(r.stdout.equals(entity)).toBe(true);
  }, 120_000);

  it('encrypt only: no signature inside; gpg decrypts it to the entity', async () => {
    const { out } = await streamed(mail, { recipients: [gina] });
    expect(skeleton(out)).toBe(skeleton(await pgpEncryptMessage(mail, [gina])));
    const r = gpg.run(['--decrypt'], armourOf(out, 1));
    expect(r.stderr).not.toMatch(/signature/i);
    expect(r.stdout.equals(entity)).toBe(true);
  }, 120_000);

  it('sign only: multipart/signed as the Buffer path makes it (same micalg, text-mode signature); gpg verifies it over the exact first part', async () => {
    const { out, readAtOneMb, total } = await streamed(mail, { signer: pat });
    const buffered = await pgpSignMessage(mail, pat);
    expect(skeleton(out)).toBe(skeleton(buffered));
    expect(readEntity(out).type.params.get('micalg')).toBe(readEntity(buffered).type.params.get('micalg'));
    expect(readAtOneMb).toBeLessThan(total);
    const e = readEntity(out);
    const [signedPart, sigPart] = multipartLayout(e.body, e.type.params.get('boundary')!).parts;
    expect(signedPart!.equals(entity)).toBe(true);
    const sig = readEntity(sigPart!).body;
    const classes = (s: Buffer) => gpg.run(['--list-packets'], s, true).stdout.toString().match(/sigclass 0x\w+/g);
    expect(classes(sig)).toEqual(classes(armourOf(buffered, 1)));
    const r = gpg.run(['--verify', gpg.file('sig.asc', sig), gpg.file('signed.eml', signedPart!)]);
    expect(r.stderr).toMatch(/Good signature from "Pat <pat@example.com>"/);
  }, 120_000);

  it('to a v6 key: SEIPDv2 (AEAD) as the Buffer path chooses; openpgp.js decrypts it with a valid signature', async () => {
    const vera = await generatePgpKey({ address: 'vera@example.com', name: 'Vera', v6: true });
    const toVera = await preparePgpRecipient(vera.publicKey);
    expect(toVera.aead).toBe(true);
    const small = bigMail(2_000);
    const { out } = await streamed(small, { signer: pat, recipients: [toVera] });
    expect(skeleton(out)).toBe(skeleton(await pgpEncryptMessage(small, [toVera], { signer: pat })));
    // No CRC-24 for a v6 reader, as encryptData() leaves it out there.
    expect(armourOf(out, 1).toString('latin1')).not.toMatch(/\r\n=[A-Za-z0-9+/]{4}\r\n-----END/);
    const opened = await pgpOpenMessage(out, {
      keysFor: async () => [await preparePgpDecryptionKey(vera.secretKey!)],
      verificationKeysFor: async () => [gpg.exportPublic('pat@example.com')],
    });
    expect(opened.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv2' });
    expect(opened.signatures.map((s) => s.status)).toEqual(['valid']);
    expect(opened.message.subarray(splitHeader(opened.message).bodyOffset).equals(splitMessage(small).entity.subarray(splitHeader(splitMessage(small).entity).bodyOffset))).toBe(true);
  }, 120_000);

  it('a receiving Postern opens it (pgpOpenMessage), its armour over 4 MB too: decrypted, Pat\'s valid signature, the entity byte for byte', async () => {
    const large = bigMail(60_000);
    const { out } = await streamed(large, { signer: pat, recipients: [gina] });
    expect(armourOf(out, 1).length).toBeGreaterThan(5 << 20);
    const key = await preparePgpDecryptionKey(gpg.exportSecret(ginaFpr));
    const opened = await pgpOpenMessage(out, { keysFor: async () => [key], verificationKeysFor: async () => [patPublic] });
    expect(opened.encryption).toMatchObject({ status: 'decrypted', packet: 'seipdv1' });
    expect(opened.signatures.map((s) => [s.status, s.address])).toEqual([['valid', 'pat@example.com']]);
    expect(splitMessage(opened.message).entity.equals(splitMessage(large).entity)).toBe(true);
  }, 120_000);

  it('a source that fails midway gives a PgpError, an output left early closes the source; neither leaves an unhandled rejection (vitest fails on one)', async () => {
    for (const opts of [{ signer: pat }, { recipients: [gina] }, { signer: pat, recipients: [gina] }] as const) {
      const state = { closed: false };
      const source = (fail: boolean) =>
        (async function* () {
          try {
            yield Buffer.from('Content-Type: text/plain\r\n\r\n');
            for (let i = 0; i < 40; i++) yield Buffer.alloc(65_536, 0x61);
            if (fail) throw new Error('the spool file went away');
          } finally {
            state.closed = true;
          }
        })();
      const run = async () => {
        for await (const _ of pgpMessageChunks(Buffer.from('From: a@example.com\r\n'), source(true), { ...opts, boundary: 'b' }));
      };
      await expect(run()).rejects.toMatchObject({ name: 'PgpError', code: 'recipients' in opts ? 'encrypt-failed' : 'sign-failed', message: /the spool file went away/ });
      expect(state.closed).toBe(true);

      state.closed = false;
      let size = 0;
      for await (const c of pgpMessageChunks(Buffer.from('From: a@example.com\r\n'), source(false), { ...opts, boundary: 'b' })) if ((size += c.length) > 300_000) break;
      expect(state.closed).toBe(true);
    }
    // Whatever openpgp.js still settles after the output was left goes by before the test ends.
    await new Promise((r) => setTimeout(r, 200));
  });

  it('the header edits apply to the whole top header block', async () => {
    const { outer, entity: ent } = splitMessage(bigMail(100));
    const parts: Buffer[] = [];
    const edit = (h: Buffer) => Buffer.from(h.toString('latin1').replace('\r\n\r\n', '\r\nX-Edited: yes\r\n\r\n'), 'latin1');
    for await (const c of pgpMessageChunks(outer, source(ent, { bytes: 0 }), { recipients: [gina], boundary: newBoundary(ent), editHeader: edit })) parts.push(c);
    const head = Buffer.concat(parts).subarray(0, splitHeader(Buffer.concat(parts)).bodyOffset).toString('latin1');
    expect(head).toMatch(/^From: Pat[\s\S]*Content-Type: multipart\/encrypted;[\s\S]*\r\nX-Edited: yes\r\n\r\n$/);
  }, 60_000);
});
