/**
 * `postern cert import|list|export|delete`: S/MIME certificates and their private keys. Import
 * checks every certificate with the rules of pki/ and says, per certificate, what it did or why
 * it refused; nothing is half-imported (a refused certificate leaves the store unchanged).
 */
import { readFile } from 'node:fs/promises';
import { ldapCrlFetcher } from '../directory/index.js';
import { certificateFlags, exportCertificateWithKey, importCertificates, revocationCheckerFor, revocationStates, type ImportInput, type KeyStore, type StoredCertificate } from '../keystore/index.js';
import { certificateToPem, type CertInfo, type RevocationChecker, type RevocationResult } from '../pki/index.js';
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
  const inputs: ImportInput[] = [];
  let failed = 0;
  for (const file of [...files, ...(opts.key ? [opts.key] : [])]) {
    try {
      inputs.push({ data: await readFile(file), name: file });
    } catch (err) {
      io.err(`${file}: ${(err as Error).message}`);
      failed++;
    }
  }
  const report = await importCertificates(store, inputs, { password: opts.password, trust: opts.trust, actor: cliActor() });
  for (const u of report.unreadable) io.err(`${u.input}: ${u.problem}`);
  for (const c of report.certificates) {
    if (c.status === 'refused') {
      for (const p of c.problems) io.err(`${c.input}: ${describe(c)}: ${p}`);
      continue;
    }
    const anchor = opts.trust && c.isCA;
    const what = c.status === 'duplicate' ? 'duplicate (already in the store; nothing changed)' : c.status === 'updated' ? 'updated (now a trust anchor)' : anchor ? 'added (trust anchor)' : 'added';
    io.out(`${what}: ${describe(c)}`);
    for (const w of c.warnings) io.out(`  warning: ${w}`);
  }
  for (const k of report.keys) {
    if (k.status === 'refused') io.err(`${k.input}: ${k.problem}`);
    else io.out(`${k.status === 'duplicate' ? 'duplicate (already in the store; nothing changed)' : 'added'}: private key (${k.algorithm}${k.bits ? ` ${k.bits}` : ''}${k.curve ? ` ${k.curve}` : ''}) from ${k.input}`);
  }
  return failed || report.failed ? 1 : 0;
}

function revocationText(r: RevocationResult | null | undefined): string {
  if (!r) return '-';
  return r.status === 'revoked' ? `revoked${r.revocationReason ? ` (${r.revocationReason})` : ''} ${r.revokedAt ? shortDate(r.revokedAt) : ''}`.trim() : `${r.status} (${r.source})`;
}

async function list(store: KeyStore, io: CliIo, address: string | undefined, json: boolean, checker: RevocationChecker | null): Promise<number> {
  const certs = await store.listCertificates({ address });
  // `--revocation` asks OCSP responders and fetches CRLs, so it takes network time.
  const revocation = checker ? await revocationStates(store, certs, checker) : null;
  const flags = (c: StoredCertificate) => certificateFlags(c).join(',') || '-';
  if (json) {
    for (const c of certs) {
      const { der: _der, id: _id, ...rest } = c;
      io.out(JSON.stringify({ ...rest, flags: flags(c).split(','), ...(revocation ? { revocation: revocationText(revocation.get(c.fingerprint)) } : {}) }));
    }
    return 0;
  }
  io.out(['FINGERPRINT', 'FLAGS', 'NOT AFTER', 'SOURCE', ...(revocation ? ['REVOCATION'] : []), 'SUBJECT / ADDRESSES'].join('\t'));
  for (const c of certs) {
    io.out([c.fingerprint.slice(0, 16), flags(c), shortDate(c.notAfter), c.source, ...(revocation ? [revocationText(revocation.get(c.fingerprint))] : []), `${c.subject}${c.emails.length ? ` <${c.emails.join(', ')}>` : ''}`].join('\t'));
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

async function exportCert(store: KeyStore, io: CliIo, fingerprint: string, opts: { out?: string; withKey: boolean; password?: string }): Promise<number> {
  const c = await one(store, io, fingerprint);
  if (!c) return 1;
  if (!opts.withKey) {
    await output(io, opts.out, certificateToPem(c.der), false);
    return 0;
  }
  const exported = await exportCertificateWithKey(store, c, opts.password!, cliActor());
  if (!exported) {
    io.err(`postern: the store has no private key for ${c.fingerprint.slice(0, 16)}`);
    return 1;
  }
  await output(io, opts.out, exported.pkcs12, true);
  return 0;
}

async function remove(store: KeyStore, io: CliIo, fingerprint: string, withKey: boolean): Promise<number> {
  const c = await one(store, io, fingerprint);
  if (!c) return 1;
  const { keyDeleted } = await store.deleteCertificate(c, { withKey, actor: cliActor() });
  io.out(`deleted: ${describe(c)}${keyDeleted ? ' and its private key' : c.hasPrivateKey ? ' (its private key stays: --with-key deletes it too)' : ''}`);
  return 0;
}
