/**
 * The grammar of Postern's result fields (X-Postern-Encryption, X-Postern-Signature), shared by
 * S/MIME and OpenPGP so that a filter rule written for one reads the other: a status token first,
 * then `key=value` parameters, values that are not plain tokens quoted and stripped of line breaks
 * and quotes. Callers remove every X-Postern-* field that arrived with a message before adding these.
 *
 * Several signatures (signerInfos, OpenPGP signature packets, signed parts, both methods): the
 * first X-Postern-Signature field is the summary — the weakest verdict of them all, with
 * `signatures=N` — and one field per signature follows. One signature: one field, which is both.
 */

/** A value fit for a quoted parameter: one line, no double quote, bounded. */
export const resultText = (s: string): string => s.replace(/[\r\n]+/g, ' ').replace(/"/g, "'").slice(0, 300);

/** A parameter value: as it is when it is a plain token or address, quoted otherwise (a certificate subject, a list). */
const value = (s: string): string => (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]{1,200}$/.test(s) ? s : `"${resultText(s)}"`);

export type ResultMethod = 'smime' | 'pgp';

export interface SignatureFacts {
  status: string;
  /** whole: the message content; partial: one part among unsigned ones; outer: over ciphertext. */
  scope: 'whole' | 'partial' | 'outer';
  signer: string;
  /** Method-specific parameters after the signer (key=…). */
  extra?: string[];
  reason?: string;
  /** For a partial signature: the part it covers (IMAP number) and the content parts it does not. */
  part?: string;
  unsigned?: string[];
}

const list = (parts: readonly string[]) => (parts.length > 12 ? [...parts.slice(0, 12), '…'] : parts).join(',');

/** What a partial signature covers, said in words when it is valid (else the status's reason is said). */
function partialReason(s: SignatureFacts): string {
  if (!s.part) return 'only a part of the message is signed';
  const others = s.unsigned?.filter((p) => p !== s.part) ?? [];
  const around = s.unsigned?.includes(s.part) ? `only a signed block inside part ${s.part} is signed, not the text around it` : `only part ${s.part} of the message is signed`;
  return others.length ? `${around}; part${others.length > 1 ? 's' : ''} ${list(others).replace(/,/g, ', ')} ${others.length > 1 ? 'are' : 'is'} not` : around;
}

/** X-Postern-Signature for one signer. A partial signature says so first, whatever its status. */
export function signatureField(method: ResultMethod, s: SignatureFacts): [string, string] {
  const parts = [s.scope === 'partial' ? 'partial' : s.status, `method=${method}`];
  if (s.scope !== 'whole') parts.push(`scope=${s.scope}`);
  if (s.scope === 'partial') parts.push(`signature=${s.status}`);
  parts.push(`signer=${value(s.signer)}`, ...(s.extra ?? []));
  if (s.scope === 'partial' && s.part) parts.push(`part=${s.part}`, `unsigned=${value(list(s.unsigned ?? []) || 'none')}`);
  if (s.reason) parts.push(`reason="${resultText(s.reason)}"`);
  else if (s.scope === 'partial') parts.push(`reason="${resultText(partialReason(s))}"`);
  else if (s.scope === 'outer') parts.push('reason="the signature covers the encrypted form only"');
  return ['X-Postern-Signature', parts.join('; ')];
}

/** X-Postern-Encryption for what was not decrypted (failed, not-decrypted), with the reason. */
export const encryptionNotDoneField = (method: ResultMethod, status: string, reason: string | undefined): [string, string] => [
  'X-Postern-Encryption',
  `${status}; method=${method}; reason="${resultText(reason ?? '')}"`,
];

/**
 * X-Postern-Encryption for ciphertext left as it is because of where it is (EFAIL: inside another
 * part, among other text, inside two signatures): `reason=nested`, the parts, and why in words.
 */
export const nestedCiphertextField = (method: ResultMethod, parts: readonly string[], detail: string): [string, string] => [
  'X-Postern-Encryption',
  `not-decrypted; method=${method}; reason=nested${parts.length ? `; parts=${value(list(parts))}` : ''}; detail="${resultText(detail)}"`,
];

