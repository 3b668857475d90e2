/**
 * The portal role's certificate source: our users' S/MIME certificates and their chains, from the
 * file the supervisor publishes beside the OpenPGP one (keystore/public.ts), indexed by address.
 *
 * Untrusted input: the file (decodePublicCertificates checks it, each DER against its
 * fingerprint). Secrets: none — certificates are public.
 */
import { addressKey } from '../core/address.js';
import { decodePublicCertificates, type PublicAuthority, type PublicCertificate, type PublicCertificates } from '../keystore/public.js';
import { PublishedFile } from './published-file.js';

export type { PublicAuthority, PublicCertificate };

/** What the key server needs of the published certificates (tests may hand their own). */
export interface CertificateSource {
  /** The certificates naming `address` (any spelling), newest first, expired ones included. */
  certificatesFor(address: string): Promise<PublicCertificate[]>;
  /** The chain's certificates by fingerprint. */
  authority(fingerprint: string): Promise<PublicAuthority | undefined>;
}

interface Indexed {
  byAddress: Map<string, PublicCertificate[]>;
  authorities: Map<string, PublicAuthority>;
}

function index(doc: PublicCertificates): Indexed {
  const byAddress = new Map<string, PublicCertificate[]>();
  for (const c of doc.certificates) {
    for (const a of new Set(c.addresses.map((x) => addressKey(x)))) {
      const list = byAddress.get(a) ?? [];
      list.push(c);
      byAddress.set(a, list);
    }
  }
  for (const list of byAddress.values()) list.sort((x, y) => y.notBefore.getTime() - x.notBefore.getTime());
  return { byAddress, authorities: new Map(doc.authorities.map((a) => [a.fingerprint, a])) };
}

export class PublicCertificateFile implements CertificateSource {
  private readonly published: PublishedFile<Indexed>;

  constructor(file: string) {
    this.published = new PublishedFile(file, (bytes, name) => index(decodePublicCertificates(bytes, name)), index({ certificates: [], authorities: [] }));
  }

  async certificatesFor(address: string): Promise<PublicCertificate[]> {
    return (await this.published.get()).byAddress.get(addressKey(address)) ?? [];
  }

  async authority(fingerprint: string): Promise<PublicAuthority | undefined> {
    return (await this.published.get()).authorities.get(fingerprint);
  }
}
