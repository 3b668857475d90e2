/**
 * Is this OpenPGP data ciphertext, and nothing else: session-key packets (PKESK, SKESK) and then
 * encrypted data (SEIPD v1/v2, AEAD, or legacy SED)? Outbound mail whose body is that is already
 * encrypted by the user's client and passes as it is (worker/transform.ts); a signed-only message,
 * literal data, or anything openpgp.js cannot read does not count, and is encrypted as usual.
 *
 * Untrusted input: the bytes of a PGP/MIME data part (armoured or binary). Nothing is decrypted.
 */
import * as openpgp from 'openpgp';

const P = openpgp.enums.packet;
const SESSION_KEYS = new Set<number>([P.publicKeyEncryptedSessionKey, P.symEncryptedSessionKey]);
const ENCRYPTED = new Set<number>([P.symEncryptedIntegrityProtectedData, P.aeadEncryptedData, P.symmetricallyEncryptedData]);

/**
 * Compressed data outside encryption is not ciphertext, whatever it holds: openpgp.js would inflate
 * it while reading (a bomb costs its whole size), so nothing of it is inflated at all.
 */
const READ_CONFIG = { maxDecompressedMessageSize: 0 };

export async function isPgpCiphertext(data: Buffer): Promise<boolean> {
  try {
    const text = data.subarray(0, 100).toString('latin1');
    const message = text.includes('-----BEGIN PGP MESSAGE-----')
      ? await openpgp.readMessage({ armoredMessage: data.toString('latin1'), config: READ_CONFIG })
      : await openpgp.readMessage({ binaryMessage: new Uint8Array(data), config: READ_CONFIG });
    const tags = [...message.packets].map((p) => (p.constructor as unknown as { tag: number }).tag);
    const last = tags.at(-1);
    // Session keys first (any number, even none for a message with a pre-shared key), then exactly one encrypted data packet, last.
    return last !== undefined && ENCRYPTED.has(last) && tags.slice(0, -1).every((t) => SESSION_KEYS.has(t));
  } catch {
    return false;
  }
}
