/**
 * The keystore's public face: what it publishes as files for the roles that must not open
 * postern.db (smtpd, the portal), and where. Like the internal CA's CRL, our users' OpenPGP public
 * keys are written by the processes that may open the store (the supervisor, at start and when
 * the database changes) into data_dir/public/, readable by the unprivileged account's group; the
 * portal serves WKD from that file and never sees the database, its sealed secrets or its audit log.
 *
 * This file is the keystore's second entry point, for those roles only: it imports nothing that
 * can unseal (no kek/, no SQLite), which test/integration/role-imports.test.ts checks.
 *
 * Beside it, our users' S/MIME certificates with their chains (the portal's key server serves them
 * per address); the chains are built here, by the publisher, so the portal needs no CA logic.
 *
 * Untrusted input: the file, when read back (checked field by field; a damaged file throws).
 * Secrets: none — public key bytes and certificates only (the portal checks each OpenPGP packet
 * again before serving; a certificate's DER must hash to its fingerprint).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
// Not through pki/index.js: that would load pkijs into the portal, which reads this file too.
import { chainOf, usableForEmail } from '../pki/chain.js';

/** Where the internal CA's current CRL is published for the portal to serve. */
export const internalCrlFile = (config: { data_dir: string }) => join(config.data_dir, 'crl', 'internal-ca.crl');

/** Where our users' OpenPGP public keys are published for the portal (WKD). */
export const publicKeysFile = (config: { data_dir: string }) => join(config.data_dir, 'public', 'openpgp-keys.json');

/** Where our users' S/MIME certificates and their chains are published for the portal. */
export const publicCertificatesFile = (config: { data_dir: string }) => join(config.data_dir, 'public', 'smime-certificates.json');

/** One published key: what WKD needs, nothing more. */
export interface PublicPgpKey {
  fingerprint: string;
  addresses: string[];
  canEncrypt: boolean;
  created: Date;
  publicKey: Buffer;
}

export class PublicFileError extends Error {
  override readonly name = 'PublicFileError';
}

const FORMAT = 'postern-openpgp-public-keys';
const VERSION = 1;

/** The keys the store holds a secret for (our users), as the published file's bytes. */
export function encodePublicKeys(keys: readonly PublicPgpKey[]): Buffer {
  const sorted = [...keys].sort((a, b) => a.fingerprint.localeCompare(b.fingerprint));
  return Buffer.from(
    `${JSON.stringify({
      format: FORMAT,
      version: VERSION,
      keys: sorted.map((k) => ({
        fingerprint: k.fingerprint,
        addresses: k.addresses,
        can_encrypt: k.canEncrypt,
        created: k.created.getTime(),
        public_key: k.publicKey.toString('base64'),
      })),
    })}\n`,
  );
}

/** Read back what encodePublicKeys wrote; PublicFileError when it is not that. */
export function decodePublicKeys(bytes: Buffer, file = 'public key file'): PublicPgpKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new PublicFileError(`${file}: not JSON (${(err as Error).message})`);
  }
  const d = doc as { format?: unknown; version?: unknown; keys?: unknown };
  if (d?.format !== FORMAT || d.version !== VERSION || !Array.isArray(d.keys)) throw new PublicFileError(`${file}: not a ${FORMAT} file, version ${VERSION}`);
  return d.keys.map((raw: unknown, i: number) => {
    const k = raw as Record<string, unknown>;
    const ok =
      typeof k?.fingerprint === 'string' && /^[0-9A-F]{32,64}$/i.test(k.fingerprint) &&
      Array.isArray(k.addresses) && k.addresses.every((a) => typeof a === 'string') &&
      typeof k.can_encrypt === 'boolean' && Number.isFinite(k.created) &&
      typeof k.public_key === 'string' && /^[A-Za-z0-9+/]+=*$/.test(k.public_key);
    if (!ok) throw new PublicFileError(`${file}: key ${i} is malformed`);
    return {
      fingerprint: k.fingerprint as string,
      addresses: k.addresses as string[],
      canEncrypt: k.can_encrypt as boolean,
      created: new Date(k.created as number),
      publicKey: Buffer.from(k.public_key as string, 'base64'),
    };
  });
}

/**
 * Write `bytes` to `file` atomically and durably (temporary file, fsync, rename, directory fsync),
 * so the portal reads either the old file or the new one whole. With `group`, the file is 0640 and
 * its directory 0750, both root's and that group's; otherwise 0600 and 0700.
 */
