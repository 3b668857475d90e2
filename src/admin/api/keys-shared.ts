/**
 * What the key groups of the admin API (keys.ts, pgp.ts, ca.ts) share: the schemas of the
 * fingerprints in their URLs, the actor the keystore's own records name, and how the key
 * modules' errors reach the caller (a 400 with their one-line reason, which never holds a secret).
 */
import { InternalCaError } from '../../keystore/index.js';
import { PgpKeyError } from '../../openpgp/index.js';
import { CaError, PkiError, RevocationError } from '../../pki/index.js';
import { ApiError, type AdminCaller, type JsonSchema } from '../routes.js';

/** A certificate's fingerprint: SHA-256 of its DER, 64 hex digits (the keystore's, as `cert list` shows it). */
export const CERT_FINGERPRINT: JsonSchema = {
  type: 'object',
  required: ['fingerprint'],
  properties: { fingerprint: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 fingerprint, 64 hex digits' } },
};

/** An OpenPGP key's fingerprint: 40 hex digits (v4) or 64 (v6), as gpg prints it. */
export const PGP_FINGERPRINT: JsonSchema = {
  type: 'object',
  required: ['fingerprint'],
  properties: { fingerprint: { type: 'string', pattern: '^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$', description: 'primary key fingerprint, 40 (v4) or 64 (v6) hex digits' } },
};

/** The query of a list: by address, a page of it. */
export const LIST_QUERY = {
  address: { type: 'string', minLength: 1, maxLength: 320 },
  limit: { type: 'integer', minimum: 1, maximum: 5000, default: 500 },
  offset: { type: 'integer', minimum: 0, default: 0 },
} as const;

/** One page of `all`, as LIST_QUERY asked. */
export const pageOf = <T>(all: readonly T[], q: { limit?: number; offset?: number }): T[] => all.slice(q.offset ?? 0, (q.offset ?? 0) + (q.limit ?? LIST_QUERY.limit.default));

/** Bodies that carry a password or a flag only. */
export const SMALL_BODY = 4 * 1024;
/** Certificates, keys and PKCS#12 files are small; a bundle with a long chain stays far below this. */
export const IMPORT_BODY = 512 * 1024;

/** Passwords that protect an exported private key: long enough to resist guessing offline. */
export const EXPORT_PASSWORD_MIN = 12;

/**
 * Who the keystore's own records (key uses, exports) name for a change made through the admin
 * role: the account's name, as ctx.audit's records do, so one actor filter finds both.
 */
export const actorOf = (caller: AdminCaller): string => caller.account;

/** The key modules' refusals as the API's: bad input is 400, an internal CA in the wrong state 409. */
export function keyError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof InternalCaError) return new ApiError(409, err.message);
  if (err instanceof PkiError || err instanceof PgpKeyError || err instanceof CaError || err instanceof RevocationError) return new ApiError(400, err.message);
  return err;
}

/** Run a handler's body with keyError applied to what it throws. */
export async function refusing<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw keyError(err);
  }
}

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
