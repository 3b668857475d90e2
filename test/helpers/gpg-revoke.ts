/**
 * gpg 2.2 as the maker of revocations and of signatures at chosen times (--faked-system-time), for
 * the tests of OpenPGP key semantics; and a gpg home per describe(). `gpg --gen-revoke` and the
 * `revkey`/`revuid` commands of --edit-key refuse --batch; they are driven through --command-fd
 * with the answers gpg asks for.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { gpgAvailable, gpgHome, type GpgHome } from './gpg-home.js';

/**
 * A gpg home for the enclosing describe(): made before its tests, closed after. A missing gpg is
 * a failure, not a skip (npm test installs it: scripts/setup-test-deps.sh).
 */
export function useGpgHome(): () => GpgHome {
  let home: GpgHome | undefined;
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
    home = gpgHome();
  });
  afterAll(() => home?.close());
  return () => home!;
}

/** RFC 9580 §5.2.3.31 reason codes for a key: 0 no reason, 1 superseded, 2 compromised, 3 retired. */
export type KeyRevocationReason = 0 | 1 | 2 | 3;
/** gpg's menu numbers them otherwise: 0 no reason, 1 compromised, 2 superseded, 3 no longer used. */
const MENU: Record<KeyRevocationReason, string> = { 0: '0', 1: '2', 2: '1', 3: '3' };

/** YYYYMMDDThhmmss, as --faked-system-time takes it. */
export const gpgTime = (d: Date) => d.toISOString().replace(/[-:]/g, '').slice(0, 15);

/** gpg without --batch, answering its prompts from `answers` (one per line), at `at`. */
function interactive(home: GpgHome, at: Date, args: string[], answers: string[]): { stdout: Buffer; stderr: string } {
  const r = spawnSync('gpg', ['--no-tty', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', '--command-fd', '0', '--status-fd', '2', '--faked-system-time', gpgTime(at), ...args], {
    env: { ...process.env, GNUPGHOME: home.home },
    input: `${answers.join('\n')}\n`,
  });
  const stderr = (r.stderr ?? Buffer.alloc(0)).toString();
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')} failed (${r.status}): ${stderr}`);
  return { stdout: r.stdout, stderr };
}

/** A revocation certificate for the whole key (gpg --gen-revoke), made at `at`, not yet imported. */
export function genRevoke(home: GpgHome, fpr: string, reason: KeyRevocationReason, at: Date, text = 'test'): Buffer {
  // Create it? y; reason; description lines, ended by an empty one; is this okay? y
  return interactive(home, at, ['--armor', '--gen-revoke', fpr], ['y', MENU[reason], text, '', 'y']).stdout;
}

/** Revoke subkey number `n` (1 = the first) with a reason, at `at` (--edit-key: key n, revkey, save). */
export function revokeSubkey(home: GpgHome, fpr: string, n: number, reason: KeyRevocationReason, at: Date): void {
  interactive(home, at, ['--edit-key', fpr], [`key ${n}`, 'revkey', 'y', MENU[reason], 'test', '', 'y', 'save']);
}

/** Revoke one user id with a reason (--edit-key revuid: 0 no reason, 4 user id no longer valid), at `at`. */
export function revokeUid(home: GpgHome, fpr: string, uid: string, reason: 0 | 4, at: Date): void {
  const listing = home.run(['--with-colons', '--list-keys', fpr]).stdout.toString();
  const uids = listing.split('\n').filter((l) => l.startsWith('uid:'));
  const n = uids.findIndex((l) => l.split(':')[9] === uid) + 1;
  if (!n) throw new Error(`no user id ${uid} on ${fpr}`);
  interactive(home, at, ['--edit-key', fpr], [`uid ${n}`, 'revuid', 'y', String(reason), 'test', '', 'y', 'save']);
}

/** A clear-signed text made by `who` at `at` (what gpg --clearsign writes). */
export function clearsignAt(home: GpgHome, who: string, text: string, at: Date): string {
  return home.run(['--faked-system-time', gpgTime(at), '--local-user', who, '--clearsign'], text).stdout.toString();
}

/** A mail around a clear-signed text, dated when it was signed (Postern checks the Date: header against it). */
export function clearsignedMail(from: string, armored: string, at: Date): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: pat@example.com\r\nSubject: signed\r\nDate: ${at.toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}`);
}
