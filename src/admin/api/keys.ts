/**
 * The admin API's certificates (issue 18): list, show, export, import, export with the private key
 * (PKCS#12 under a password), delete, and trust or distrust a CA certificate. The work is the
 * keystore's (cert-admin.ts), the same functions `postern cert` calls.
 *
 * Untrusted input: every body (PEM text, base64 DER / PKCS#7 / PKCS#12, passwords), capped per
 * route and parsed by pki/; fingerprints in URLs (64 hex digits, checked by the schema).
 * Secrets: import and export passwords and the private keys of an export — never in the audit
 * trail, a log or an error.
 */
import {
  certificateChain, certificateFlags, exportCertificateWithKey, importCertificates, internalCa, offlineRevocationChecker, revocationCheckerFor, revocationStates,
  type CertImportReport, type KeyStore, type StoredCertificate,
} from '../../keystore/index.js';
import { ldapCrlFetcher } from '../../directory/index.js';
import type { Config } from '../../config/types.js';
import { certificateToPem, type RevocationChecker, type RevocationResult } from '../../pki/index.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute } from '../routes.js';
import { actorOf, LIST_QUERY, pageOf, CERT_FINGERPRINT, EXPORT_PASSWORD_MIN, IMPORT_BODY, iso, refusing, SMALL_BODY } from './keys-shared.js';

const DAY = 86_400_000;
const EXAMPLE_FP = 'a'.repeat(64);

/** A certificate as the list shows it (the fields of `postern cert list`). */
function certificateJson(c: StoredCertificate, revocation?: RevocationResult | null) {
  return {
    fingerprint: c.fingerprint,
    subject: c.subject,
    addresses: c.emails,
    issuer: c.issuer,
    serial: c.serial,
    notBefore: iso(c.notBefore),
    notAfter: iso(c.notAfter),
    isCA: c.isCA,
    trusted: c.trusted,
    hasKey: c.hasPrivateKey,
    source: c.source,
    flags: certificateFlags(c),
    ...(revocation !== undefined ? { revocation: revocation && revocationJson(revocation) } : {}),
  };
}

function revocationJson(r: RevocationResult) {
  return {
    status: r.status,
    ...(r.source ? { source: r.source } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.revokedAt ? { revokedAt: iso(r.revokedAt) } : {}),
    ...(r.revocationReason ? { revocationReason: r.revocationReason } : {}),
  };
}

/** The certificate with exactly this fingerprint, or 404. */
export async function certificateOr404(store: KeyStore, fingerprint: string): Promise<StoredCertificate> {
  const fp = fingerprint.toLowerCase();
  const found = (await store.findCertificate(fp)).find((c) => c.fingerprint === fp);
  if (!found) throw new ApiError(404, `no certificate with fingerprint ${fp}`);
  return found;
}

/**
 * The online checker of the config in force: one per config (a reload makes a new one), since its
 * caches are the point — a second look at a page asks no responder again.
 */
const onlineCheckers = new WeakMap<Config, RevocationChecker>();
/** An online check asks a responder or fetches a CRL per certificate: pages of at most this many (`limit`). */
export const ONLINE_PAGE = 100;

/** Which checker answers: offline (the store's records and imported CRLs), online (OCSP and CRL downloads too), or none. */
function checkerFor(mode: unknown, ctx: AdminContext): RevocationChecker | null {
  if (mode === 'none') return null;
  if (mode !== 'online') return offlineRevocationChecker(ctx.store);
  const config = ctx.config();
  let checker = onlineCheckers.get(config);
  if (!checker) onlineCheckers.set(config, (checker = revocationCheckerFor(config, ctx.store, undefined, ldapCrlFetcher({ servers: config.ldap.servers }))));
  return checker;
}

const REVOCATION_MODE = { type: 'string', enum: ['offline', 'online', 'none'], default: 'offline', description: 'offline: the internal CA\'s records and imported CRLs; online: OCSP and CRL downloads too (takes network time)' };

