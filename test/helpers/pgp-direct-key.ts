/**
 * OpenPGP keys no tool at hand writes, built with openpgp.js' packet API for the tests: a v4 key
 * whose key flags, preferences, features or expiry are on its direct-key self-signature (0x1F)
 * only, its user-id certification carrying none of them (gpg 2.2 always puts them on the user id).
 */
import * as openpgp from 'openpgp';

export const E = openpgp.enums;
/** SignaturePacket.sign with the config openpgp.js reads at run time (its typings leave it out). */
export const signPacket = (s: openpgp.SignaturePacket, key: unknown, data: unknown, date: Date, detached: boolean) =>
  (s.sign as unknown as (k: unknown, d: unknown, t: Date, det: boolean, c: openpgp.Config) => Promise<void>).call(s, key, data, date, detached, openpgp.config);
export const KEY_FLAGS = { certify: E.keyFlags.certifyKeys, sign: E.keyFlags.signData, encrypt: E.keyFlags.encryptCommunication | E.keyFlags.encryptStorage };

export interface DirectOptions {
  flags: number;
  features?: number;
  ciphers?: number[];
  /** Key expiration (seconds after creation), on the direct-key signature only. */
  expiresIn?: number;
  created?: Date;
}

/** A v4 key (ed25519 + cv25519) whose key flags etc. are on the direct-key signature only; binary secret key. */
export async function directKeyOnly(email: string, o: DirectOptions): Promise<Buffer> {
  const date = o.created ?? new Date(Date.now() - 60_000);
  const { privateKey } = await openpgp.generateKey({ userIDs: [{ email }], type: 'ecc', curve: 'curve25519Legacy', date, format: 'object', config: { v6Keys: false, aeadProtect: false } });
  const primary = privateKey.keyPacket;
  const sub = privateKey.subkeys[0]!.keyPacket;
  const sig = async (type: number, data: object, props: Partial<openpgp.SignaturePacket>) => {
    const s = new openpgp.SignaturePacket();
    Object.assign(s, { signatureType: type, publicKeyAlgorithm: primary.algorithm, hashAlgorithm: E.hash.sha256, ...props });
    await signPacket(s, primary, data, date, false);
    return s;
  };
  const direct = await sig(E.signature.key, { key: primary }, {
    keyFlags: new Uint8Array([o.flags]),
    ...(o.features !== undefined ? { features: new Uint8Array([o.features]) } : {}),
    ...(o.ciphers ? { preferredSymmetricAlgorithms: o.ciphers } : {}),
    ...(o.expiresIn ? { keyExpirationTime: o.expiresIn, keyNeverExpires: false } : {}),
  });
  const userID = openpgp.UserIDPacket.fromObject({ email, name: email.split('@')[0]!.replace(/^./, (c) => c.toUpperCase()) });
  const cert = await sig(E.signature.certPositive, { userID, key: primary }, {});
  const binding = await sig(E.signature.subkeyBinding, { key: primary, bind: sub }, { keyFlags: new Uint8Array([KEY_FLAGS.encrypt]) });
  return Buffer.from(new openpgp.PacketList<openpgp.AnyPacket>(primary, direct, userID, cert, sub, binding).write());
}
