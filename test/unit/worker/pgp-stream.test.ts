/**
 * OpenPGP's streamed seal (worker/methods/pgp-stream.ts) against the worker's Buffer path
 * (transformGroup) for the same multi-MB message, keys and settings: the same outer header (header
 * protection per RFC 9788 included), the same decrypted payload, the same signed entity; and the
 * cases that must take the Buffer path, said before any byte of the body is read.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.js';
import { openKeyStoreWithPortal, type KeyStore, type PortalDb } from '../../../src/keystore/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { multipartLayout, readEntity } from '../../../src/mime/entity.js';
import { splitHeader } from '../../../src/mime/header-fields.js';
import { generatePgpKey, pgpOpenMessage, preparePgpDecryptionKey, type ParsedPgpKey } from '../../../src/openpgp/index.js';
import { CryptoKeys, PgpKeys } from '../../../src/worker/index.js';
import { pgpStreamSeal } from '../../../src/worker/methods/pgp-stream.js';
import type { StreamSealInput, TransformContext } from '../../../src/worker/methods/types.js';
import { transformGroup } from '../../../src/worker/transform.js';
import { tempDir, testConfig } from '../../helpers/config.js';

const GINA = 'gina@partner.example';
const PAT = 'pat@example.com';

function bigMail(lines = 44_000): Buffer {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`line ${String(i).padStart(7, '0')} the quick brown fox jumps over the lazy dog, 0123456789`);
  return Buffer.from(
    `From: Pat <${PAT}>\r\nTo: Gina <${GINA}>\r\nSubject: the big report\r\nMessage-ID: <big@example.com>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=us-ascii\r\n\r\n${out.join('\r\n')}\r\n`,
    'latin1',
  );
}

/** The header block and the body read in 64 KB chunks, counting the reads. */
function split(message: Buffer): { head: Buffer; body: () => AsyncIterable<Buffer>; reads: { count: number } } {
  const { bodyOffset } = splitHeader(message);
  const rest = message.subarray(bodyOffset);
  const reads = { count: 0 };
  return {
    head: message.subarray(0, bodyOffset),
    reads,
    body: () => {
      reads.count++;
      return (async function* () {
        for (let at = 0; at < rest.length; at += 65_536) yield Buffer.from(rest.subarray(at, at + 65_536));
      })();
    },
  };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** The top header block with the multipart boundary named. */
function outerHead(message: Buffer): string {
  const boundary = readEntity(message).type.params.get('boundary')!;
  return message.subarray(0, splitHeader(message).bodyOffset).toString('latin1').split(boundary).join('BOUNDARY');
}

describe('OpenPGP streamed seal in the worker', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: KeyStore;
  let portal: PortalDb;
  let config: Config;
  let gina: ParsedPgpKey;
  const ctx = (): TransformContext => {
    const log = silentLogger();
    return { config, store, portal, keys: new CryptoKeys(store, () => config, log), pgp: new PgpKeys(store, log), lookups: store, log, queueId: 'q1', sender: PAT };
  };
  const input = (message: Buffer, over: Partial<StreamSealInput> = {}) => {
    const s = split(message);
    return { reads: s.reads, input: { head: s.head, body: s.body, recipients: [GINA], sign: true, encrypt: true, edits: null, ...over } satisfies StreamSealInput };
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-pgp-stream-'));
    // The legacy display is not streamed (a fallback of its own); RFC 9788 protection is.
    config = testConfig(dir, { header_protection: { mode: 'obscure', legacy_display: false } });
    ({ store, portal } = await openKeyStoreWithPortal(config));
    const [pat, g] = await Promise.all([generatePgpKey({ address: PAT, name: 'Pat' }), generatePgpKey({ address: GINA, name: 'Gina' })]);
    gina = g;
    await store.importPgpKey(pat, { source: 'import', actor: 'test' });
    await store.importPgpKey({ ...g, secretKey: undefined } as ParsedPgpKey, { source: 'import', actor: 'test' });
  });
  afterEach(async () => {
    await store?.close();
    portal?.close();
    await cleanup();
  });

  it('sign+encrypt with header protection: the outer header and the decrypted payload of the Buffer path, signed by Pat', async () => {
    const mail = bigMail();
    const c = ctx();
    const { input: i } = input(mail);
    const made = await pgpStreamSeal(i, c);
    expect(made.kind).toBe('stream');
    if (made.kind !== 'stream') return;
    expect(made.signed).toBe(true);
    const streamed = await collect(made.chunks());
    const buffered = await transformGroup(mail, { open: null, sign: 'pgp', encrypt: 'pgp', sendKeys: null }, [GINA], {}, c);
    if (buffered.kind !== 'ok') throw new Error(buffered.reason);
    expect(outerHead(streamed)).toBe(outerHead(buffered.body));
    expect(outerHead(streamed)).toMatch(/^Subject: \[\.\.\.\]\r$/m);

    const key = await preparePgpDecryptionKey(gina.secretKey!);
    const patPublic = (await store.pgpKeysFor(PAT))[0]!.publicKey;
    const open = (m: Buffer) => pgpOpenMessage(m, { keysFor: async () => [key], verificationKeysFor: async () => [patPublic] });
    const [a, b] = await Promise.all([open(streamed), open(buffered.body)]);
    expect(a.encryption?.status).toBe('decrypted');
    expect(a.signatures.map((s) => [s.status, s.address])).toEqual([['valid', PAT]]);
    expect(a.protectedHeader?.toString('latin1')).toMatch(/^Subject: the big report$/m);
    expect(a.message.equals(b.message)).toBe(true);
  }, 120_000);

  it('sign only: the multipart/signed of the Buffer path, its signed entity byte for byte', async () => {
    const mail = bigMail();
    const c = ctx();
    const made = await pgpStreamSeal(input(mail, { encrypt: false }).input, c);
    if (made.kind !== 'stream') throw new Error(made.reason);
    const streamed = await collect(made.chunks());
    const buffered = await transformGroup(mail, { open: null, sign: 'pgp', encrypt: null, sendKeys: null }, [GINA], {}, c);
    if (buffered.kind !== 'ok') throw new Error(buffered.reason);
    expect(outerHead(streamed)).toBe(outerHead(buffered.body));
    const first = (m: Buffer) => {
      const e = readEntity(m);
      return multipartLayout(e.body, e.type.params.get('boundary')!).parts[0]!;
    };
    expect(first(streamed).equals(first(buffered.body))).toBe(true);
  }, 120_000);

  it('no usable key for a recipient: fallback before the body is read, so the Buffer path can hold it with the reason', async () => {
    const { input: i, reads } = input(bigMail(100), { recipients: [GINA, 'nokey@partner.example'] });
    const made = await pgpStreamSeal(i, ctx());
    expect(made).toEqual({ kind: 'fallback', reason: 'no usable OpenPGP key for nokey@partner.example now' });
    expect(reads.count).toBe(0);
  });

  it('inline PGP: fallback before the body is read (the Buffer path makes it)', async () => {
    const { input: i, reads } = input(bigMail(100), { pgpInline: true });
    expect(await pgpStreamSeal(i, ctx())).toEqual({ kind: 'fallback', reason: 'OpenPGP inline is not streamed' });
    expect(reads.count).toBe(0);
  });

  it('8-bit text to be encrypted: fallback (the Buffer path re-encodes it to quoted-printable), no output made', async () => {
    const mail = Buffer.concat([bigMail(100), Buffer.from('Grüße\r\n', 'utf8')]);
    const made = await pgpStreamSeal(input(mail).input, ctx());
    expect(made).toEqual({ kind: 'fallback', reason: '8-bit or long lines to be signed: canonical form needs re-encoding' });
  });
});
