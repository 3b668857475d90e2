/**
 * One HTTP GET to a key directory, with the limits a mail path needs: a deadline that covers
 * connecting, headers and the whole body (a server that accepts and never answers, or trickles,
 * costs at most the time-out); a body size bound counted as the bytes arrive (Content-Length is
 * not believed); redirects followed by hand, few, never to another scheme than http(s) and never
 * from https down to http.
 *
 * Untrusted input: everything the server sends (status, headers, body, Location).
 */
export type FetchFailure = 'timeout' | 'too-large' | 'redirect' | 'network' | 'status';

export class DirectoryFetchError extends Error {
  override readonly name = 'DirectoryFetchError';
  constructor(
    readonly kind: FetchFailure,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface FetchLimits {
  /** Aborts everything (the caller's deadline). */
  signal: AbortSignal;
  maxBytes: number;
  /** Redirects to follow (the draft allows them; gpg follows a few). */
  maxRedirects?: number;
  accept?: string;
}

export interface FetchResult {
  status: number;
  /** The URL that answered (after redirects). */
  url: string;
  contentType: string | null;
  body: Buffer;
}

const USER_AGENT = 'Postern key discovery';

/**
 * GET `url`. A 2xx answer resolves with the body; 404/410 resolve with status and an empty body
 * (not found is an answer, not a failure); anything else rejects with DirectoryFetchError.
 */
export async function fetchBounded(url: string, limits: FetchLimits): Promise<FetchResult> {
  let current = new URL(url);
  const maxRedirects = limits.maxRedirects ?? 3;
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'https:' && current.protocol !== 'http:') throw new DirectoryFetchError('redirect', `refusing ${current.protocol} URL`);
    let res: Response;
    try {
      res = await fetch(current, {
        method: 'GET',
        redirect: 'manual',
        signal: limits.signal,
        headers: { accept: limits.accept ?? 'application/octet-stream, application/pgp-keys, */*;q=0.5', 'user-agent': USER_AGENT },
      });
    } catch (err) {
      throw failure(err, limits.signal, current);
    }
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      await discard(res);
      const location = res.headers.get('location');
      if (!location) throw new DirectoryFetchError('redirect', `${res.status} without Location from ${current.origin}`, res.status);
      if (hop >= maxRedirects) throw new DirectoryFetchError('redirect', `more than ${maxRedirects} redirects from ${url}`, res.status);
      const next = new URL(location, current);
      if (current.protocol === 'https:' && next.protocol !== 'https:') throw new DirectoryFetchError('redirect', `refusing a redirect from https to ${next.protocol}`, res.status);
      current = next;
      continue;
    }
    if (res.status === 404 || res.status === 410) {
      await discard(res);
      return { status: res.status, url: current.href, contentType: res.headers.get('content-type'), body: Buffer.alloc(0) };
    }
    if (res.status < 200 || res.status >= 300) {
      await discard(res);
      throw new DirectoryFetchError('status', `HTTP ${res.status} from ${current.origin}`, res.status);
    }
    const body = await readBody(res, limits, current);
    return { status: res.status, url: current.href, contentType: res.headers.get('content-type'), body };
  }
}

async function readBody(res: Response, limits: FetchLimits, url: URL): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    await discard(res);
    throw new DirectoryFetchError('too-large', `${url.origin} announced ${declared} bytes (limit ${limits.maxBytes})`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limits.maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new DirectoryFetchError('too-large', `more than ${limits.maxBytes} bytes from ${url.origin}`);
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } catch (err) {
    if (err instanceof DirectoryFetchError) throw err;
    throw failure(err, limits.signal, url);
  }
  return Buffer.concat(chunks, size);
}

/** Free the connection of an answer whose body we do not want. */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

function failure(err: unknown, signal: AbortSignal, url: URL): DirectoryFetchError {
  if (signal.aborted) return new DirectoryFetchError('timeout', `no answer from ${url.origin} in time`, undefined, { cause: err });
  // undici hides the reason (ECONNREFUSED, ENOTFOUND, a TLS failure) in `cause`.
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new DirectoryFetchError('network', `${url.origin}: ${why}`, undefined, { cause: err });
}

/** A signal that fires after `ms`, or when `parent` does; `clear` stops the timer. */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DirectoryFetchError('timeout', `time-out after ${ms} ms`)), ms);
  timer.unref?.();
  const onParent = () => ctl.abort(parent?.reason);
  if (parent) {
    if (parent.aborted) ctl.abort(parent.reason);
    else parent.addEventListener('abort', onParent, { once: true });
  }
  return {
    signal: ctl.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}
