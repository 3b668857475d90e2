/**
 * Parse a delivery status notification with an independent implementation — Python's email
 * package — so tests check Postern's DSNs against someone else's reading of RFC 3464 / 6522.
 */
import { execFile } from 'node:child_process';

export interface ParsedDsn {
  from: string;
  to: string;
  subject: string;
  autoSubmitted: string;
  contentType: string;
  reportType: string;
  /** Content types of the top-level parts, in order. */
  parts: string[];
  /** The human-readable first part. */
  text: string;
  /** Per-message fields of the delivery-status part (lower-case names). */
  perMessage: Record<string, string>;
  /** One field map per recipient block (lower-case names). */
  recipients: Record<string, string>[];
  /** The third part: its type, the returned message's headers, and its body when returned in full. */
  returned?: { type: string; headers: Record<string, string>; body?: string; cte?: string };
}

const SCRIPT = String.raw`
import sys, json, email, re
from email import policy
msg = email.message_from_binary_file(sys.stdin.buffer, policy=policy.compat32)
def fields(m):
    return {k.lower(): ' '.join(str(v).split()) for k, v in m.items()}
out = {'from': msg['From'], 'to': msg['To'], 'subject': msg['Subject'], 'autoSubmitted': msg['Auto-Submitted'],
       'contentType': msg.get_content_type(), 'reportType': msg.get_param('report-type'), 'parts': []}
parts = msg.get_payload() if msg.is_multipart() else []
for i, p in enumerate(parts):
    ct = p.get_content_type()
    out['parts'].append(ct)
    if i == 0:
        out['text'] = p.get_payload(decode=True).decode('utf-8', 'replace')
    elif ct in ('message/delivery-status', 'message/global-delivery-status'):
        blocks = p.get_payload()
        if isinstance(blocks, str):
            blocks = [email.message_from_string(b) for b in blocks.strip().split('\n\n')]
        elif ct == 'message/global-delivery-status' and len(blocks) == 1:
            # Python reads the global type (RFC 6533) as one embedded message: the per-message
            # fields become its header, the recipient groups its body.
            inner = blocks[0]
            rest = [b for b in re.split(r'\r?\n\r?\n', inner.get_payload(decode=True).decode('utf-8')) if b.strip()]
            blocks = [inner] + [email.message_from_string(b) for b in rest]
        out['perMessage'] = fields(blocks[0])
        out['recipients'] = [fields(b) for b in blocks[1:]]
    elif i == 2:
        r = {'type': ct, 'cte': p.get('Content-Transfer-Encoding')}
        if ct in ('message/rfc822', 'message/global'):
            inner = p.get_payload()[0] if isinstance(p.get_payload(), list) else email.message_from_string(p.get_payload())
            r['headers'] = fields(inner)
            b = inner.get_payload(decode=True)
            r['body'] = b.decode('latin-1') if b is not None else str(inner.get_payload())
        else:
            r['headers'] = fields(email.message_from_string(p.get_payload(decode=True).decode('latin-1')))
        out['returned'] = r
print(json.dumps(out))
`;
import { python3 } from './python.js';

export function parseDsn(message: Buffer): Promise<ParsedDsn> {
  return new Promise((resolve, reject) => {
    const child = execFile(python3(), ['-c', SCRIPT], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python3 could not parse the DSN: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as ParsedDsn);
    });
    child.stdin!.end(message);
  });
}
