/**
 * The admin API's internal CA (issue 18): show it with its revocations and published CRL,
 * download the CRL, issue a certificate for an address, revoke (the CRL is published at once, as
 * `postern ca revoke` does) and publish the CRL. The work is the keystore's (internal-ca.ts,
 * store-revocation.ts), the same functions `postern ca` calls.
 *
 * Untrusted input: addresses (canonicalised, then checked again by pki/ca.ts), display names,
 * serials and reasons, all bounded by the schemas. Secrets: the CA's private key and those of the
 * certificates it issues stay in the keystore (sealed); nothing here returns or logs them.
 */
import { readFile } from 'node:fs/promises';
import { canonicalAddress } from '../../core/address.js';
import { internalCa, internalCrlFile, issueFromCa, publishInternalCrl, revokeAndPublish } from '../../keystore/index.js';
import { certificateToPem, crlEntryCount, CRL_REASON_CODES, KEY_TYPES, parseCrl, RevocationError, type KeyType } from '../../pki/index.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiRoute } from '../routes.js';
import { actorOf, iso, refusing, SMALL_BODY } from './keys-shared.js';

/** What a CA may still say of a certificate it revokes (hold and its removal are not for a mail CA). */
const REVOCATION_REASONS = Object.keys(CRL_REASON_CODES).filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold');
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f]*$';

async function caOr409(ctx: AdminContext) {
  const ca = await internalCa(ctx.store);
  if (!ca) throw new ApiError(409, 'there is no internal CA yet: run `postern ca init` first');
  return ca;
}

