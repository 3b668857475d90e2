/** Actions and plans in one readable line each, for logs and `postern policy explain`. */
import type { Action, RecipientPlan } from './types.js';

export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'none':
      return 'pass unchanged';
    case 'sign':
      return a.method === 'auto' ? 'sign' : `sign (${a.method})`;
    case 'encrypt':
      return `encrypt (${a.methods.join(', then ')}${a.require ? `; required, else ${a.otherwise}` : '; if a key exists'}${a.smime?.cipher ? `; S/MIME ${a.smime.cipher}` : ''}${a.smime?.rsa_padding ? `; RSA ${a.smime.rsa_padding}` : ''}${a.pgp?.inline ? '; OpenPGP inline' : ''}${a.pdf?.cipher ? `; PDF ${a.pdf.cipher}` : ''}${a.pdf?.reply === false ? '; PDF without Reply button' : ''}${a.header_protection ? `; header protection ${a.header_protection}` : ''})`;
    case 'decrypt':
      return `decrypt${a.pgp_attachments || a.pgp_inline_html ? ` (also ${[a.pgp_attachments && 'OpenPGP attachments', a.pgp_inline_html && 'inline OpenPGP in HTML'].filter(Boolean).join(', ')})` : ''}`;
    case 'verify':
      return 'verify signatures';
    case 'generate_keys':
      return `generate keys for the sender (${[a.smime && 'S/MIME', a.pgp && 'OpenPGP'].filter(Boolean).join(', ')})`;
    case 'add_header':
      return `add header ${a.name}: ${a.value}`;
    case 'remove_header':
      return `remove header ${a.names.join(', ')}`;
    case 'copy':
      return `copy to ${a.to.join(', ')}`;
    case 'redirect':
      return `redirect to ${a.to.join(', ')}`;
    case 'notify_sender':
      return 'notify the sender';
    case 'alert':
      return `alert ${a.to.join(', ')}`;
    case 'hold':
      return `hold (${a.reason})`;
    case 'bounce':
      return `bounce (${a.reason})`;
    case 'delete':
      return `delete (${a.reason})`;
    case 'send_keys':
      return `attach the sender's keys (${[a.smime && 'S/MIME', a.pgp && 'OpenPGP'].filter(Boolean).join(', ')})`;
  }
}

export function describePlan(p: RecipientPlan): string {
  return [...p.actions.map(describeAction), ...(p.skipped ?? []).map((s) => `${s.action} skipped: ${s.reason}`)].join('; ');
}
