/**
 * A throw-away GnuPG home for gpgsm 2.2 as an S/MIME peer: identities imported from PKCS#12
 * (re-exported with the SHA1/3DES PBEs gpgsm 2.2 reads), the test CA trusted, no dirmngr, no CRLs,
 * passphrases by loopback pinentry. Each home has its own gpg-agent, stopped by close().
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type EnvIdentity } from './smime-env-pki.js';

const PASS = 'gpgsm-test';

export function gpgsmAvailable(): string | null {
  try {
    const v = execFileSync('gpgsm', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n')[0]!;
    return v;
  } catch {
    return null;
  }
}

export interface GpgsmHome {
  home: string;
  import(who: EnvIdentity, caCertPath: string): void;
  trust(caCertPath: string): void;
  decrypt(der: Buffer): Buffer;
  encrypt(content: Buffer, to: string[], extra?: string[]): Buffer;
  close(): void;
}

export function gpgsmHome(): GpgsmHome {
  const home = mkdtempSync(join(tmpdir(), 'postern-gpgsm-'));
  writeFileSync(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\n');
  writeFileSync(join(home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-dirmngr\n');
  const env = { ...process.env, GNUPGHOME: home };
  const gpgsm = (args: string[], input?: Buffer | string) => run('gpgsm', ['--batch', '--pinentry-mode', 'loopback', ...args], { env, ...(input !== undefined ? { input } : {}) });
  return {
    home,
    import(who, caCertPath) {
      const p12 = join(home, `${who.name}.p12`);
      run('openssl', ['pkcs12', '-export', '-in', who.certPath, '-inkey', who.keyPath, '-certfile', caCertPath, '-out', p12,
        '-passout', `pass:${PASS}`, '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']);
      // gpgsm hands the passphrase to its freshly started agent; under a loaded machine that
      // handshake occasionally loses it ("decryption failed" for the right passphrase, seen once
      // in a full run). The import is idempotent, so it is tried again — the peer's flake, not ours.
      for (let attempt = 1; ; attempt++) {
        try {
          gpgsm(['--passphrase-fd', '0', '--import', p12], `${PASS}\n`);
          return;
        } catch (err) {
          if (attempt >= 3) throw err;
        }
      }
    },
    trust(caCertPath) {
      const fpr = new X509Certificate(readFileSync(caCertPath)).fingerprint; // SHA-1, colon separated
      writeFileSync(join(home, 'trustlist.txt'), `${fpr} S relax\n`);
    },
    decrypt(der) {
      const inPath = join(home, 'in.p7m');
      writeFileSync(inPath, der);
      // The passphrase comes from the fd; the message from a file (gpgsm reads one of them from stdin).
      return gpgsm(['--passphrase-fd', '0', '--decrypt', inPath], `${PASS}\n`);
    },
    encrypt(content, to, extra = []) {
      const inPath = join(home, 'plain.bin');
      const outPath = join(home, 'out.p7m');
      writeFileSync(inPath, content);
      rmSync(outPath, { force: true });
      gpgsm(['--encrypt', ...extra, ...to.flatMap((r) => ['-r', r]), '-o', outPath, inPath]);
      return readFileSync(outPath);
    },
    close() {
      try {
        execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env, stdio: 'ignore' });
      } catch {
        // no agent was started
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
