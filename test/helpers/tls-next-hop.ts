/**
 * TLS next hops for the relay's TLS-level tests: server certificates made by openssl under a test
 * CA (names in subjectAltName, as a real MX's), their TLSA data as `openssl` computes it, and a
 * small SMTP peer that speaks STARTTLS and announces REQUIRETLS (RFC 8689) — neither smtp-server
 * nor Postfix announce it, so the REQUIRETLS path needs a peer of its own.
 */
import { readFile, writeFile } from 'node:fs/promises';
import net, { isIP, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { run, type Issued } from './pki-openssl.js';

let serial = 5000;

/** A server certificate for `names` (DNS names or IP addresses; the first is the CN) signed by `ca`, EC P-256. */
export async function serverCert(dir: string, ca: Issued, names: string[]): Promise<Issued> {
  const base = join(dir, `server-${serial}`);
  const key = `${base}.key`;
  const cert = `${base}.pem`;
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${names[0]}`, '-out', `${base}.csr`]);
  await writeFile(`${base}.ext`, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n`);
  await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++), '-days', '30', '-sha256', '-extfile', `${base}.ext`, '-out', cert]);
  return { cert, key };
}

/** The SHA-256 of a certificate's SubjectPublicKeyInfo (TLSA 3 1 1 / 2 1 1 data), computed by openssl. */
export async function spkiSha256(certFile: string): Promise<Buffer> {
  const { stdout: pub } = await run('openssl', ['x509', '-in', certFile, '-noout', '-pubkey']);
  const der = join(certFile + '.spki.der');
  await writeFile(certFile + '.pub.pem', pub);
  await run('openssl', ['pkey', '-pubin', '-in', certFile + '.pub.pem', '-outform', 'DER', '-out', der]);
  const { stdout } = await run('openssl', ['dgst', '-sha256', '-r', der]);
  return Buffer.from(stdout.split(' ')[0]!, 'hex');
}

export interface RequireTlsPeer {
  port: number;
  /** MAIL FROM lines seen after STARTTLS, and the bodies received. */
  mail: string[];
  bodies: Buffer[];
  close(): Promise<void>;
}

/** An SMTP peer with STARTTLS (the given certificate) and REQUIRETLS in its EHLO after TLS. */
export async function requireTlsPeer(cert: Issued, opts: { announce?: boolean } = {}): Promise<RequireTlsPeer> {
  const context = { key: await readFile(cert.key), cert: await readFile(cert.cert) };
  const mail: string[] = [];
  const bodies: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((plain) => {
    sockets.add(plain);
    plain.on('close', () => sockets.delete(plain));
    plain.on('error', () => undefined);
    const serve = (s: net.Socket, secure: boolean) => {
      let buf = '';
      let data: Buffer[] | undefined;
      const onData = (chunk: Buffer) => {
        if (data) {
          data.push(chunk);
          const all = Buffer.concat(data);
          if (all.includes('\r\n.\r\n')) {
            bodies.push(all);
            data = undefined;
            s.write('250 2.0.0 Ok: queued\r\n');
          }
          return;
        }
        buf += chunk.toString('latin1');
        for (let nl = buf.indexOf('\r\n'); nl >= 0 && !data; nl = buf.indexOf('\r\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO') {
            const ext = secure ? [...(opts.announce === false ? [] : ['REQUIRETLS']), 'PIPELINING', '8BITMIME'] : ['STARTTLS', 'PIPELINING', '8BITMIME'];
            s.write(['250-peer.test', ...ext.slice(0, -1).map((e) => `250-${e}`), `250 ${ext.at(-1)}`].join('\r\n') + '\r\n');
          } else if (verb === 'STAR' && !secure) {
            s.write('220 2.0.0 go ahead\r\n');
            s.off('data', onData);
            const t = new tls.TLSSocket(s, { isServer: true, ...context });
            t.on('error', () => undefined);
            serve(t, true);
            return;
          } else if (verb === 'MAIL') {
            if (secure) mail.push(line);
            s.write('250 2.1.0 Ok\r\n');
          } else if (verb === 'RCPT') s.write('250 2.1.5 Ok\r\n');
          else if (verb === 'DATA') {
            data = [];
            s.write('354 go\r\n');
          } else if (verb === 'QUIT') s.end('221 2.0.0 Bye\r\n');
          else s.write('250 2.0.0 Ok\r\n');
        }
      };
      s.on('data', onData);
    };
    plain.write('220 peer.test ESMTP\r\n');
    serve(plain, false);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as AddressInfo).port,
    mail,
    bodies,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