async function list(req: ApiRequest, ctx: AdminContext) {
  const q = req.query as { address?: string; ca?: boolean; key?: boolean; expiringWithin?: number; revocation?: string; limit?: number; offset?: number };
  const now = Date.now();
  const all = (await ctx.store.listCertificates(q.address ? { address: q.address } : {})).filter(
    (c) =>
      (q.ca === undefined || c.isCA === q.ca) &&
      (q.key === undefined || c.hasPrivateKey === q.key) &&
      (q.expiringWithin === undefined || (c.notAfter.getTime() >= now && c.notAfter.getTime() <= now + q.expiringWithin * DAY)),
  );
  const page = pageOf(all, q);
  if (q.revocation === 'online' && (q.limit ?? LIST_QUERY.limit.default) > ONLINE_PAGE) throw new ApiError(400, `an online revocation check covers at most ${ONLINE_PAGE} certificates: give limit=${ONLINE_PAGE} or less`);
  const checker = checkerFor(q.revocation, ctx);
  const revocation = checker ? await revocationStates(ctx.store, page, checker) : null;
  return ok({ total: all.length, certificates: page.map((c) => certificateJson(c, revocation ? revocation.get(c.fingerprint) ?? null : undefined)) });
}

async function show(req: ApiRequest, ctx: AdminContext) {
  const c = await certificateOr404(ctx.store, req.params.fingerprint!);
  const chain = await certificateChain(ctx.store, c);
  const checker = checkerFor((req.query as { revocation?: string }).revocation, ctx);
  const revocation = checker ? (await revocationStates(ctx.store, [c], checker)).get(c.fingerprint) ?? null : undefined;
  const ca = await internalCa(ctx.store);
  return ok({
    ...certificateJson(c, revocation),
    keyUsage: c.keyUsage,
    extKeyUsage: c.extKeyUsage,
    key: { algorithm: c.keyAlgorithm, ...(c.keyBits ? { bits: c.keyBits } : {}), ...(c.keyCurve ? { curve: c.keyCurve } : {}) },
    subjectKeyId: c.subjectKeyId ?? null,
    firstSeen: iso(c.firstSeen),
    internalCa: ca?.fingerprint === c.fingerprint,
    chain: {
      state: chain.state,
      issuers: chain.issuers.map((i) => ({ fingerprint: i.fingerprint, subject: i.subject, trusted: i.trusted, notAfter: iso(i.notAfter) })),
      ...(chain.missingIssuerOf ? { missingIssuerOf: chain.missingIssuerOf } : {}),
    },
    pem: certificateToPem(c.der),
  });
}

async function exportPublic(req: ApiRequest, ctx: AdminContext) {
  const c = await certificateOr404(ctx.store, req.params.fingerprint!);
  const der = (req.query as { format?: string }).format === 'der';
  const name = `${c.fingerprint.slice(0, 16)}.${der ? 'cer' : 'pem'}`;
  return { file: der ? { type: 'application/pkix-cert', name, bytes: c.der } : { type: 'application/x-pem-file', name, bytes: Buffer.from(certificateToPem(c.der)) } };
}

/** The import as the CLI reports it, per certificate and key; refused when nothing at all went in. */
async function importBody(req: ApiRequest, ctx: AdminContext) {
  const b = req.body as { pem?: string; base64?: string; password?: string; key?: string };
  if ((b.pem === undefined) === (b.base64 === undefined)) throw new ApiError(400, 'give the certificates either as "pem" (text) or as "base64" (DER, PKCS#7 or PKCS#12), not both or neither');
  const inputs = [
    b.pem !== undefined ? { data: Buffer.from(b.pem, 'utf8'), name: 'pem' } : { data: Buffer.from(b.base64!, 'base64'), name: 'base64' },
    ...(b.key !== undefined ? [{ data: Buffer.from(b.key, 'utf8'), name: 'key' }] : []),
  ];
  const report: CertImportReport = await importCertificates(ctx.store, inputs, { ...(b.password !== undefined ? { password: b.password } : {}), trust: false, actor: actorOf(req.caller) });
  for (const c of report.certificates.filter((r) => r.status === 'added' || r.status === 'updated')) {
    await ctx.audit(req.caller, { action: 'cert.import', object: `cert:${c.fingerprint}`, detail: `${c.status}: ${c.subject}${c.emails.length ? ` <${c.emails.join(', ')}>` : ''}` });
  }
  for (const k of report.keys.filter((r) => r.status === 'added')) {
    await ctx.audit(req.caller, { action: 'cert.import-key', object: `cert:${k.fingerprint}`, detail: `private key (${k.algorithm}${k.bits ? ` ${k.bits}` : ''}${k.curve ? ` ${k.curve}` : ''})` });
  }
  const took = report.certificates.some((c) => c.status !== 'refused') || report.keys.some((k) => k.status !== 'refused');
  if (!took) {
    const first = report.unreadable[0]?.problem ?? report.certificates.find((c) => c.status === 'refused')?.problems[0] ?? report.keys[0]?.problem ?? 'nothing to import';
    throw new ApiError(400, `nothing imported: ${first}`, report);
  }
  return ok(report);
}

