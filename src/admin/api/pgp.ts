/**
 * The admin API's OpenPGP keys (issue 18): list, show, export the public key, import (keys,
 * keyrings, revocation certificates), export the secret key under a passphrase, delete. The work
 * is the keystore's (pgp-admin.ts), the same functions `postern pgp` calls.
 *
 * Untrusted input: armored text (capped, parsed by openpgp/, whose problems are one line each);
 * fingerprints in URLs (40 or 64 hex digits, checked by the schema).
 * Secrets: passphrases (of an import, of an export) and the secret key of an export — never in
 * the audit trail, a log or an error.
 */
import { exportPgpSecretKey, importPgpKeys, pgpKeyFlags, type KeyStore, type StoredPgpKey } from '../../keystore/index.js';
import { armorPublicKey, parsePgpKeys } from '../../openpgp/index.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute } from '../routes.js';
import { actorOf, LIST_QUERY, pageOf, EXPORT_PASSWORD_MIN, IMPORT_BODY, iso, PGP_FINGERPRINT, refusing, SMALL_BODY } from './keys-shared.js';

const EXAMPLE_FPR = 'A'.repeat(40);

function keyJson(k: StoredPgpKey) {
  const i = k.info;
  return {
    fingerprint: i.fingerprint,
    keyId: i.keyId,
    version: i.version,
    userIds: i.userIds,
    addresses: i.addresses,
    algorithm: i.algorithm,
    ...(i.bits ? { bits: i.bits } : {}),
    ...(i.curve ? { curve: i.curve } : {}),
    created: iso(i.created),
    expires: iso(i.expires),
    revoked: i.revoked,
    canEncrypt: i.canEncrypt,
    canSign: i.canSign,
    ...(i.encryptProblem ? { encryptProblem: i.encryptProblem } : {}),
    hasSecret: k.hasSecret,
    source: k.source,
    firstSeen: iso(k.firstSeen),
    flags: pgpKeyFlags(k),
  };
}

/** The key with exactly this fingerprint, or 404. */
async function keyOr404(store: KeyStore, fingerprint: string): Promise<StoredPgpKey> {
  const fpr = fingerprint.toUpperCase();
  const found = (await store.findPgpKey(fpr)).find((k) => k.info.fingerprint === fpr);
  if (!found) throw new ApiError(404, `no OpenPGP key with fingerprint ${fpr}`);
  return found;
}

async function list(req: ApiRequest, ctx: AdminContext) {
  const q = req.query as { address?: string; secret?: boolean; limit?: number; offset?: number };
  const all = (await ctx.store.listPgpKeys(q.address ? { address: q.address } : {})).filter((k) => q.secret === undefined || k.hasSecret === q.secret);
  const page = pageOf(all, q);
  return ok({ total: all.length, keys: page.map(keyJson) });
}

async function show(req: ApiRequest, ctx: AdminContext) {
  const k = await keyOr404(ctx.store, req.params.fingerprint!);
  // The store keeps the primary key's facts; the subkeys are read from the key itself.
  const parsed = (await parsePgpKeys(k.publicKey)).keys[0];
  const subkeys = (parsed?.info.subkeys ?? []).map((s) => ({ ...s, created: iso(s.created), expires: iso(s.expires) }));
  return ok({ ...keyJson(k), subkeys, armored: await armorPublicKey(k.publicKey) });
}

async function exportPublic(req: ApiRequest, ctx: AdminContext) {
  const k = await keyOr404(ctx.store, req.params.fingerprint!);
  return { file: { type: 'application/pgp-keys', name: `${k.info.fingerprint}.asc`, bytes: Buffer.from(await armorPublicKey(k.publicKey)) } };
}

async function importBody(req: ApiRequest, ctx: AdminContext) {
  const b = req.body as { armored: string; passphrase?: string };
  const report = await importPgpKeys(ctx.store, [{ data: Buffer.from(b.armored, 'utf8'), name: 'armored' }], { ...(b.passphrase !== undefined ? { passphrase: b.passphrase } : {}), actor: actorOf(req.caller) });
  for (const k of report.keys.filter((r) => r.status !== 'duplicate')) {
    await ctx.audit(req.caller, { action: k.status === 'revoked' ? 'pgp.revoke' : 'pgp.import', object: `pgp:${k.fingerprint}`, detail: `${k.status}: ${k.userIds[0] ?? '(no user id)'}${k.hasSecret && k.status !== 'revoked' ? ', with secret key' : ''}` });
  }
  if (!report.keys.length) throw new ApiError(400, `nothing imported: ${report.problems[0]?.problem ?? 'no OpenPGP key found'}`, report);
  return ok(report);
}

