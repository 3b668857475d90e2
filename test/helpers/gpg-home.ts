/**
 * A throw-away GnuPG home for gpg 2.2 as the independent OpenPGP peer: --batch, loopback
 * pinentry, every key trusted (--trust-model always: the tests check cryptography and bindings,
 * not gpg's web of trust). Each home has its own gpg-agent, stopped by close().
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GpgResult {
  stdout: Buffer;
  stderr: string;
  status: number;
}

export interface GpgHome {
  home: string;
  /** gpg with the given arguments; throws on a non-zero exit unless `allowFail`. */
  run(args: string[], input?: Buffer | string, allowFail?: boolean): GpgResult;
  /** A new key without passphrase; returns the primary fingerprint. */
  generate(uid: string, algo: 'ed25519' | 'rsa3072'): string;
  exportPublic(who: string): Buffer;
  exportSecret(who: string): Buffer;
  import(key: Buffer | string): void;
  /** A file in the home (for --verify SIG DATA and such). */
  file(name: string, data: Buffer | string): string;
  close(): void;
}

export function gpgAvailable(): string | null {
  const r = spawnSync('gpg', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0]! : null;
}

export function gpgHome(): GpgHome {
  const home = mkdtempSync(join(tmpdir(), 'postern-gpg-'));
  writeFileSync(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\n');
  const env = { ...process.env, GNUPGHOME: home };
  const run = (args: string[], input?: Buffer | string, allowFail = false): GpgResult => {
    const r = spawnSync('gpg', ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', ...args], {
      env,
      ...(input !== undefined ? { input } : {}),
      maxBuffer: 64 << 20,
    });
    const out = { stdout: r.stdout ?? Buffer.alloc(0), stderr: (r.stderr ?? Buffer.alloc(0)).toString('utf8'), status: r.status ?? -1 };
    if (out.status !== 0 && !allowFail) throw new Error(`gpg ${args.join(' ')} failed (${out.status}): ${out.stderr}`);
    return out;
  };
  const fingerprint = (who: string) => {
    const line = run(['--with-colons', '--fingerprint', who]).stdout.toString().split('\n').find((l) => l.startsWith('fpr:'));
    return line!.split(':')[9]!;
  };
  return {
    home,
    run,
    generate(uid, algo) {
      if (algo === 'ed25519') {
        run(['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
        const fpr = fingerprint(uid);
        run(['--quick-add-key', fpr, 'cv25519', 'encr', 'never']);
        return fpr;
      }
      run(['--quick-gen-key', uid, 'rsa3072', 'sign,cert', 'never']);
      const fpr = fingerprint(uid);
      run(['--quick-add-key', fpr, 'rsa3072', 'encr', 'never']);
      return fpr;
    },
    exportPublic: (who) => run(['--armor', '--export', who]).stdout,
    exportSecret: (who) => run(['--export-secret-keys', who]).stdout,
    import(key) {
      run(['--import'], key);
    },
    file(name, data) {
      const p = join(home, name);
      writeFileSync(p, data);
      return p;
    },
    close() {
      spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env, stdio: 'ignore' });
      rmSync(home, { recursive: true, force: true });
    },
  };
}
