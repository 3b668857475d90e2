/**
 * The grammar of Postern's result fields (X-Postern-Encryption, X-Postern-Signature), shared by
 * S/MIME and OpenPGP so that a filter rule written for one reads the other: a status token first,
 * then `key=value` parameters, free text only quoted and stripped of line breaks and quotes.
 * Callers remove every X-Postern-* field that arrived with a message before adding these.
 */

/** A value fit for a quoted parameter: one line, no double quote, bounded. */
export const resultText = (s: string): string => s.replace(/[\r\n]+/g, ' ').replace(/"/g, "'").slice(0, 300);

export interface SignatureFacts {
  status: string;
  /** whole: the message content; partial: one part among unsigned ones; outer: over ciphertext. */
  scope: 'whole' | 'partial' | 'outer';
  signer: string;
  /** Method-specific parameters after the signer (key=…). */
  extra?: string[];
  reason?: string;
}

/** X-Postern-Signature for one signer. A partial signature says so first, whatever its status. */
export function signatureField(method: 'smime' | 'pgp', s: SignatureFacts): [string, string] {
  const parts = [s.scope === 'partial' ? 'partial' : s.status, `method=${method}`];
  if (s.scope !== 'whole') parts.push(`scope=${s.scope}`);
  if (s.scope === 'partial') parts.push(`signature=${s.status}`);
  parts.push(`signer=${resultText(s.signer)}`, ...(s.extra ?? []));
  if (s.reason) parts.push(`reason="${resultText(s.reason)}"`);
  else if (s.scope === 'partial') parts.push('reason="only a part of the message is signed"');
  else if (s.scope === 'outer') parts.push('reason="the signature covers the encrypted form only"');
  return ['X-Postern-Signature', parts.join('; ')];
}

/** X-Postern-Encryption for what was not decrypted (failed, not-decrypted), with the reason. */
export const encryptionNotDoneField = (method: 'smime' | 'pgp', status: string, reason: string | undefined): [string, string] => [
  'X-Postern-Encryption',
  `${status}; method=${method}; reason="${resultText(reason ?? '')}"`,
];

/** A signature that could not even be read: reported, never silently dropped. */
export const unreadableSignatureField = (method: 'smime' | 'pgp', problem: string): [string, string] => ['X-Postern-Signature', `invalid; method=${method}; reason="${resultText(problem)}"`];
