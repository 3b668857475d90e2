/**
 * directory: OpenPGP keys of correspondents from outside the keystore — the recipient domain's
 * Web Key Directory (wkd.ts), HKP key servers (hkp.ts), both behind KeyDiscovery with its caches
 * (discovery.ts), and Autocrypt headers of incoming mail (autocrypt.ts). Whatever is found is
 * imported into the keystore with its source; and LDAP (ldap*.ts): certificates, groups and
 * attributes of users, behind the policy's Directory interface, and CRLs at ldap:// distribution
 * points for pki's revocation checker (ldap-crl.ts). (The static groups file lives in policy/.)
 *
 * Untrusted input: recipient and From: addresses; every byte a directory server sends (status,
 * redirects, bodies: bounded in time and size, parsed by openpgp/); Autocrypt header values. A key
 * is only ever bound to the address it was asked for (or the header's addr), never to the other
 * addresses it names, never to an internal address, and never stored with secret material.
 * Secrets: the LDAP bind password (read from env or file at each connect, never logged); otherwise
 * public keys only.
 */
export { KeyDiscovery, type Discovered, type DiscoverySource, type DiscoveryTrace, type KeyDiscoveryOptions } from './discovery.js';
export { WkdClient, wkdUrls, type WkdMethod, type WkdOptions } from './wkd.js';
export { HkpClient, hkpBaseUrl, hkpLookupUrl, type HkpServer } from './hkp.js';
export {
  parseAutocrypt,
  parseAutocryptHeaders,
  importAutocrypt,
  autocryptHeader,
  preferredPgpKeys,
  AutocryptError,
  type AutocryptHeader,
  type AutocryptImport,
  type PreferEncrypt,
} from './autocrypt.js';
export { keysForAddress, rankKeys, importCandidate, type CandidateKey, type DirectoryStore, type LookupOutcome } from './keys.js';
export { splitAddress, wkdHash, isWkdHash, zbase32, compilePattern, compilePatterns, type SplitAddress, type AddressMatcher } from './address.js';
export { fetchBounded, DirectoryFetchError, type FetchFailure } from './http.js';
export { ldapCrlFetcher, parseLdapUrl, LdapUrlError, type LdapUrl } from './ldap-crl.js';
export {
  LdapDirectory,
  LdapUnavailableError,
  withFailurePolicy,
  combineDirectories,
  lookUpAndStoreCertificates,
  usableForEncryption,
  escapeFilterValue,
  type LdapFacts,
  type LdapCertStore,
} from './ldap.js';