async function exportSecret(req: ApiRequest, ctx: AdminContext) {
  const k = await keyOr404(ctx.store, req.params.fingerprint!);
  if (!k.hasSecret) throw new ApiError(404, `the store has no secret key for ${k.info.fingerprint}`);
  const { passphrase } = req.body as { passphrase: string };
  const armored = await exportPgpSecretKey(ctx.store, k, passphrase, actorOf(req.caller));
  if (armored === undefined) throw new ApiError(404, `the store has no secret key for ${k.info.fingerprint}`);
  await ctx.audit(req.caller, { action: 'pgp.export-secret', object: `pgp:${k.info.fingerprint}`, detail: 'secret key, passphrase-protected' });
  return { file: { type: 'application/pgp-keys', name: `${k.info.fingerprint}-secret.asc`, bytes: Buffer.from(armored) } };
}

async function remove(req: ApiRequest, ctx: AdminContext) {
  const k = await keyOr404(ctx.store, req.params.fingerprint!);
  await ctx.store.deletePgpKey(k, actorOf(req.caller));
  await ctx.audit(req.caller, { action: 'pgp.delete', object: `pgp:${k.info.fingerprint}`, detail: `${k.info.userIds[0] ?? '(no user id)'}${k.hasSecret ? ', with its secret key' : ''}` });
  return ok({ deleted: k.info.fingerprint, secretDeleted: k.hasSecret });
}

const ROUTES: ApiRoute[] = [
  {
    method: 'GET',
    url: '/pgp',
    permission: 'keys.read',
    summary: 'List OpenPGP keys, by address, with a secret key or not',
    tag: 'keys',
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...LIST_QUERY,
          secret: { type: 'boolean', description: 'with (true) or without (false) a secret key in the store' },
        },
      },
    },
    example: {},
    handler: list,
  },
  {
    method: 'GET',
    url: '/pgp/:fingerprint',
    permission: 'keys.read',
    summary: 'An OpenPGP key in detail: user ids, subkeys, usability, the armored public key',
    tag: 'keys',
    schema: { params: PGP_FINGERPRINT },
    example: { params: { fingerprint: EXAMPLE_FPR } },
    handler: show,
  },
  {
    method: 'GET',
    url: '/pgp/:fingerprint/export',
    permission: 'keys.read',
    summary: 'Download the armored public key',
    tag: 'keys',
    schema: { params: PGP_FINGERPRINT },
    example: { params: { fingerprint: EXAMPLE_FPR } },
    handler: exportPublic,
  },
  {
    method: 'POST',
    url: '/pgp/import',
    permission: 'keys.change',
    summary: 'Import armored OpenPGP keys (public or secret) or a revocation certificate; the status of each key',
    tag: 'keys',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['armored'],
        properties: {
          armored: { type: 'string', minLength: 1, maxLength: IMPORT_BODY, description: 'ASCII-armored keys, a keyring, or a revocation certificate' },
          passphrase: { type: 'string', maxLength: 1024, description: 'unlocks passphrase-protected secret keys (the store keeps them sealed under its KEK)' },
        },
      },
    },
    bodyLimit: IMPORT_BODY + SMALL_BODY,
    example: { body: { armored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n' } },
    handler: importBody,
  },
  {
    method: 'POST',
    url: '/pgp/:fingerprint/export-secret',
    permission: 'keys.export_private',
    summary: 'Download the secret key, armored and protected by the passphrase given',
    tag: 'keys',
    schema: {
      params: PGP_FINGERPRINT,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['passphrase'],
        properties: { passphrase: { type: 'string', minLength: EXPORT_PASSWORD_MIN, maxLength: 1024, description: `protects the exported key (at least ${EXPORT_PASSWORD_MIN} characters)` } },
      },
    },
    bodyLimit: SMALL_BODY,
    example: { params: { fingerprint: EXAMPLE_FPR }, body: { passphrase: 'correct horse battery' } },
    handler: exportSecret,
  },
  {
    method: 'POST',
    url: '/pgp/:fingerprint/delete',
    permission: 'keys.change',
    summary: 'Delete an OpenPGP key (and its secret key, when the store has it)',
    tag: 'keys',
    schema: { params: PGP_FINGERPRINT },
    bodyLimit: SMALL_BODY,
    example: { params: { fingerprint: EXAMPLE_FPR } },
    handler: remove,
  },
];

/** Every route with the key modules' refusals turned into 400s. */
export const PGP_ROUTES: ApiRoute[] = ROUTES.map((r) => ({ ...r, handler: (req, ctx) => refusing(() => r.handler(req, ctx)) }));