async function exportPrivate(req: ApiRequest, ctx: AdminContext) {
  const c = await certificateOr404(ctx.store, req.params.fingerprint!);
  const { password } = req.body as { password: string };
  if (!c.hasPrivateKey) throw new ApiError(404, `the store has no private key for ${c.fingerprint}`);
  const exported = await exportCertificateWithKey(ctx.store, c, password, actorOf(req.caller));
  if (!exported) throw new ApiError(404, `the store has no private key for ${c.fingerprint}`);
  await ctx.audit(req.caller, { action: 'cert.export-private', object: `cert:${c.fingerprint}`, detail: `PKCS#12 with the private key and ${exported.chain} issuer certificate${exported.chain === 1 ? '' : 's'}` });
  return { file: { type: 'application/x-pkcs12', name: `${c.fingerprint.slice(0, 16)}.p12`, bytes: exported.pkcs12 } };
}

async function remove(req: ApiRequest, ctx: AdminContext) {
  const c = await certificateOr404(ctx.store, req.params.fingerprint!);
  const withKey = (req.body as { withKey?: boolean } | undefined)?.withKey === true;
  // Our own CA is the CA Operator's: deleting it would orphan every certificate it issued and its CRL.
  if ((await internalCa(ctx.store))?.fingerprint === c.fingerprint) throw new ApiError(409, 'this is the internal CA\'s certificate; it cannot be deleted');
  // Deleting an anchor would end its trust, which is keys.trust's to decide (the CA Operator's), not keys.change's.
  if (c.trusted) throw new ApiError(409, 'a trust anchor: distrust it first (keys.trust), then delete it');
  const { keyDeleted } = await ctx.store.deleteCertificate(c, { withKey, actor: actorOf(req.caller) });
  await ctx.audit(req.caller, { action: 'cert.delete', object: `cert:${c.fingerprint}`, detail: `${c.subject}${keyDeleted ? ', with its private key' : ''}` });
  return ok({ deleted: c.fingerprint, keyDeleted, keyKept: c.hasPrivateKey && !keyDeleted });
}

function trustRoute(trusted: boolean): ApiRoute {
  return {
    method: 'POST',
    url: `/certificates/:fingerprint/${trusted ? 'trust' : 'distrust'}`,
    permission: 'keys.trust',
    summary: trusted ? 'Make a CA certificate a trust anchor' : 'Stop a CA certificate being a trust anchor',
    tag: 'keys',
    schema: { params: CERT_FINGERPRINT },
    bodyLimit: SMALL_BODY,
    example: { params: { fingerprint: EXAMPLE_FP } },
    async handler(req, ctx) {
      const c = await certificateOr404(ctx.store, req.params.fingerprint!);
      if (!c.isCA) throw new ApiError(409, 'not a CA certificate: only CA certificates are trust anchors (an end-entity certificate is believed through its chain)');
      if (!trusted && (await internalCa(ctx.store))?.fingerprint === c.fingerprint) {
        throw new ApiError(409, 'the internal CA stays a trust anchor: the certificates it issued would no longer verify');
      }
      const changed = await ctx.store.setTrusted(c.fingerprint, trusted, actorOf(req.caller));
      if (changed) {
        await ctx.audit(req.caller, {
          action: trusted ? 'cert.trust' : 'cert.distrust', object: `cert:${c.fingerprint}`, detail: c.subject,
          before: JSON.stringify({ trusted: c.trusted }), after: JSON.stringify({ trusted }),
        });
      }
      return ok({ fingerprint: c.fingerprint, trusted, changed });
    },
  };
}

