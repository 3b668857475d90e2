/**
 * The HTTP fetcher for OCSP responders and CRL distribution points (node:http/https). Untrusted
 * peer: whatever URL a certificate names. So the whole exchange has one deadline (a responder
 * that accepts and then hangs, or trickles a byte a minute, is cut off), the body is bounded,
 * redirects are not followed (a certificate's URL is the only place we were told to ask) and
 * only http: and https: are spoken. Built by the composition root; tests pass their own.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HttpFetcher, HttpRequest, HttpResponse } from './rev-types.js';

export class FetchError extends Error {
  override readonly name = 'FetchError';
}

export function nodeHttpFetcher(): HttpFetcher {
  return (req) => fetchOnce(req);
}

function fetchOnce(req: HttpRequest): Promise<HttpResponse> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return Promise.reject(new FetchError(`not a URL: ${req.url}`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new FetchError(`${url.protocol} URLs are not fetched`));
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | null, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        r.destroy();
        reject(err);
      } else resolve(res!);
    };
    const headers: Record<string, string> = { 'user-agent': 'postern' };
    if (req.contentType) headers['content-type'] = req.contentType;
    if (req.accept) headers.accept = req.accept;
    if (req.body) headers['content-length'] = String(req.body.length);
    const r = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: req.method, headers }, (res) => {
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > req.maxBytes) return done(new FetchError(`${req.url}: the answer is ${declared} bytes, more than the limit of ${req.maxBytes}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > req.maxBytes) done(new FetchError(`${req.url}: the answer is more than the limit of ${req.maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const ct = res.headers['content-type'];
        done(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks, size), ...(ct ? { contentType: ct } : {}) });
      });
      res.on('error', (e) => done(new FetchError(`${req.url}: ${e.message}`)));
    });
    // One deadline for everything: socket time-outs alone would let a slow trickle go on forever.
    const timer = setTimeout(() => done(new FetchError(`${req.url}: no complete answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    r.on('error', (e) => done(new FetchError(`${req.url}: ${e.message}`)));
    r.end(req.body);
  });
}
