/**
 * RFC 4516 LDAP URLs as CRL distribution points name them: host or none (Active Directory's
 * ldap:///), percent-encoded and raw DNs, attribute, scope and filter defaults; and what a hostile
 * URL cannot do: read other attributes, bind as someone (critical extensions), name a bad host.
 */
import { describe, expect, it } from 'vitest';
import { ldapCrlFetcher, parseLdapUrl } from '../../../src/directory/index.js';

describe('parseLdapUrl', () => {
  it('reads host, DN, attribute, scope and filter, with RFC 4516 defaults', () => {
    expect(parseLdapUrl('ldap://ldap.example.com/cn=Mail%20CA,o=Example,c=DE?certificateRevocationList;binary')).toEqual({
      server: 'ldap://ldap.example.com', dn: 'cn=Mail CA,o=Example,c=DE', attributes: ['certificateRevocationList;binary'], scope: 'base', filter: '(objectClass=*)',
    });
    expect(parseLdapUrl('ldaps://[::1]:6360/cn=CA%2Cdc=example?deltaRevocationList?one?(objectClass=cRLDistributionPoint)')).toEqual({
      server: 'ldaps://[::1]:6360', dn: 'cn=CA,dc=example', attributes: ['deltaRevocationList'], scope: 'one', filter: '(objectClass=cRLDistributionPoint)',
    });
    // Active Directory Certificate Services: no host, filter without parentheses.
    expect(parseLdapUrl('ldap:///CN=Corp%20CA,CN=PKI,CN=CDP,DC=corp,DC=example?certificateRevocationList?base?objectClass=cRLDistributionPoint')).toEqual({
      dn: 'CN=Corp CA,CN=PKI,CN=CDP,DC=corp,DC=example', attributes: ['certificateRevocationList'], scope: 'base', filter: '(objectClass=cRLDistributionPoint)',
    });
    expect(parseLdapUrl('ldap://127.0.0.1:389/cn=Raw Spaces,dc=example,dc=com').dn).toBe('cn=Raw Spaces,dc=example,dc=com');
    // A non-critical extension is ignored (RFC 4516 §2).
    expect(parseLdapUrl('ldap://h/dc=x????e-bindname=cn=x').server).toBe('ldap://h');
  });

  it('refuses what it cannot follow safely', () => {
    expect(() => parseLdapUrl('ldap://h/dc=x????!bindname=cn=Manager')).toThrow(/critical extension "bindname"/);
    expect(() => parseLdapUrl('ldap://h/dc=x??subtree')).toThrow(/unknown scope/);
    expect(() => parseLdapUrl('ldap://h:99999/dc=x')).toThrow(/bad host/);
    expect(() => parseLdapUrl('ldap://user@h/dc=x')).toThrow(/bad host/);
    expect(() => parseLdapUrl('ldap://h/cn=%zz')).toThrow(/bad percent-encoding in the DN/);
    expect(() => parseLdapUrl('http://h/x')).toThrow(/not an RFC 4516 LDAP URL/);
  });

  it('the fetcher reads revocation lists only, and host-less URLs only from configured servers', async () => {
    const f = ldapCrlFetcher();
    const req = { attribute: 'certificateRevocationList', timeoutMs: 500, maxBytes: 1000 };
    await expect(f({ ...req, url: 'ldap://127.0.0.1:9/cn=x?userPassword' })).rejects.toThrow(/"userPassword", which is not a revocation list attribute/);
    await expect(f({ ...req, url: 'ldap://127.0.0.1:9/cn=x?certificateRevocationList,mail' })).rejects.toThrow(/"mail", which is not a revocation list attribute/);
    await expect(f({ ...req, url: 'ldap:///cn=x?certificateRevocationList' })).rejects.toThrow(/names no server, and no LDAP server is configured/);
  });
});