/**
 * One method's X-Postern-Encryption fields: the whole body's (`decrypted` words it when it was),
 * then the ciphertext left as it is because of where it is.
 */
export function encryptionFields(method: ResultMethod, e: { status: string; reason?: string; nested?: boolean } | null, nested: readonly string[], decrypted: () => string, nestedDetail: string): [string, string][] {
  const out: [string, string][] = [];
  if (e?.status === 'decrypted') out.push(['X-Postern-Encryption', decrypted()]);
  else if (e && !e.nested) out.push(encryptionNotDoneField(method, e.status, e.reason));
  if (e?.nested || nested.length) out.push(nestedCiphertextField(method, nested, e?.nested ? (e.reason ?? nestedDetail) : nestedDetail));
  return out;
}

/** A signature that could not even be read: reported, never silently dropped. */
export const unreadableSignatureField = (method: ResultMethod, problem: string): [string, string] => ['X-Postern-Signature', `invalid; method=${method}; reason="${resultText(problem)}"`];

/** Weakest first. A signature none of whose statuses is known here ranks with 'unknown'. */
const RANK = ['invalid', 'unknown', 'untrusted', 'mismatch', 'valid'];
const rank = (status: string) => {
  const i = RANK.indexOf(status);
  return i < 0 ? 1 : i;
};

/**
 * The summary of several signatures: the weakest status of any of them (an invalid signer makes
 * the message's verdict invalid, whatever the others say); 'partial' when all are good but none
 * covers the whole message; scope=outer when all only cover the encrypted form.
 */
export function signatureSummary(all: readonly (SignatureFacts & { method: ResultMethod })[]): [string, string] {
  let weakest = all[0]!;
  for (const s of all) if (rank(s.status) < rank(weakest.status)) weakest = s;
  const methods = [...new Set(all.map((s) => s.method))];
  const whole = all.some((s) => s.scope === 'whole');
  const partial = !whole && all.some((s) => s.scope === 'partial');
  let status = weakest.status;
  let reason = weakest.status === 'valid' ? undefined : weakest.reason;
  if (status === 'valid' && partial) {
    status = 'partial';
    reason = 'only parts of the message are signed';
  }
  const which = `signature ${all.indexOf(weakest) + 1} of ${all.length} (${weakest.signer})`;
  const bad = all.filter((s) => rank(s.status) < rank('valid')).length;
  const fields = [status, `method=${methods.length === 1 ? methods[0] : 'mixed'}`, `signatures=${all.length}`];
  if (!whole && !partial) fields.push('scope=outer');
  if (bad) fields.push(`not-valid=${bad}`);
  fields.push(`signer=${value(weakest.signer)}`);
  if (reason) fields.push(`reason="${resultText(status === 'partial' ? reason : `${which}: ${reason}`)}"`);
  return ['X-Postern-Signature', fields.join('; ')];
}

/** One method's findings, in the shapes above. */
export interface MethodResults {
  method: ResultMethod;
  /** Its X-Postern-Encryption fields: the whole body's first, then ciphertext left nested. */
  encryption: [string, string][];
  signatures: SignatureFacts[];
  /** Signatures that could not be read at all (shown when no signature was read). */
  problems: string[];
}

/** The result fields of one or both methods: encryption first, then the signature summary and each signature. */
export function resultFields(results: readonly MethodResults[]): [string, string][] {
  const out: [string, string][] = results.flatMap((r) => r.encryption);
  const all = results.flatMap((r) => r.signatures.map((s) => ({ ...s, method: r.method })));
  if (all.length > 1) out.push(signatureSummary(all));
  for (const s of all) out.push(signatureField(s.method, s));
  if (!all.length) {
    const first = results.find((r) => r.problems.length);
    if (first) out.push(unreadableSignatureField(first.method, first.problems[0]!));
  }
  return out;
}