/** The CRL the portal serves now (the published file), or null when none is published yet. */
async function publishedCrl(ctx: AdminContext): Promise<Buffer | null> {
  try {
    return await readFile(internalCrlFile(ctx.config()));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function show(_req: ApiRequest, ctx: AdminContext) {
  const ca = await internalCa(ctx.store);
  if (!ca) throw new ApiError(404, 'there is no internal CA yet: run `postern ca init` first');
  const der = await publishedCrl(ctx);
  const crl = der ? parseCrl(der) : null;
  const revocations = await ctx.store.revocationsBy(ca.fingerprint);
  return ok({
    fingerprint: ca.fingerprint,
    subject: ca.subject,
    serial: ca.serial,
    notBefore: iso(ca.notBefore),
    notAfter: iso(ca.notAfter),
    key: { algorithm: ca.keyAlgorithm, ...(ca.keyBits ? { bits: ca.keyBits } : {}), ...(ca.keyCurve ? { curve: ca.keyCurve } : {}) },
    hasKey: ca.hasPrivateKey,
    crlUrl: ctx.config().ca.crl_url ?? null,
    crl: crl ? { thisUpdate: iso(crl.thisUpdate), nextUpdate: iso(crl.nextUpdate), entries: crlEntryCount(crl) } : null,
    revocations: revocations.map((r) => ({ serial: r.serial, fingerprint: r.fingerprint ?? null, revokedAt: iso(r.revokedAt), reason: r.reason ?? null, notAfter: iso(r.notAfter) })),
    pem: certificateToPem(ca.der),
  });
}

async function crlFile(_req: ApiRequest, ctx: AdminContext) {
  const der = await publishedCrl(ctx);
  if (!der) throw new ApiError(404, 'no CRL of the internal CA is published yet');
  return { file: { type: 'application/pkix-crl', name: 'internal-ca.crl', bytes: der } };
}

async function issue(req: ApiRequest, ctx: AdminContext) {
  const b = req.body as { address: string; name?: string; keyType?: KeyType };
  const address = canonicalAddress(b.address);
  if (!address) throw new ApiError(400, `${JSON.stringify(b.address)} is not an e-mail address`);
  await caOr409(ctx);
  const cert = await issueFromCa(ctx.store, ctx.config(), { address, ...(b.name ? { name: b.name } : {}), ...(b.keyType ? { keyType: b.keyType } : {}), actor: actorOf(req.caller) });
  await ctx.audit(req.caller, { action: 'ca.issue', object: `cert:${cert.fingerprint}`, detail: `${cert.subject} <${cert.emails.join(', ')}>, serial ${cert.serial}` });
  return ok({
    fingerprint: cert.fingerprint, subject: cert.subject, addresses: cert.emails, serial: cert.serial,
    notBefore: iso(cert.notBefore), notAfter: iso(cert.notAfter), hasKey: true, pem: certificateToPem(cert.der),
  });
}

async function revoke(req: ApiRequest, ctx: AdminContext) {
  const b = req.body as { address?: string; serial?: string; reason?: string };
  if ((b.address === undefined) === (b.serial === undefined)) throw new ApiError(400, 'give either "address" or "serial", not both or neither');
  if (b.reason !== undefined && !REVOCATION_REASONS.includes(b.reason)) throw new ApiError(400, `unknown revocation reason; one of ${REVOCATION_REASONS.join(', ')}`);
  let target = b.serial;
  if (b.address !== undefined) {
    const address = canonicalAddress(b.address);
    if (!address) throw new ApiError(400, `${JSON.stringify(b.address)} is not an e-mail address`);
    target = address;
  }
  const ca = await caOr409(ctx);
  let revoked;
  try {
    revoked = await revokeAndPublish(ctx.store, ctx.config(), target!, { ...(b.reason ? { reason: b.reason } : {}), actor: actorOf(req.caller) });
  } catch (err) {
    // The CA is there and the reason is known: what is left is a target the CA never issued.
    if (err instanceof RevocationError && /issued no certificate|neither an address/.test(err.message)) throw new ApiError(404, err.message);
    throw err;
  }
  for (const r of revoked.filter((x) => x.status === 'added')) {
    const c = r.certificate;
    await ctx.audit(req.caller, { action: 'ca.revoke', object: `cert:${c.fingerprint}`, detail: `serial ${c.serial} ${c.subject}${b.reason ? `, ${b.reason}` : ''}; CRL published` });
  }
  return ok({
    revoked: revoked.map((r) => ({ fingerprint: r.certificate.fingerprint, serial: r.certificate.serial, subject: r.certificate.subject, addresses: r.certificate.emails, status: r.status === 'added' ? 'revoked' : 'already revoked' })),
    crlPublished: true,
    issuer: ca.fingerprint,
  });
}

async function publish(req: ApiRequest, ctx: AdminContext) {
  const ca = await caOr409(ctx);
  await publishInternalCrl(ctx.store, ctx.config(), { actor: actorOf(req.caller) });
  const der = await publishedCrl(ctx);
  const crl = der ? parseCrl(der) : null;
  await ctx.audit(req.caller, { action: 'ca.crl-publish', object: `cert:${ca.fingerprint}`, detail: `CRL published${crl ? ` with ${crlEntryCount(crl)} entries` : ''}` });
  return ok({ published: true, thisUpdate: iso(crl?.thisUpdate), nextUpdate: iso(crl?.nextUpdate), entries: crl ? crlEntryCount(crl) : 0 });
}

const ROUTES: ApiRoute[] = [
  {
    method: 'GET',
    url: '/ca',
    permission: 'ca.read',
    summary: 'The internal CA: its certificate, its revocations and the CRL published',
    tag: 'ca',
    example: {},
    handler: show,
  },
  {
    method: 'GET',
    url: '/ca/crl',
    permission: 'ca.read',
    summary: 'Download the internal CA\'s current CRL (DER), as the portal serves it',
    tag: 'ca',
    example: {},
    handler: crlFile,
  },
  {
    method: 'POST',
    url: '/ca/issue',
    permission: 'ca.change',
    summary: 'Issue an S/MIME certificate for an address from the internal CA (its key stays in the keystore)',
    tag: 'ca',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['address'],
        properties: {
          address: { type: 'string', minLength: 3, maxLength: 320 },
          name: { type: 'string', minLength: 1, maxLength: 200, pattern: NO_CONTROLS, description: 'display name in the subject (default: the address)' },
          keyType: { type: 'string', enum: [...KEY_TYPES], description: 'default: ca.key_type of the config' },
        },
      },
    },
    bodyLimit: SMALL_BODY,
    example: { body: { address: 'someone@example.com' } },
    handler: issue,
  },
  {
    method: 'POST',
    url: '/ca/revoke',
    permission: 'ca.change',
    summary: 'Revoke what the internal CA issued for an address, or one serial; the CRL is published at once',
    tag: 'ca',
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          address: { type: 'string', minLength: 3, maxLength: 320 },
          serial: { type: 'string', pattern: '^(0x)?[0-9a-fA-F:]{1,128}$', description: 'hex, colons allowed' },
          reason: { type: 'string', enum: REVOCATION_REASONS },
        },
      },
    },
    bodyLimit: SMALL_BODY,
    example: { body: { address: 'someone@example.com', reason: 'superseded' } },
    handler: revoke,
  },
  {
    method: 'POST',
    url: '/ca/crl/publish',
    permission: 'ca.change',
    summary: 'Sign and publish a fresh CRL of the internal CA now',
    tag: 'ca',
    bodyLimit: SMALL_BODY,
    example: {},
    handler: publish,
  },
];

/** Every route with the key modules' refusals turned into 400s (409 for the CA's state). */
export const CA_ROUTES: ApiRoute[] = ROUTES.map((r) => ({ ...r, handler: (req, ctx) => refusing(() => r.handler(req, ctx)) }));
