/**
 * Read a message Postern built with an independent implementation — Python's email package (its
 * modern policy: RFC 2047 and RFC 2231 decoded, defects recorded) — so tests check our MIME
 * against someone else's reading of RFC 5322 / 2045–2049 rather than against our own parser.
 */
import { execFile } from 'node:child_process';

export interface ParsedPart {
  contentType: string;
  /** Content-Type parameters, decoded (boundary, charset, smime-type, name …). */
  params: Record<string, string>;
  /** Header fields in order, values decoded (RFC 2047), unfolded. */
  headers: [string, string][];
  filename: string | null;
  disposition: string | null;
  cte: string | null;
  /** The decoded payload of a leaf part (base64 / quoted-printable undone). */
  payload: Buffer | null;
  parts: ParsedPart[];
  /** Parser defects (e.g. a missing boundary, an undecodable header): should be empty. */
  defects: string[];
}

const SCRIPT = String.raw`
import sys, json, base64, email
from email import policy
msg = email.message_from_binary_file(sys.stdin.buffer, policy=policy.default)
def walk(m):
    out = {'contentType': m.get_content_type(), 'params': {}, 'headers': [], 'filename': m.get_filename(),
           'disposition': m.get_content_disposition(), 'cte': m.get('Content-Transfer-Encoding'),
           'payload': None, 'parts': [], 'defects': [type(d).__name__ for d in m.defects]}
    for k, v in (m.get_params() or [])[1:]:
        out['params'][k] = email.utils.collapse_rfc2231_value(v)
    for k, v in m.items():
        out['headers'].append([k, ' '.join(str(v).split())])
        out['defects'] += [type(d).__name__ for d in getattr(v, 'defects', [])]
    if m.is_multipart():
        out['parts'] = [walk(p) for p in m.get_payload()]
    else:
        b = m.get_payload(decode=True)
        out['payload'] = base64.b64encode(b).decode() if b is not None else None
    return out
print(json.dumps(walk(msg)))
`;
import { python3 } from './python.js';

function revive(p: Omit<ParsedPart, 'payload' | 'parts'> & { payload: string | null; parts: unknown[] }): ParsedPart {
  return { ...p, payload: p.payload === null ? null : Buffer.from(p.payload, 'base64'), parts: p.parts.map((c) => revive(c as never)) };
}

export function parseMail(message: Buffer): Promise<ParsedPart> {
  return new Promise((resolve, reject) => {
    const child = execFile(python3(), ['-c', SCRIPT], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python3 could not parse the message: ${stderr || err.message}`));
      resolve(revive(JSON.parse(stdout)));
    });
    child.stdin!.end(message);
  });
}

/** The first value of a header field (case-insensitive), as Python decoded it. */
export function header(p: ParsedPart, name: string): string | undefined {
  return p.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}
