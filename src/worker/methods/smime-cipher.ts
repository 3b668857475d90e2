/** The content cipher of one CMS object, for the in-memory and the streaming S/MIME path alike. */
import type { Config } from '../../config/types.js';
import type { SmimeEncryptOptions } from '../../policy/index.js';
import type { ContentCipher } from '../../smime/index.js';
import type { EncryptionTarget } from '../crypto-keys.js';

export function cipherFor(targets: EncryptionTarget[], config: Config, rule?: SmimeEncryptOptions): ContentCipher {
  const c = config.smime;
  if (rule?.cipher && rule.cipher !== 'capable') return rule.cipher;
  // GCM only when every recipient of the one CMS object said it reads it (RFC 8551 2.7.1).
  const capable = rule?.cipher === 'capable' || c.prefer_gcm;
  if (capable && targets.length && targets.every((t) => t.capabilities?.ciphers.includes('aes-256-gcm'))) return 'aes-256-gcm';
  return c.cipher;
}
