/**
 * `postern pgp import|list|export|delete|generate`: OpenPGP keys. Secret keys are stored
 * decrypted (the gateway must use them unattended) but sealed under the KEK; they leave the
 * store only passphrase-protected.
 */
import { readFile } from 'node:fs/promises';
import { exportPgpSecretKey, importPgpKeys, pgpKeyFlags, type ImportInput, type KeyStore, type StoredPgpKey } from '../keystore/index.js';
import { armorPublicKey, generatePgpKey } from '../openpgp/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor, output, secretFromEnv, shortDate, withStore } from './keys-common.js';

const USAGE =
  'pgp import FILE… [--passphrase-env VAR] | list [--address A] [--json] | export FINGERPRINT [--out FILE] [--secret --passphrase-env VAR] | delete FINGERPRINT | generate ADDRESS [--name NAME] [--type ecc|rsa] [--v6]';

export async function pgpCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    'passphrase-env': { type: 'string' },
    address: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    secret: { type: 'boolean' },
    name: { type: 'string' },
    type: { type: 'string' },
    v6: { type: 'boolean' },
  });
  const [sub, ...args] = positionals;
  const passphrase = secretFromEnv('--passphrase-env', values['passphrase-env'], 'passphrase');
  switch (sub) {
    case 'import':
      if (!args.length) throw new UsageError('pgp import needs at least one FILE');
      return withStore(values.config, (store) => importFiles(store, io, args, passphrase));
    case 'list':
      return withStore(values.config, (store) => list(store, io, values.address, values.json === true));
    case 'export':
      if (args.length !== 1) throw new UsageError('pgp export needs one FINGERPRINT');
      if (values.secret && !passphrase) throw new UsageError('pgp export --secret needs --passphrase-env VAR: secret keys leave the store only passphrase-protected');
      return withStore(values.config, (store) => exportKey(store, io, args[0]!, { out: values.out, secret: values.secret === true, passphrase }));
    case 'delete':
      if (args.length !== 1) throw new UsageError('pgp delete needs one FINGERPRINT');
      return withStore(values.config, (store) => remove(store, io, args[0]!));
    case 'generate': {
      if (args.length !== 1) throw new UsageError('pgp generate needs one ADDRESS');
      const type = values.type ?? 'ecc';
      if (type !== 'ecc' && type !== 'rsa') throw new UsageError('--type must be ecc (ed25519/cv25519; Ed25519/X25519 with --v6) or rsa (3072 bits)');
      return withStore(values.config, (store) => generate(store, io, args[0]!, values.name, type, values.v6 === true));
    }
    default:
      throw new UsageError(`unknown pgp command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  }
}

function describe(k: StoredPgpKey['info']): string {
  return `${k.fingerprint} ${k.userIds[0] ?? '(no user id)'}`;
}

async function importFiles(store: KeyStore, io: CliIo, files: string[], passphrase: string | undefined): Promise<number> {
  const inputs: ImportInput[] = [];
  let failed = 0;
  for (const file of files) {
    try {
      inputs.push({ data: await readFile(file), name: file });
    } catch (err) {
      io.err(`${file}: ${(err as Error).message}`);
      failed++;
    }
  }
  const report = await importPgpKeys(store, inputs, { passphrase, actor: cliActor() });
  for (const p of report.problems) io.err(`${p.input}: ${p.problem}`);
  for (const k of report.keys) {
    const what = k.status === 'duplicate' ? 'duplicate (already in the store; nothing changed)' : k.status;
    io.out(`${what}: ${k.fingerprint} ${k.userIds[0] ?? '(no user id)'}${k.hasSecret && k.status !== 'revoked' ? ' (with secret key)' : ''}`);
    for (const w of k.warnings) io.out(`  warning: ${w}`);
  }
  return failed || report.problems.length ? 1 : 0;
}

const flags = (k: StoredPgpKey) => pgpKeyFlags(k).join(',') || '-';

async function list(store: KeyStore, io: CliIo, address: string | undefined, json: boolean): Promise<number> {
  const keys = await store.listPgpKeys({ address });
  if (json) {
    for (const k of keys) io.out(JSON.stringify({ ...k.info, subkeys: undefined, source: k.source, firstSeen: k.firstSeen, flags: flags(k).split(',') }));
    return 0;
  }
  io.out(['FINGERPRINT', 'FLAGS', 'EXPIRES', 'SOURCE', 'USER IDS'].join('\t'));
  for (const k of keys) io.out([k.info.fingerprint, flags(k), shortDate(k.info.expires), k.source, k.info.userIds.join('; ')].join('\t'));
  io.out(`-- ${keys.length} key${keys.length === 1 ? '' : 's'}`);
  return 0;
}

async function one(store: KeyStore, io: CliIo, selector: string): Promise<StoredPgpKey | null> {
  const found = await store.findPgpKey(selector);
  if (found.length === 1) return found[0]!;
  io.err(found.length ? `postern: ${selector} is ambiguous (${found.length} keys); give the whole fingerprint` : `postern: no OpenPGP key ${selector}`);
  return null;
}

async function exportKey(store: KeyStore, io: CliIo, selector: string, opts: { out?: string; secret: boolean; passphrase?: string }): Promise<number> {
  const k = await one(store, io, selector);
  if (!k) return 1;
  if (!opts.secret) {
    await output(io, opts.out, await armorPublicKey(k.publicKey), false);
    return 0;
  }
  const armored = await exportPgpSecretKey(store, k, opts.passphrase!, cliActor());
  if (armored === undefined) {
    io.err(`postern: the store has no secret key for ${k.info.fingerprint}`);
    return 1;
  }
  await output(io, opts.out, armored, true);
  return 0;
}

async function remove(store: KeyStore, io: CliIo, selector: string): Promise<number> {
  const k = await one(store, io, selector);
  if (!k) return 1;
  await store.deletePgpKey(k, cliActor());
  io.out(`deleted: ${describe(k.info)}${k.hasSecret ? ' and its secret key' : ''}`);
  return 0;
}

/** v4 by default (gpg 2.2 reads it); --v6 makes an RFC 9580 key, which mail to its holder then uses AEAD for. */
async function generate(store: KeyStore, io: CliIo, address: string, name: string | undefined, type: 'ecc' | 'rsa', v6: boolean): Promise<number> {
  const key = await generatePgpKey({ address, name, type, v6 });
  const { key: stored } = await store.importPgpKey(key, { source: 'generated', actor: cliActor() });
  io.out(`generated: ${describe(stored.info)}${v6 ? ' (v6)' : ''}`);
  return 0;
}
