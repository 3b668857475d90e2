/**
 * openpgp: OpenPGP with openpgp.js — for now the keys the keystore holds (read, describe, generate,
 * export); PGP/MIME and inline PGP come with the OpenPGP issue.
 *
 * Untrusted input: keys from admins, key servers, WKD and Autocrypt headers (parsed by openpgp.js;
 * every failure is a message, never a crash). Secrets: decrypted secret keys are returned to the
 * keystore to be sealed; exported only passphrase-protected.
 */
export { parsePgpKeys, generatePgpKey, armorPublicKey, armorPublicKeys, exportSecretKey, PgpKeyError, type PgpKeyInfo, type PgpSubkeyInfo, type ParsedPgpKey } from './keys.js';
