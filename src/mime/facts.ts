/**
 * The facts the policy engine needs about a message, read without decoding bodies (except a bounded
 * look at text bodies for inline OpenPGP armour and at the first bytes of a CMS blob): headers,
 * attachments (names and types), priority, sensitivity, and whether it is already encrypted or
 * signed (S/MIME or OpenPGP). The input is hostile: nesting depth and part count are bounded, the
 * walk is iterative, no regular expression can backtrack badly, and malformed MIME gives
 * best-effort facts, never an exception.
 */
import type { MessageFacts, Priority, Sensitivity } from '../policy/types.js';
import { decodeWords } from './header-fields.js';
import { multipartLayout } from './entity.js';
import { childFallback, FactsFound, isBlank, isMangledPgpMime, markChild, MAX_PARTS, parsePart, splits, type FactsPart } from './facts-parts.js';

export { splitHeader } from './header-fields.js';

function priorityOf(h: Map<string, string[]>): Priority {
  // The first of these headers that says something recognisable decides (X-Priority: the most exact).
  for (const name of ['x-priority', 'importance', 'priority', 'x-msmail-priority']) {
    const v = h.get(name)?.[0]?.trim().toLowerCase();
    if (v === undefined) continue;
    const digit = /^(\d)\b/.exec(v);
    if (digit) return Number(digit[1]) <= 2 ? 'high' : Number(digit[1]) >= 4 ? 'low' : 'normal';
    const word = /^[a-z-]+/.exec(v)?.[0];
    if (word === 'high' || word === 'highest' || word === 'urgent') return 'high';
    if (word === 'low' || word === 'lowest' || word === 'non-urgent') return 'low';
    if (word === 'normal') return 'normal';
  }
  return 'normal';
}

function sensitivityOf(h: Map<string, string[]>): Sensitivity {
  const s = /^[a-z-]+/.exec((h.get('sensitivity')?.[0] ?? '').trim().toLowerCase())?.[0];
  if (s === 'personal') return 'personal';
  if (s === 'private') return 'private';
  if (s === 'company-confidential' || s === 'confidential') return 'confidential';
  return 'normal';
}

/** The facts once the parts have spoken: the top header's own facts and what the parts found. */
export function factsFrom(size: number, headers: Map<string, string[]>, found: FactsFound): MessageFacts {
  const subject = decodeWords(headers.get('subject')?.[0] ?? '');
  return { size, headers, subject, attachments: found.attachments, priority: priorityOf(headers), sensitivity: sensitivityOf(headers), encrypted: found.encrypted, signed: found.signed };
}

/** The facts of a whole message in memory; facts-stream.ts reads the same from a stream of chunks. */
export function messageFacts(message: Buffer): MessageFacts {
  const top = parsePart(message, 0, 'text/plain');
  const found = new FactsFound();
  try {
    // Top level: what the whole message is, through (possibly nested) signatures.
    let body: FactsPart = top;
    for (let level = 0; found.topLevel(body, level); level++) {
      const first = multipartLayout(body.body, body.type.params.get('boundary')!, 1).parts[0];
      if (!first) break;
      body = parsePart(first, level + 1, 'text/plain');
    }

    // The part tree, depth first in document order, iteratively (a stack, not recursion).
    const stack: FactsPart[] = [top];
    let parts = 0;
    while (stack.length) {
      const part = stack.pop()!;
      if (splits(part, parts)) {
        const { type, params } = part.type;
        const raws = multipartLayout(part.body, params.get('boundary')!, MAX_PARTS - parts).parts;
        parts += raws.length;
        const children = raws.map((raw) => parsePart(raw, part.depth + 1, childFallback(type)));
        const mangled = part === top && type === 'multipart/mixed' && isMangledPgpMime(children.map((c) => c.type.type), () => isBlank(children[0]!.body));
        if (mangled) found.mangled();
        const crypto = FactsFound.cryptoContainer(part) || mangled;
        children.forEach((c, i) => markChild(c, part, i, crypto));
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
        continue;
      }
      found.leaf(part);
    }
  } catch {
    // A parser bug must not cost the message (DESIGN 4, "Nothing lost"): the facts so far stand.
  }
  return factsFrom(message.length, top.headers, found);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Subject-line commands: the configured tokens found in the subject, case-insensitively, returned
 * as configured, and the subject without them, white space collapsed and trimmed. A token that
 * begins and ends with punctuation ("{encrypt}", "[sign]") is found anywhere, even inside a word
 * ("x{sign}y" → "x y": the braces already delimit it, and users type "{encrypt}Offer"); a token
 * that begins or ends with a letter or digit ("encrypt") only where that end is a word boundary,
 * so "decrypted" does not trigger it. Empty tokens are ignored.
 */
export function subjectCommands(subject: string, tokens: readonly string[]): { found: string[]; subject: string } {
  const found: string[] = [];
  let rest = subject;
  for (const token of tokens) {
    const t = token.trim();
    if (!t) continue;
    const before = /^[\p{L}\p{N}_]/u.test(t) ? '(?<![\\p{L}\\p{N}_])' : '';
    const after = /[\p{L}\p{N}_]$/u.test(t) ? '(?![\\p{L}\\p{N}_])' : '';
    const re = new RegExp(before + escapeRegExp(t) + after, 'giu');
    const next = rest.replace(re, ' ');
    if (next !== rest) {
      found.push(token);
      rest = next;
    }
  }
  return { found, subject: found.length ? rest.replace(/\s+/g, ' ').trim() : subject };
}
