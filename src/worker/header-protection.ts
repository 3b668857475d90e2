/**
 * Header protection (RFC 9788) in the worker, both ways.
 *
 * Outbound: the payload that the signature and the encryption cover carries the message's header
 * fields; encrypted mail's outer header goes through the confidentiality policy (postern.yaml
 * `header_protection`, or the encrypt rule's own). Inline PGP has no MIME header to carry them.
 *
 * Inbound: a protected header section counts only when what covers it counts — the decryption of
 * the whole body, or a valid signature over the payload. Decryption counts on its own: whoever
 * could encrypt to us could as well have written the whole message, text and header alike, so the
 * inner fields are never less the author's than the outer ones (RFC 9788 4 reads them so too); an
 * unauthenticated CBC layer is said (`integrity=unauthenticated`), as X-Postern-Encryption says it.
 * A signature counts only when it is valid for the fields shown: when the protected From:, Sender:
 * or Date: differ from the outer ones, the message is opened again with the protected ones, so the
 * signer is bound to the author the reader will see, never to an outer From: someone rewrote.
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { planProtection, protectedSection, protectHeaders, protectionField, rewriteOuter, type ProtectedMessage } from '../mime/index.js';

/** What an opening found, as much as header protection needs of it. */
export interface OpenedForProtection {
  message: Buffer;
  encryption: { status: string; authenticated?: boolean; nested?: boolean } | null;
  /** The innermost content's header block as written (smime/open.ts, openpgp/open.ts). */
  protectedHeader?: Buffer;
  /** Every signature's verdict and scope, whichever method found it. */
  signatures?: readonly { status: string; scope: string }[];
}

export type OpenRun<T extends OpenedForProtection> = { result: T; headers: [string, string][] };

/** The fields a signature is bound to: a copy with the protected ones is verified again. */
const BINDING = new Set(['from', 'sender', 'date']);

const decryptedWhole = (r: OpenedForProtection) => r.encryption?.status === 'decrypted' && !r.encryption.nested;
const validSignature = (r: OpenedForProtection) => (r.signatures ?? []).some((s) => s.scope === 'whole' && s.status === 'valid');

/**
 * Open `base` with `open` and make its protected header section the message's header where it
 * counts; otherwise the opening as it was, with the reason the section was not used.
 */
export async function openProtected<T extends OpenedForProtection>(base: Buffer, open: (message: Buffer) => Promise<OpenRun<T>>, method: 'smime' | 'pgp', log: Logger, queueId: string): Promise<OpenRun<T>> {
  const first = await open(base);
  const section = first.result.protectedHeader ? protectedSection(first.result.protectedHeader) : null;
  if (!section) return first;
  const plan = planProtection(base, section, decryptedWhole(first.result));
  let run = first;
  if (plan.rebind && (decryptedWhole(first.result) || (first.result.signatures ?? []).some((s) => s.scope === 'whole'))) {
    log.info({ event: 'worker.header_protection_rebind', queueId, fields: plan.changes.filter((c) => BINDING.has(c.name)).map((c) => c.name) }, 'protected From:/Sender:/Date: differ from the outer ones: signatures checked against the protected ones');
    run = await open(rewriteOuter(base, plan, base, BINDING));
  }
  const r = run.result;
  if (!decryptedWhole(r) && !validSignature(r)) {
    const why = plan.rebind && run !== first ? 'no valid signature covers the protected header fields as the protected From: shows them' : 'neither decryption nor a valid signature covers the protected header fields';
    log.warn({ event: 'worker.header_protection_ignored', queueId, reason: why }, 'protected header fields not used');
    return { result: first.result, headers: [...first.headers, protectionField(method, plan, null, why)] };
  }
  const cover = { decrypted: decryptedWhole(r), signed: validSignature(r), authenticated: r.encryption?.authenticated === true || validSignature(r) };
  const replaced = plan.changes.filter((c) => c.kind === 'replaced').map((c) => c.name);
  if (replaced.length) log.warn({ event: 'worker.header_protection_replaced', queueId, fields: replaced }, 'outer header fields differ from the protected ones: replaced');
  return { result: { ...r, message: rewriteOuter(r.message, plan, base) }, headers: [...run.headers, protectionField(method, plan, cover)] };
}

/** The RFC 9788 setting for one group: the encrypt rule's, else postern.yaml's. */
export type HeaderProtectionMode = Config['header_protection']['mode'];

/**
 * The message's payload with its protected header section, or null when there is none to make:
 * protection off, nothing to sign or encrypt, or inline PGP (no MIME header to carry it).
 */
export function outboundProtection(body: Buffer, want: { sign: boolean; encrypt: boolean; inlinePgp: boolean; mode?: HeaderProtectionMode }, config: Config): ProtectedMessage | null {
  const mode = want.mode ?? config.header_protection.mode;
  if (mode === 'off' || (!want.sign && !want.encrypt) || want.inlinePgp) return null;
  return protectHeaders(body, { encrypted: want.encrypt, confidentiality: mode, legacyDisplay: config.header_protection.legacy_display });
}