export async function writePublicFile(file: string, bytes: Buffer, group?: number): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Set, not left to the umask or to an earlier start with another `user:`.
  if (group !== undefined) await chown(dir, process.getuid?.() ?? 0, group);
  await chmod(dir, group === undefined ? 0o700 : 0o750);
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    if (group !== undefined) {
      await fh.chown(process.getuid?.() ?? 0, group);
      await fh.chmod(0o640);
    }
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** What publishPublicKeys reads: the store's OpenPGP keys (KeyStore has it; no KEK needed). */
export interface PublicKeySource {
  listPgpKeys(): Promise<{ hasSecret: boolean; publicKey: Buffer; info: { fingerprint: string; addresses: string[]; canEncrypt: boolean; created: Date } }[]>;
}

/**
 * Publish the keys `store` holds a secret for (our users': what WKD serves) unless the file already
 * holds exactly these bytes (`previous`, from the last call). Returns the bytes now published.
 */
export async function publishPublicKeys(store: PublicKeySource, config: { data_dir: string }, opts: { group?: number; previous?: Buffer } = {}): Promise<Buffer> {
  const keys = (await store.listPgpKeys())
    .filter((k) => k.hasSecret)
    .map((k) => ({ fingerprint: k.info.fingerprint, addresses: k.info.addresses, canEncrypt: k.info.canEncrypt, created: k.info.created, publicKey: k.publicKey }));
  const bytes = encodePublicKeys(keys);
  if (opts.previous?.equals(bytes)) return opts.previous;
  await writePublicFile(publicKeysFile(config), bytes, opts.group);
  return bytes;
}

// ---- S/MIME certificates (the portal's /certs/ pages) ------------------------------------------

/** A certificate of one of our users, as published: the fields the portal shows and serves. */
export interface PublicCertificate {
  /** SHA-256 of the DER, lower-case hex (the keystore's fingerprint). */
  fingerprint: string;
  addresses: string[];
  subject: string;
  issuer: string;
  /** Lower-case hex, no leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
  /** Fingerprints of its issuers, from the one above it upwards (entries of `authorities`). */
  chain: string[];
}

/** A CA certificate of some published certificate's chain. */
export interface PublicAuthority {
  fingerprint: string;
  subject: string;
  der: Buffer;
}

export interface PublicCertificates {
  certificates: PublicCertificate[];
  authorities: PublicAuthority[];
}

const CERT_FORMAT = 'postern-smime-certificates';
const CERT_VERSION = 1;
const FPR = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]+=*$/;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function encodePublicCertificates(doc: PublicCertificates): Buffer {
  const byFpr = <T extends { fingerprint: string }>(list: readonly T[]) => [...list].sort((a, b) => a.fingerprint.localeCompare(b.fingerprint));
  return Buffer.from(
    `${JSON.stringify({
      format: CERT_FORMAT,
      version: CERT_VERSION,
      certificates: byFpr(doc.certificates).map((c) => ({
        fingerprint: c.fingerprint,
        addresses: c.addresses,
        subject: c.subject,
        issuer: c.issuer,
        serial: c.serial,
        not_before: c.notBefore.getTime(),
        not_after: c.notAfter.getTime(),
        der: c.der.toString('base64'),
        chain: c.chain,
      })),
      authorities: byFpr(doc.authorities).map((a) => ({ fingerprint: a.fingerprint, subject: a.subject, der: a.der.toString('base64') })),
    })}\n`,
  );
}

/** The DER of a published entry, which must hash to its fingerprint (so a damaged file cannot mislabel). */
function derOf(raw: Record<string, unknown>): Buffer | null {
  if (typeof raw.fingerprint !== 'string' || !FPR.test(raw.fingerprint) || typeof raw.der !== 'string' || !BASE64.test(raw.der)) return null;
  const der = Buffer.from(raw.der, 'base64');
  return sha256(der) === raw.fingerprint ? der : null;
}

