/**
 * The independent peers of the SignedData tests: openssl cms/smime and gpgsm, run on files in a
 * temp dir. gpgsm gets its own GNUPGHOME with the test root marked trusted (trustlist.txt),
 * CRL checks and dirmngr off, and loopback pinentry so keys import and sign without a terminal;
 * stop() ends the gpg-agent it started.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run a command with optional stdin; never rejects (the exit code is the verdict). */
export function runTool(cmd: string, args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', (e) => resolve({ code: -1, stdout: Buffer.alloc(0), stderr: e.message }));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    p.stdin.on('error', () => undefined); // a tool that exits without reading its input
    p.stdin.end(opts.input ?? '');
  });
}

export const openssl = (args: string[], input?: Buffer | string, cwd?: string) => runTool('openssl', args, { ...(input !== undefined ? { input } : {}), ...(cwd ? { cwd } : {}) });

export interface Gpgsm {
  home: string;
  run(args: string[], input?: Buffer | string): Promise<RunResult>;
  /** Import a certificate and key (PEM files) through a PKCS#12 that gpgsm 2.2 can read. */
  importKey(certFile: string, keyFile: string): Promise<RunResult>;
  stop(): Promise<void>;
}

export async function startGpgsm(dir: string, rootPem: string, otherCertPems: string[]): Promise<Gpgsm> {
  const home = join(dir, 'gnupg');
  await mkdir(home, { recursive: true, mode: 0o700 });
  await writeFile(join(home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-dirmngr\n');
  await writeFile(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\n');
  const env = { ...process.env, GNUPGHOME: home };
  const run = (args: string[], input?: Buffer | string) => runTool('gpgsm', ['--batch', ...args], { env, ...(input !== undefined ? { input } : {}) });
  await writeFile(join(dir, 'gpgsm-root.pem'), rootPem);
  const fpr = (await exec('openssl', ['x509', '-in', join(dir, 'gpgsm-root.pem'), '-noout', '-fingerprint', '-sha1'])).stdout.split('=')[1]!.trim();
  await writeFile(join(home, 'trustlist.txt'), `${fpr} S relax\n`);
  for (const [i, pem] of [rootPem, ...otherCertPems].entries()) {
    await writeFile(join(dir, `gpgsm-import-${i}.pem`), pem);
    await run(['--import', join(dir, `gpgsm-import-${i}.pem`)]);
  }
  return {
    home,
    run,
    async importKey(certFile, keyFile) {
      const p12 = join(dir, `gpgsm-${Date.now()}.p12`);
      // gpgsm 2.2 reads only the legacy PKCS#12 ciphers.
      await exec('openssl', ['pkcs12', '-export', '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-passout', 'pass:x', '-in', certFile, '-inkey', keyFile, '-out', p12]);
      // gpgsm may lose the passphrase to its freshly started agent on a loaded machine (seen once):
      // the import is idempotent, so it is tried again — the peer's flake, not ours.
      let r = await run(['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--import', p12], 'x\n');
      for (let attempt = 2; r.code !== 0 && attempt <= 3; attempt++) r = await run(['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--import', p12], 'x\n');
      return r;
    },
    async stop() {
      await runTool('gpgconf', ['--kill', 'gpg-agent'], { env });
    },
  };
}
