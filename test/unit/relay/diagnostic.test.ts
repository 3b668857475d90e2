import { describe, expect, it } from 'vitest';
import { connectFailed, dnsFailed, dnsOutcome, lostConnection, namaddr, strerror, timedOut, tlsNotOffered } from '../../../src/relay/diagnostic.js';

describe('relay diagnostics in Postfix words', () => {
  it('names a next hop as host[address], the address twice when there is no name', () => {
    expect(namaddr('mx.example.com', '192.0.2.1')).toBe('mx.example.com[192.0.2.1]');
    expect(namaddr(undefined, '192.0.2.1')).toBe('192.0.2.1[192.0.2.1]');
    expect(namaddr('evil\r\nname', '192.0.2.1')).toBe('evil??name[192.0.2.1]');
  });

  it('words connection failures as smtp_connect.c does, with 4.4.1', () => {
    expect(connectFailed('mx.example.com[192.0.2.1]', 25, 'ECONNREFUSED')).toEqual({ text: 'connect to mx.example.com[192.0.2.1]:25: Connection refused', dsn: '4.4.1' });
    expect(connectFailed('mx[192.0.2.1]', 25, 'ETIMEDOUT').text).toBe('connect to mx[192.0.2.1]:25: Connection timed out');
    expect(connectFailed('mx[192.0.2.1]', 25, 'EHOSTUNREACH').text).toBe('connect to mx[192.0.2.1]:25: No route to host');
  });

  it('never passes a library code off as the system\'s', () => {
    expect(strerror(undefined)).toBe('Connection failed');
    expect(strerror('ERR_SSL_WRONG_VERSION_NUMBER')).toBe('Connection failed');
    expect(strerror('EPROTO')).toBe('Connection failed (EPROTO)');
  });

  it('names the step of a lost or stalled conversation as smtp_proto.c does, with 4.4.2', () => {
    expect(lostConnection('mx[192.0.2.1]', 'dot')).toEqual({ text: 'lost connection with mx[192.0.2.1] while sending end of data -- message may be sent more than once', dsn: '4.4.2' });
    expect(timedOut('mx[192.0.2.1]', 'greeting').text).toBe('conversation with mx[192.0.2.1] timed out while receiving the initial server greeting');
    expect(lostConnection('mx[192.0.2.1]', 'rcpt').text).toBe('lost connection with mx[192.0.2.1] while sending RCPT TO');
    expect(lostConnection('mx[192.0.2.1]', undefined).text).toBe('lost connection with mx[192.0.2.1]');
  });

  it('words DNS failures as dns_lookup.c and smtp_addr.c do', () => {
    expect(dnsFailed('example.net', 'MX', 'try_again')).toEqual({
      text: 'Host or domain name not found. Name service error for name=example.net type=MX: Host not found, try again',
      dsn: '4.4.3',
    });
    expect(dnsFailed('example.net', 'MX', 'not_found')).toEqual({ text: 'Host or domain name not found. Name service error for name=example.net type=MX: Host not found', dsn: '5.4.4' });
    expect(dnsOutcome('ENOTFOUND')).toBe('not_found');
    expect(dnsOutcome('ENODATA')).toBe('no_data');
    expect(dnsOutcome('ESERVFAIL')).toBe('try_again');
    expect(dnsOutcome('EREFUSED')).toBe('no_recovery');
    expect(dnsFailed('example.net', 'A', 'no_recovery').dsn).toBe('4.4.3');
  });

  it('says a required TLS was not offered, naming the host', () => {
    expect(tlsNotOffered('mx[192.0.2.1]')).toEqual({ text: 'TLS is required, but was not offered by host mx[192.0.2.1]', dsn: '4.7.4' });
  });
});
