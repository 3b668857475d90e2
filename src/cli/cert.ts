/**
 * `postern cert import|list|export|delete`: S/MIME certificates and their private keys. Import
 * checks every certificate with the rules of pki/ and says, per certificate, what it did or why
 * it refused; nothing is half-imported (a refused certificate leaves the store unchanged).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ldapCrlFetcher } from '../directory/index.js';
import { revocationCheckerFor, type KeyStore, type StoredCertificate } from '../keystore/index.js';
import { checkForImport, exportPkcs12, keyMatchesCertificate, parseCertificate, parseImport, type CertInfo, type PrivateKeyInfo, type RevocationChecker } from '../pki/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor, output, secretFromEnv, shortDate, withStore } from './keys-common.js';

const USAGE = 'cert import FILE… [--key FILE] [--password-env VAR] [--trust] | list [--address A] [--json] [--revocation] | export FINGERPRINT [--out FILE] [--with-key --password-env VAR] | delete FINGERPRINT [--with-key]';

export async function certCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    key: { type: 'string' },
    'password-env': { type: 'string' },
    trust: { type: 'boolean' },
    address: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    'with-key': { type: 'boolean' },
    revocation: { type: 'boolean' },
  });
  const [sub, ...args] = positionals;
  const password = secretFromEnv('--password-env', values['password-env'], 'password');
  switch (sub) {
    case 'import':
      if (!args.length) throw new UsageError('cert import needs at least one FILE');
      return withStore(values.config, (store) => importFiles(store, io, args, { key: values.key, password, trust: values.trust === true }));
    case 'list':
      return withStore(values.config, (store, config) => list(store, io, values.address, values.json === true, values.revocation === true ? revocationCheckerFor(config, store, undefined, ldapCrlFetcher({ servers: config.ldap.servers })) : null));
    case 'export':
      if (args.length !== 1) throw new UsageError('cert export needs one FINGERPRINT');
      if (values['with-key'] && !password) throw new UsageError('cert export --with-key needs --password-env VAR: private keys leave the store only in a password-protected PKCS#12');
      return withStore(values.config, (store) => exportCert(store, io, args[0]!, { out: values.out, withKey: values['with-key'] === true, password }));
    case 'delete':
      if (args.length !== 1) throw new UsageError('cert delete needs one FINGERPRINT');
      return withStore(values.config, (store) => remove(store, io, args[0]!, values['with-key'] === true));
    default:
      throw new UsageError(`unknown cert command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  }
}

function describe(c: Pick<CertInfo, 'subject' | 'emails' | 'fingerprint'>): string {
  return `${c.fingerprint.slice(0, 16)} ${c.subject}${c.emails.length ? ` <${c.emails.join(', ')}>` : ''}`;
}

async function importFiles(store: KeyStore, io: CliIo, files: string[], opts: { key?: string; password?: string; trust: boolean }): Promise<number> {
  const actor = cliActor();
  const certs: { file: string; cert: CertInfo }[] = [];
  const keys: { file: string; key: PrivateKeyInfo }[] = [];
  let failed = 0;
  for (const file of [...files, ...(opts.key ? [opts.key] : [])]) {
    try {
      const bundle = await parseImport(await readFile(file), { password: opts.password, filename: basename(file) });
      for (const cert of bundle.certificates) certs.push({ file, cert });
      for (const key of bundle.keys) keys.push({ file, key });
      if (!bundle.certificates.length && !bundle.keys.length) {
        io.err(`${file}: no certificate or key found`);
        failed++;
      }
    } catch (err) {
      io.err(`${file}: ${(err as Error).message}`);
      failed++;
    }
  }

  // A key is stored only with a certificate for it: from this import or already in the store.
  const stored = await store.listCertificates();
  const acceptedKeys: { file: string; key: PrivateKeyInfo }[] = [];
  for (const k of keys) {
    const match = certs.find((c) => keyMatchesCertificate(k.key, c.cert)) ?? stored.map((s) => ({ cert: parseCertificate(s.der) })).find((c) => keyMatchesCertificate(k.key, c.cert));
    if (!match) {
      io.err(`${k.file}: the private key matches none of the certificates given or stored; not imported`);
      failed++;
      continue;
    }
    acceptedKeys.push(k);
  }

  for (const { file, cert } of certs) {
    const check = checkForImport(cert, { trust: opts.trust });
    if (!check.ok) {
      for (const p of check.problems) io.err(`${file}: ${describe(cert)}: ${p}`);
      failed++;
      continue;
    }
    const { status } = await store.importCertificate(cert, { source: 'import', trusted: opts.trust && cert.isCA, actor });
    const anchor = opts.trust && cert.isCA;
    const what = status === 'duplicate' ? 'duplicate (already in the store; nothing changed)' : status === 'updated' ? 'updated (now a trust anchor)' : anchor ? 'added (trust anchor)' : 'added';
    io.out(`${what}: ${describe(cert)}`);
    for (const w of check.warnings) io.out(`  warning: ${w}`);
  }
  for (const { file, key } of acceptedKeys) {
    const status = await store.importPrivateKey(key, { actor });
    io.out(`${status === 'duplicate' ? 'duplicate (already in the store; nothing changed)' : 'added'}: private key (${key.key.algorithm}${key.key.bits ? ` ${key.key.bits}` : ''}${key.key.curve ? ` ${key.key.curve}` : ''}) from ${file}`);
  }
  return failed ? 1 : 0;
}

function flags(c: StoredCertificate, now = Date.now()): string {
  const f: string[] = [];
  if (c.isCA) f.push('ca');
  if (c.trusted) f.push('trusted');
  if (c.hasPrivateKey) f.push('key');
  if (c.notAfter.getTime() < now) f.push('expired');
  else if (c.notBefore.getTime() > now) f.push('not-yet-valid');
  // Learnt from mail for an address that already had another certificate: an admin should look.
  if (c.flag) f.push(c.flag);
  return f.join(',') || '-';
}

/**
 * The revocation status of each end-entity certificate (`--revocation`: asks OCSP responders and
 * fetches CRLs, so it takes network time): "good", "revoked", "unknown", or "-" for CAs and
 * certificates whose issuer is not in the store.
 */
