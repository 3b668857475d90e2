/** Which stored certificates S/MIME may use: for the policy's facts, the key look-ups and the method. */
import type { StoredCertificate } from '../../keystore/index.js';

/** Valid now, not a CA, and (when it says) for e-mail: what outgoing mail may use. */
export function usableCertificate(c: StoredCertificate, now: number, needPrivate: boolean): boolean {
  if (c.isCA || c.notBefore.getTime() > now || c.notAfter.getTime() < now) return false;
  if (needPrivate && !c.hasPrivateKey) return false;
  if (c.extKeyUsage && !c.extKeyUsage.includes('1.3.6.1.5.5.7.3.4') && !c.extKeyUsage.includes('2.5.29.37.0')) return false;
  return true;
}

/** Key usage allows encrypting to it (RSA key transport or ECDH key agreement), or says nothing. */
export const canEncryptTo = (c: StoredCertificate) => !c.keyUsage || c.keyUsage.includes('keyEncipherment') || c.keyUsage.includes('keyAgreement');
export const canSignWith = (c: StoredCertificate) => !c.keyUsage || c.keyUsage.includes('digitalSignature') || c.keyUsage.includes('nonRepudiation');