const PASSWORD = { type: 'string', minLength: EXPORT_PASSWORD_MIN, maxLength: 1024, description: `protects the PKCS#12 (at least ${EXPORT_PASSWORD_MIN} characters)` };

const ROUTES: ApiRoute[] = [
  {
    method: 'GET',
    url: '/certificates',
    permission: 'keys.read',
    summary: 'List certificates, by address, CA or not, with a private key or not, expiring within N days',
    tag: 'keys',
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...LIST_QUERY,
          ca: { type: 'boolean' },
          key: { type: 'boolean', description: 'with (true) or without (false) a private key in the store' },
          expiringWithin: { type: 'integer', minimum: 0, maximum: 36500, description: 'days: valid now and expiring within them' },
          revocation: REVOCATION_MODE,
        },
      },
    },
    example: { query: { expiringWithin: '30' } },
    handler: list,
  },
  {
    method: 'GET',
    url: '/certificates/:fingerprint',
    permission: 'keys.read',
    summary: 'A certificate in detail: key, usages, chain in the store, revocation state, PEM',
    tag: 'keys',
    schema: { params: CERT_FINGERPRINT, querystring: { type: 'object', additionalProperties: false, properties: { revocation: REVOCATION_MODE } } },
    example: { params: { fingerprint: EXAMPLE_FP } },
    handler: show,
  },
  {
    method: 'GET',
    url: '/certificates/:fingerprint/export',
    permission: 'keys.read',
    summary: 'Download a certificate (PEM, or DER with ?format=der)',
    tag: 'keys',
    schema: { params: CERT_FINGERPRINT, querystring: { type: 'object', additionalProperties: false, properties: { format: { type: 'string', enum: ['pem', 'der'], default: 'pem' } } } },
    example: { params: { fingerprint: EXAMPLE_FP } },
    handler: exportPublic,
  },
  {
    method: 'POST',
    url: '/certificates/import',
    permission: 'keys.change',
    summary: 'Import certificates (PEM, or base64 DER / PKCS#7 / PKCS#12) and private keys; the status of each',
    tag: 'keys',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          pem: { type: 'string', minLength: 1, maxLength: IMPORT_BODY, description: 'PEM text: certificates, PKCS7 bundles, private keys' },
          base64: { type: 'string', minLength: 1, maxLength: IMPORT_BODY, pattern: '^[A-Za-z0-9+/=\\s]+$', description: 'DER certificate, PKCS#7 bundle or PKCS#12 file, base64' },
          password: { type: 'string', maxLength: 1024, description: 'opens a PKCS#12 file or an encrypted private key' },
          key: { type: 'string', minLength: 1, maxLength: 64 * 1024, description: 'a private key (PEM) for a certificate given or stored' },
        },
      },
    },
    bodyLimit: IMPORT_BODY,
    example: { body: { pem: '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n' } },
    handler: importBody,
  },
  {
    method: 'POST',
    url: '/certificates/:fingerprint/export-private',
    permission: 'keys.export_private',
    summary: 'Download a certificate with its private key and chain as a PKCS#12 encrypted under the password given',
    tag: 'keys',
    schema: { params: CERT_FINGERPRINT, body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: PASSWORD } } },
    bodyLimit: SMALL_BODY,
    example: { params: { fingerprint: EXAMPLE_FP }, body: { password: 'correct horse battery' } },
    handler: exportPrivate,
  },
  {
    method: 'POST',
    url: '/certificates/:fingerprint/delete',
    permission: 'keys.change',
    summary: 'Delete a certificate (and its private key with withKey, unless another certificate shares it)',
    tag: 'keys',
    schema: { params: CERT_FINGERPRINT, body: { type: 'object', additionalProperties: false, properties: { withKey: { type: 'boolean', default: false } } } },
    bodyLimit: SMALL_BODY,
    example: { params: { fingerprint: EXAMPLE_FP }, body: {} },
    handler: remove,
  },
  trustRoute(true),
  trustRoute(false),
];

/** Every route with the key modules' refusals (bad PEM, wrong password …) turned into 400s. */
export const KEY_ROUTES: ApiRoute[] = ROUTES.map((r) => ({ ...r, handler: (req, ctx) => refusing(() => r.handler(req, ctx)) }));
