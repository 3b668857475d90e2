/**
 * DANE matching (RFC 7672 §3, RFC 6698 §2.1) on certificates openssl made: DANE-EE and DANE-TA
 * records of each selector and matching type, PKIX usages ignored, a chain that does not lead to
 * the trust anchor, the name check that DANE-TA needs and DANE-EE does not.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daneMatch, type TlsaRecord } from '../../../src/relay/tls-peer.js';
import { tempDir } from '../../helpers/config.js';
import { opensslCa } from '../../helpers/pki-openssl.js';
import { serverCert, spkiSha256 } from '../../helpers/tls-next-hop.js';

describe('daneMatch', () => {
  let cleanup: () => Promise<void>;
  let leaf: X509Certificate;
  let ca: X509Certificate;
  let otherCa: X509Certificate;
  let foreignLeaf: X509Certificate;
  let leafSpki: Buffer;
  let caSpki: Buffer;

  beforeAll(async () => {
    const t = await tempDir('postern-dane-');
    cleanup = t.cleanup;
    const caFiles = await opensslCa(t.dir, 'DANE CA');
    const otherFiles = await opensslCa(t.dir, 'Other CA');
    const leafFiles = await serverCert(t.dir, caFiles, ['mx.example.net']);
    const foreignFiles = await serverCert(t.dir, otherFiles, ['mx.example.net']);
    leaf = new X509Certificate(await readFile(leafFiles.cert));
    ca = new X509Certificate(await readFile(caFiles.cert));
    otherCa = new X509Certificate(await readFile(otherFiles.cert));
    foreignLeaf = new X509Certificate(await readFile(foreignFiles.cert));
    // openssl's digest of the key, not ours: the test does not grade its own homework.
    leafSpki = await spkiSha256(leafFiles.cert);
    caSpki = await spkiSha256(caFiles.cert);
  });
  afterAll(async () => cleanup?.());

  const rec = (usage: number, selector: number, matchingType: number, data: Buffer): TlsaRecord => ({ usage, selector, matchingType, data });
  const sha = (alg: string, b: Buffer) => createHash(alg).update(b).digest();

  it('DANE-EE: every selector and matching type; no name check', () => {
    const spkiDer = leaf.publicKey.export({ type: 'spki', format: 'der' });
    for (const r of [rec(3, 1, 1, leafSpki), rec(3, 0, 1, sha('sha256', leaf.raw)), rec(3, 1, 2, sha('sha512', spkiDer)), rec(3, 1, 0, spkiDer), rec(3, 0, 0, leaf.raw)]) {
      expect(daneMatch([leaf], [r], 'some.other.name')).toBe(true);
    }
  });

  it('a record that does not match, of an unknown matching type, or of a PKIX usage: mismatch', () => {
    expect(daneMatch([leaf], [rec(3, 1, 1, caSpki)], 'mx.example.net')).toBe('TLSA record mismatch');
    expect(daneMatch([leaf], [rec(3, 1, 3, leafSpki)], 'mx.example.net')).toBe('TLSA record mismatch');
    expect(daneMatch([leaf], [rec(1, 1, 1, leafSpki), rec(0, 1, 1, caSpki)], 'mx.example.net')).toBe('TLSA record mismatch');
    expect(daneMatch([leaf], [rec(3, 1, 1, leafSpki.subarray(0, 31))], 'mx.example.net')).toBe('TLSA record mismatch');
    expect(daneMatch([], [rec(3, 1, 1, leafSpki)], 'mx.example.net')).toBe('Server certificate not trusted (no certificate)');
  });

  it('DANE-TA: the anchor is in the chain, the chain leads to it, and the certificate names the host', () => {
    expect(daneMatch([leaf, ca], [rec(2, 1, 1, caSpki)], 'mx.example.net')).toBe(true);
    expect(daneMatch([leaf, ca], [rec(2, 1, 1, caSpki)], 'mx2.example.net')).toBe('Server certificate not verified (mx2.example.net is not a name of the certificate)');
    // The anchor is not among the certificates the server sent.
    expect(daneMatch([leaf, otherCa], [rec(2, 1, 1, caSpki)], 'mx.example.net')).toBe('TLSA record mismatch');
    // A leaf of another CA presented with the anchor behind it: not signed by it.
    expect(daneMatch([foreignLeaf, ca], [rec(2, 1, 1, caSpki)], 'mx.example.net')).toBe('TLSA record mismatch (the chain does not lead to the trust anchor)');
  });
});
