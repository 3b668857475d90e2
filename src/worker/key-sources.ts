/**
 * Keys from outside the store, fetched before the policy decides (it does no I/O itself), in
 * the order gateways use: the store, then the directory (LDAP certificates), then key discovery
 * (WKD, HKP) for OpenPGP; and Autocrypt headers of incoming mail. What is found is imported into
 * the store with its source, so the policy's facts and the transforms see it like any other key.
 *
 * Each source is bounded by its own time-out. LDAP that cannot answer follows ldap.on_failure:
 * "defer" throws a temporary error (the message waits and is tried again), "proceed" goes on
 * without. Discovery failures are never fatal: the recipient simply has no key.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/types.js';
import { PosternError, inDomains } from '../core/index.js';
import { importAutocrypt, lookUpAndStoreCertificates, parseAutocryptHeaders, type KeyDiscovery } from '../directory/index.js';
import { isStoreUnavailable, type KeyStore } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { canEncryptTo, usableCertificate } from './policy-facts.js';

export interface KeySources {
  /** LDAP certificate look-up with on_failure applied (throws LdapUnavailableError for "defer"). */
  ldap?: { certificatesOf(address: string): Promise<import('../pki/index.js').CertInfo[]> };
  discovery?: KeyDiscovery;
}

const isInternal = (config: Config, address: string) => inDomains(address, config.internal_domains);

/**
 * For every external recipient the store has no usable key for: certificates from LDAP, then an
 * OpenPGP key by WKD/HKP where discovery is enabled for the domain. Look-ups run in parallel.
 *
 * The addresses whose fetch met a keystore that cannot be reached are returned with its error:
 * what they have is unknown (a key may be in the directory and not yet stored), so the policy
 * facts must not call them keyless (policy-facts.ts memoLookups). Mail that asks nothing about
 * their keys can still go on.
 */
export async function fetchMissingKeys(recipients: readonly string[], sources: KeySources, ctx: { config: Config; store: KeyStore; log: Logger; queueId: string }): Promise<Map<string, unknown>> {
  const unknown = new Map<string, unknown>();
  if (!sources.ldap && !sources.discovery) return unknown;
  await Promise.all(
    recipients.map(async (address) => {
      try {
        await fetchFor(address, sources, ctx);
      } catch (err) {
        if (!isStoreUnavailable(err)) throw err;
        unknown.set(address, err);
      }
    }),
  );
  return unknown;
}

/** One recipient of fetchMissingKeys. */
async function fetchFor(address: string, sources: KeySources, ctx: { config: Config; store: KeyStore; log: Logger; queueId: string }): Promise<void> {
  const now = Date.now();
  if (!address || isInternal(ctx.config, address)) return;
  const [certs, pgp] = await Promise.all([ctx.store.certificatesFor(address), ctx.store.pgpKeysFor(address)]);
  const hasCert = certs.some((c) => usableCertificate(c, now, false) && canEncryptTo(c));
  const hasPgp = pgp.some((k) => k.info.canEncrypt && !k.info.revoked && (!k.info.expires || k.info.expires.getTime() > now));
  if (hasCert || hasPgp) return;
  if (sources.ldap) {
    let found: Awaited<ReturnType<typeof lookUpAndStoreCertificates>> = [];
    try {
      found = await lookUpAndStoreCertificates(sources.ldap, ctx.store, address, { actor: 'worker' });
    } catch (err) {
      // "defer" (a temporary error) goes up: the message waits for the directory; so does a
      // store that cannot be reached (the certificate was found, not stored). Anything else
      // (a certificate the store will not take) leaves the recipient without: the policy
      // then decides as for anyone without a key — held if encryption is required.
      if ((err instanceof PosternError && err.temporary) || isStoreUnavailable(err)) throw err;
      ctx.log.warn({ event: 'worker.ldap_certificate_not_used', queueId: ctx.queueId, address, reason: (err as Error).message }, 'directory certificate not used');
    }
    if (found.length) {
      ctx.log.info({ event: 'worker.ldap_certificate', queueId: ctx.queueId, address, fingerprints: found.map((c) => c.fingerprint) }, 'certificate found in the directory');
      return;
    }
  }
  if (sources.discovery?.enabledFor(address)) {
    const d = await sources.discovery.find(address);
    if (d) ctx.log.info({ event: 'worker.key_discovered', queueId: ctx.queueId, address, source: d.source, fingerprint: d.key.info.fingerprint }, 'OpenPGP key discovered');
  }
}

/** Autocrypt headers already taken by this process (hash of From: and values): a correspondent sends the same one with every mail. */
const seenAutocrypt = new Set<string>();
const MAX_SEEN = 10_000;

/** Autocrypt (Level 1): the key in an external sender's Autocrypt header goes into the store. */
export async function learnAutocrypt(headers: Map<string, string[]>, from: string, ctx: { config: Config; store: KeyStore; log: Logger; queueId: string }): Promise<void> {
  const values = headers.get('autocrypt');
  if (!values?.length || !from || isInternal(ctx.config, from)) return;
  // Reading the key costs milliseconds; the same header again changes nothing.
  const seen = createHash('sha256').update(from.toLowerCase()).update('\0').update(values.join('\0')).digest('hex');
  if (seenAutocrypt.has(seen)) return;
  if (seenAutocrypt.size >= MAX_SEEN) seenAutocrypt.clear();
  seenAutocrypt.add(seen);
  try {
    const parsed = await parseAutocryptHeaders(values, from);
    if (!parsed.ok) {
      ctx.log.debug({ event: 'worker.autocrypt_ignored', queueId: ctx.queueId, from, reason: parsed.reason }, 'Autocrypt header ignored');
      return;
    }
    const r = await importAutocrypt(ctx.store, parsed.header, { internalDomains: ctx.config.internal_domains, actor: 'worker', log: ctx.log });
    if (r && r.status === 'added') {
      ctx.log[r.keyChange ? 'warn' : 'info']({ event: r.keyChange ? 'worker.key_change' : 'worker.autocrypt_learnt', queueId: ctx.queueId, address: from, fingerprint: r.key.info.fingerprint }, r.keyChange ? 'a different Autocrypt key arrived for a known address' : 'Autocrypt key stored');
    }
  } catch (err) {
    // Learnt from this correspondent's next message (it carries the header again); this one goes
    // on — it may need no key at all — or waits for the store in the steps that need it.
    if (isStoreUnavailable(err)) seenAutocrypt.delete(seen);
    ctx.log.warn({ event: 'worker.autocrypt_failed', queueId: ctx.queueId, from, reason: (err as Error).message }, 'Autocrypt header not used');
  }
}