async function revocationColumn(certs: StoredCertificate[], checker: RevocationChecker): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const byId = new Map(certs.filter((c) => c.isCA).map((c) => [c.subject, c] as const));
  await Promise.all(
    certs.map(async (c) => {
      const issuer = byId.get(c.issuer);
      if (c.isCA || !issuer) return out.set(c.fingerprint, '-');
      const r = await checker.check(parseCertificate(c.der), parseCertificate(issuer.der));
      out.set(c.fingerprint, r.status === 'revoked' ? `revoked${r.revocationReason ? ` (${r.revocationReason})` : ''} ${r.revokedAt ? shortDate(r.revokedAt) : ''}`.trim() : `${r.status} (${r.source})`);
    }),
  );
  return out;
}

async function list(store: KeyStore, io: CliIo, address: string | undefined, json: boolean, checker: RevocationChecker | null): Promise<number> {
  const certs = await store.listCertificates({ address });
  // Issuers are looked up among all CA certificates, not only those of the address listed.
  const revocation = checker ? await revocationColumn([...certs, ...(await store.listCertificates()).filter((c) => c.isCA && !certs.includes(c))], checker) : null;
  if (json) {
    for (const c of certs) {
      const { der: _der, id: _id, ...rest } = c;
      io.out(JSON.stringify({ ...rest, flags: flags(c).split(','), ...(revocation ? { revocation: revocation.get(c.fingerprint) } : {}) }));
    }
    return 0;
  }
  io.out(['FINGERPRINT', 'FLAGS', 'NOT AFTER', 'SOURCE', ...(revocation ? ['REVOCATION'] : []), 'SUBJECT / ADDRESSES'].join('\t'));
  for (const c of certs) {
    io.out([c.fingerprint.slice(0, 16), flags(c), shortDate(c.notAfter), c.source, ...(revocation ? [revocation.get(c.fingerprint) ?? '-'] : []), `${c.subject}${c.emails.length ? ` <${c.emails.join(', ')}>` : ''}`].join('\t'));
  }
  io.out(`-- ${certs.length} certificate${certs.length === 1 ? '' : 's'}`);
  return 0;
}

async function one(store: KeyStore, io: CliIo, fingerprint: string): Promise<StoredCertificate | null> {
  const found = await store.findCertificate(fingerprint);
  if (found.length === 1) return found[0]!;
  io.err(found.length ? `postern: ${fingerprint} is ambiguous (${found.length} certificates); give more of the fingerprint` : `postern: no certificate with fingerprint ${fingerprint}`);
  return null;
}

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

async function exportCert(store: KeyStore, io: CliIo, fingerprint: string, opts: { out?: string; withKey: boolean; password?: string }): Promise<number> {
  const c = await one(store, io, fingerprint);
  if (!c) return 1;
  if (!opts.withKey) {
    await output(io, opts.out, pem(c.der), false);
    return 0;
  }
  const pkcs8 = await store.privateKeyFor(c, 'export', cliActor());
  if (!pkcs8) {
    io.err(`postern: the store has no private key for ${c.fingerprint.slice(0, 16)}`);
    return 1;
  }
  const cert = parseCertificate(c.der);
  // The chain from the CA certificates we hold, so the recipient of the file can use it at once.
  const cas = (await store.listCertificates()).filter((s) => s.isCA).map((s) => parseCertificate(s.der));
  const chain = [cert];
  for (let issuer = cert; !issuer.selfIssued && chain.length < 8; ) {
    const next = cas.find((a) => a.subject === issuer.issuer);
    if (!next) break;
    chain.push(next);
    issuer = next;
  }
  const p12 = await exportPkcs12({ key: { pkcs8, spki: cert.spki, key: cert.key }, certificates: chain, password: opts.password!, friendlyName: c.emails[0] ?? c.subject });
  pkcs8.fill(0);
  await output(io, opts.out, p12, true);
  return 0;
}

async function remove(store: KeyStore, io: CliIo, fingerprint: string, withKey: boolean): Promise<number> {
  const c = await one(store, io, fingerprint);
  if (!c) return 1;
  const { keyDeleted } = await store.deleteCertificate(c, { withKey, actor: cliActor() });
  io.out(`deleted: ${describe(c)}${keyDeleted ? ' and its private key' : c.hasPrivateKey ? ' (its private key stays: --with-key deletes it too)' : ''}`);
  return 0;
}
