import { describe, expect, it } from 'vitest';
import { xtextEncode, wireAddress } from '../../../src/smtpd/envelope.js';
import { receivedHeader, rfc5322Date } from '../../../src/smtpd/received.js';

const base = {
  helo: 'client.example.org',
  clientName: null,
  clientIp: '192.0.2.1',
  hostname: 'gw.test.example',
  protocol: 'ESMTP',
  queueId: '0000000000BCDFGHJKLMN',
  utf8: false,
  date: new Date(Date.UTC(2024, 2, 12, 9, 5, 7)),
};

describe('Received header', () => {
  it('is Postfix-shaped with one recipient', () => {
    expect(receivedHeader({ ...base, recipient: 'bob@example.com' }).toString()).toBe(
      'Received: from client.example.org (unknown [192.0.2.1])\r\n' +
        '\tby gw.test.example (Postern) with ESMTP id 0000000000BCDFGHJKLMN\r\n' +
        '\tfor <bob@example.com>; Tue, 12 Mar 2024 09:05:07 +0000\r\n',
    );
  });

  it('leaves out "for" without exactly one recipient, and shows TLS and IPv6', () => {
    const h = receivedHeader({ ...base, clientIp: '2001:db8::1', clientName: 'mx.example.org', protocol: 'ESMTPS', tls: { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', bits: [256, 256] } }).toString();
    expect(h).toBe(
      'Received: from client.example.org (mx.example.org [IPv6:2001:db8::1])\r\n' +
        '\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\r\n' +
        '\t(No client certificate requested)\r\n' +
        '\tby gw.test.example (Postern) with ESMTPS id 0000000000BCDFGHJKLMN;\r\n' +
        '\tTue, 12 Mar 2024 09:05:07 +0000\r\n',
    );
  });

  it('names the TLS 1.3 key exchange and signature in the lines Postfix 3.7 writes', () => {
    const tls = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: [256, 256] as [number, number], keyExchange: 'X25519', serverSignature: 'RSA-PSS (2048 bits)', serverDigest: 'SHA256' };
    const h = receivedHeader({ ...base, helo: 'vm', protocol: 'ESMTPS', recipient: 'b@example.net', tls }).toString();
    // Postfix 3.7's header for the same session (swaks --tls, RSA-2048 certificate), its host name and id replaced.
    expect(h).toBe(
      'Received: from vm (unknown [192.0.2.1])\r\n' +
        '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n' +
        '\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n' +
        '\t(No client certificate requested)\r\n' +
        '\tby gw.test.example (Postern) with ESMTPS id 0000000000BCDFGHJKLMN\r\n' +
        '\tfor <b@example.net>; Tue, 12 Mar 2024 09:05:07 +0000\r\n',
    );
  });

  it('leaves out what the TLS session could not tell, and cannot be folded open by it', () => {
    const h = receivedHeader({ ...base, protocol: 'ESMTPS', tls: { protocol: 'TLSv1.3', cipher: 'X\r\nBcc: y', keyExchange: 'X25519\r\nBcc: z' } }).toString();
    expect(h).toContain('\t(using TLSv1.3 with cipher X??Bcc:?y\r\n\t key-exchange X25519??Bcc: z)\r\n');
    expect(h.split('\r\n').filter(Boolean).every((l, i) => i === 0 || l.startsWith('\t'))).toBe(true);
  });

  it('cannot be folded open by a hostile HELO or recipient', () => {
    const h = receivedHeader({ ...base, helo: 'x\r\nBcc: y', recipient: 'ä@example.com' }).toString();
    expect(h.split('\r\n').filter(Boolean).every((l, i) => i === 0 || l.startsWith('\t'))).toBe(true);
    expect(h).toContain('from x??Bcc:?y ');
    expect(h).not.toContain('for <');
  });

  it('formats RFC 5322 dates', () => {
    expect(rfc5322Date(new Date(Date.UTC(2025, 0, 1, 0, 0, 0)))).toBe('Wed, 1 Jan 2025 00:00:00 +0000');
  });
});

describe('envelope encoders', () => {
  it('xtext-encodes ENVID/ORCPT values as RFC 3461 wants', () => {
    expect(xtextEncode('QQ314159')).toBe('QQ314159');
    expect(xtextEncode('a+b=c d')).toBe('a+2Bb+3Dc+20d');
    expect(xtextEncode('\u00e9')).toBe('+E9'); // smtp-server decoded "+E9" to U+00E9
  });

  it('gives addresses their wire (A-label) domain outside SMTPUTF8', () => {
    expect(wireAddress('a@bücher.example', false)).toBe('a@xn--bcher-kva.example');
    expect(wireAddress('a@bücher.example', true)).toBe('a@xn--bcher-kva.example');
    expect(wireAddress('a@[127.0.0.1]', false)).toBe('a@[127.0.0.1]');
    expect(wireAddress('', false)).toBe('');
  });
});
