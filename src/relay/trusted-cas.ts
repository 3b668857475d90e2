/**
 * The CAs a next hop's certificate (verify, sts) and an MTA-STS policy server's may chain to: the
 * system's bundle, as Postfix's smtp_tls_CApath, and relay.tls_ca_file (smtp_tls_CAfile). Node
 * bundles Mozilla's list and ignores the system's unless told, so the Debian/RHEL bundle is read
 * when it is there; Node's list is the fallback on a system without one.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { parseCaBundle } from '../config/relay-tls.js';

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

export async function trustedCas(caFile: string | undefined): Promise<string[]> {
  let system: string[] | undefined;
  for (const file of SYSTEM_BUNDLES) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    const certs = text === undefined ? undefined : parseCaBundle(text);
    if (Array.isArray(certs)) {
      system = certs;
      break;
    }
  }
  const extra = caFile ? parseCaBundle(await readFile(caFile, 'utf8')) : [];
  // The config check read it already; a file broken since then trusts nothing extra, not everything.
  if (typeof extra === 'string') throw new Error(`relay.tls_ca_file ${caFile}: ${extra}`);
  return [...(system ?? rootCertificates), ...extra];
}