/** Read back what encodePublicCertificates wrote; PublicFileError when it is not that. */
export function decodePublicCertificates(bytes: Buffer, file = 'public certificate file'): PublicCertificates {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new PublicFileError(`${file}: not JSON (${(err as Error).message})`);
  }
  const d = doc as { format?: unknown; version?: unknown; certificates?: unknown; authorities?: unknown };
  if (d?.format !== CERT_FORMAT || d.version !== CERT_VERSION || !Array.isArray(d.certificates) || !Array.isArray(d.authorities)) {
    throw new PublicFileError(`${file}: not a ${CERT_FORMAT} file, version ${CERT_VERSION}`);
  }
  const authorities = d.authorities.map((raw: unknown, i: number): PublicAuthority => {
    const a = (raw ?? {}) as Record<string, unknown>;
    const der = derOf(a);
    if (!der || typeof a.subject !== 'string') throw new PublicFileError(`${file}: authority ${i} is malformed`);
    return { fingerprint: a.fingerprint as string, subject: a.subject, der };
  });
  const known = new Set(authorities.map((a) => a.fingerprint));
  const certificates = d.certificates.map((raw: unknown, i: number): PublicCertificate => {
    const c = (raw ?? {}) as Record<string, unknown>;
    const der = derOf(c);
    const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
    const ok =
      der && strings(c.addresses) && typeof c.subject === 'string' && typeof c.issuer === 'string' &&
      typeof c.serial === 'string' && /^[0-9a-f]+$/.test(c.serial) &&
      Number.isFinite(c.not_before) && Number.isFinite(c.not_after) &&
      strings(c.chain) && c.chain.every((f) => known.has(f));
    if (!ok) throw new PublicFileError(`${file}: certificate ${i} is malformed`);
    return {
      fingerprint: c.fingerprint as string,
      addresses: c.addresses as string[],
      subject: c.subject as string,
      issuer: c.issuer as string,
      serial: c.serial as string,
      notBefore: new Date(c.not_before as number),
      notAfter: new Date(c.not_after as number),
      der,
      chain: c.chain as string[],
    };
  });
  return { certificates, authorities };
}

/** What publishPublicCertificates reads (KeyStore has it; no KEK needed). */
export interface PublicCertificateSource {
  listCertificates(): Promise<
    {
      fingerprint: string; der: Buffer; subject: string; issuer: string; serial: string; emails: string[];
      notBefore: Date; notAfter: Date; isCA: boolean; trusted: boolean; extKeyUsage: string[] | null; hasPrivateKey: boolean;
    }[]
  >;
  /** Set when our internal CA revoked it: such a certificate is not published. */
  revocationOf?(issuerFingerprint: string, serial: string): Promise<unknown>;
}

/**
 * Chains walked for earlier publications, by leaf fingerprint: the supervisor publishes after
 * every change to the database (each signature's audit record is one), and a walk verifies a
 * signature per step. Valid while the store's CA certificates (and the day: a CA's validity ranks
 * it) stay the same.
 */
let walked: { cas: string; chains: Map<string, string[]> } = { cas: '', chains: new Map() };

/**
 * Our users' certificates as the published file's bytes: those the store holds the private key
 * for, usable for e-mail at `now`, not revoked by our CA, each with the chain the store can
 * prove. Expiry after publication is the portal's to check (it has notAfter).
 */
export async function publicCertificates(store: PublicCertificateSource, now = Date.now()): Promise<Buffer> {
  const all = await store.listCertificates();
  const cas = all.filter((c) => c.isCA);
  const caByFpr = new Map(cas.map((c) => [c.fingerprint, c]));
  const casKey = `${Math.floor(now / 86_400_000)}|${cas.map((c) => `${c.fingerprint}${c.trusted ? '+' : ''}`).join(',')}`;
  if (walked.cas !== casKey) walked = { cas: casKey, chains: new Map() };
  const authorities = new Map<string, PublicAuthority>();
  const certificates: PublicCertificate[] = [];
  for (const c of all) {
    if (!c.hasPrivateKey || !c.emails.length || !usableForEmail(c, now)) continue;
    let chain = walked.chains.get(c.fingerprint);
    if (!chain) walked.chains.set(c.fingerprint, (chain = chainOf(c, cas, now).issuers.map((a) => a.fingerprint)));
    const issuers = chain.map((f) => caByFpr.get(f)!);
    if (issuers[0] && store.revocationOf && (await store.revocationOf(issuers[0].fingerprint, c.serial))) continue;
    for (const a of issuers) authorities.set(a.fingerprint, { fingerprint: a.fingerprint, subject: a.subject, der: a.der });
    certificates.push({
      fingerprint: c.fingerprint, addresses: c.emails, subject: c.subject, issuer: c.issuer, serial: c.serial,
      notBefore: c.notBefore, notAfter: c.notAfter, der: c.der, chain,
    });
  }
  return encodePublicCertificates({ certificates, authorities: [...authorities.values()] });
}

/** Publish publicCertificates(store) unless the file already holds these bytes (`previous`). */
export async function publishPublicCertificates(store: PublicCertificateSource, config: { data_dir: string }, opts: { group?: number; previous?: Buffer; now?: number } = {}): Promise<Buffer> {
  const bytes = await publicCertificates(store, opts.now);
  if (opts.previous?.equals(bytes)) return opts.previous;
  await writePublicFile(publicCertificatesFile(config), bytes, opts.group);
  return bytes;
}
