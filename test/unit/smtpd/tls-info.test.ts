import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cipherBits, sessionGroup, tlsInfo } from '../../../src/smtpd/tls-info.js';
import { tempDir } from '../../helpers/config.js';

describe('cipherBits', () => {
  it.each([
    ['TLS_AES_256_GCM_SHA384', [256, 256]],
    ['TLS_AES_128_GCM_SHA256', [128, 128]],
    ['TLS_CHACHA20_POLY1305_SHA256', [256, 256]],
    ['ECDHE-RSA-AES256-GCM-SHA384', [256, 256]],
    ['ECDHE-ECDSA-AES128-SHA256', [128, 128]],
    ['DHE-RSA-CAMELLIA256-SHA', [256, 256]],
    ['DES-CBC3-SHA', [112, 168]],
  ] as const)('%s is %j bits, as OpenSSL counts them', (name, bits) => {
    expect(cipherBits(name)).toEqual(bits);
  });
  it('says nothing of a cipher it does not know', () => {
    expect(cipherBits('NULL-SHA')).toBeUndefined();
  });
});

describe('sessionGroup', () => {
  it('reads kex_group ([19]) from a session, whatever comes before it', () => {
    // SEQUENCE { INTEGER 1, [2] { INTEGER 0x1c20 }, [19] { INTEGER 24 } }: secp384r1
    const der = Buffer.from('300e020101a20402021c20b303020118', 'hex');
    expect(sessionGroup(der)).toBe(24);
  });
  it('is undefined for damaged or foreign bytes, never an exception', () => {
    expect(sessionGroup(undefined)).toBeUndefined();
    expect(sessionGroup(Buffer.from('3005020101b3', 'hex'))).toBeUndefined();
    expect(sessionGroup(Buffer.from('0400', 'hex'))).toBeUndefined();
    expect(sessionGroup(Buffer.from('30ff', 'hex'))).toBeUndefined();
  });
});

describe('tlsInfo on a real server socket', () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  const keys: Record<string, { key: Buffer; cert: Buffer }> = {};
  beforeAll(async () => {
    dir = await tempDir('postern-tls-info-');
    for (const [name, alg] of [
      ['rsa', ['-newkey', 'rsa:2048']],
      ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1']],
    ] as const) {
      const key = join(dir.dir, `${name}.key`);
      const cert = join(dir.dir, `${name}.crt`);
      await promisify(execFile)('openssl', ['req', '-x509', ...alg, '-nodes', '-subj', '/CN=t', '-days', '1', '-keyout', key, '-out', cert]);
      keys[name] = { key: await readFile(key), cert: await readFile(cert) };
    }
  });
  afterAll(() => dir?.cleanup());

  /** The server's view of one handshake, and the client's (Node's client side tells the group). */
  async function handshake(kind: string, client: { ecdhCurve?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }) {
    return new Promise<{ info: ReturnType<typeof tlsInfo>; clientGroup: string | undefined }>((resolve, reject) => {
      let info: ReturnType<typeof tlsInfo> | undefined;
      let clientGroup: string | undefined;
      const done = () => info && clientGroup !== undefined && (server.close(), resolve({ info, clientGroup }));
      const server = createServer(keys[kind]!, (s: TLSSocket) => {
        info = tlsInfo(s);
        s.end();
        done();
      });
      server.listen(0, '127.0.0.1', () => {
        const c = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', rejectUnauthorized: false, ...client }, () => {
          clientGroup = (c.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? '';
          c.end();
          done();
        });
        c.on('error', reject);
      });
    });
  }

  it('TLS 1.3, RSA: the group the client negotiated, RSA-PSS with the key size', async () => {
    const { info, clientGroup } = await handshake('rsa', { ecdhCurve: 'X25519' });
    expect(clientGroup).toBe('X25519');
    expect(info).toMatchObject({ protocol: 'TLSv1.3', keyExchange: 'X25519', serverSignature: 'RSA-PSS (2048 bits)', serverDigest: 'SHA256' });
    expect(info.bits).toEqual(cipherBits(info.cipher));
  });

  it('TLS 1.3, EC P-384 certificate and P-521 group', async () => {
    const { info, clientGroup } = await handshake('ec', { ecdhCurve: 'P-521' });
    expect(clientGroup).toBe('secp521r1');
    expect(info).toMatchObject({ keyExchange: 'ECDHE (secp521r1)', serverSignature: 'ECDSA (secp384r1)', serverDigest: 'SHA384' });
  });

  it('TLS 1.2: protocol and cipher only', async () => {
    const { info } = await handshake('rsa', { maxVersion: 'TLSv1.2' });
    expect(info.protocol).toBe('TLSv1.2');
    expect(info.keyExchange).toBeUndefined();
    expect(info.serverSignature).toBeUndefined();
    expect(info.bits).toEqual(cipherBits(info.cipher));
  });
});
