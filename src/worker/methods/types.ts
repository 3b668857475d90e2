/**
 * The one interface every protection method implements — S/MIME, OpenPGP, PDF mail and webmail
 * (issue 17). The worker never names a method: it asks the registry (index.ts)
 * which method a plan chose and runs it through this interface, so a new method is a new module
 * here, not a new branch in decide/transform.
 *
 * Four questions per method, as DESIGN.md puts them:
 * - does it apply: `keyFacts` (from the store's answers: can this party receive or give it?) and,
 *   for the methods whose crypto travels in mail (`CryptoMethod`), `isCiphertext`;
 * - what it needs to know: the look-ups `keyFacts` reads, gathered before the policy decides, so
 *   the plan is pure and `policy explain` shows the same;
 * - run: `encrypt`; a CryptoMethod also `open` (decrypt/verify) and `sign`;
 * - how it fails: `open` reports, never throws for bad crypto; `sign` returns null (the mail goes
 *   unsigned — no secret is at stake, the reason is logged); `encrypt` returns a hold with the
 *   reason (fail closed: never the clear text).
 * A method that needs a secret per recipient (PDF mail's password) says `perRecipient`: the plan
 * then gives each such recipient an output of their own.
 */
import type { Config } from '../../config/types.js';
import type { KeyStore, PortalDb, StoredCertificate, StoredPgpKey } from '../../keystore/index.js';
import type { Logger } from '../../log/index.js';
import type { BodyCiphertext, HeaderEdits, MethodResults } from '../../mime/index.js';
import type { PdfEncryptOptions, SmimeEncryptOptions } from '../../policy/index.js';
import type { CryptoKeys } from '../crypto-keys.js';
import type { PgpKeys } from '../pgp-keys.js';
import type { KeyLookups } from '../policy-facts.js';

export type MethodId = 'smime' | 'pgp' | 'pdf' | 'webmail';
/** The methods whose crypto a message can carry: they open, verify and sign as well as encrypt. */
export type CryptoMethodId = 'smime' | 'pgp';

/** What the worker has at hand while it runs one message's transforms. */
export interface TransformContext {
  config: Config;
  store: KeyStore;
  /** portal.db: webmail accounts and mailboxes (the store has it attached for PDF reply links). */
  portal: PortalDb;
  keys: CryptoKeys;
  pgp: PgpKeys;
  /** This message's memoised look-ups (the same answers the policy decided with). */
  lookups: KeyLookups;
  log: Logger;
  queueId: string;
  sender: string;
}

/** How to open incoming crypto, as the plan says. */
export interface OpenChoice {
  decrypt: boolean;
  verify: boolean;
  /** The method of the message's outermost layer: opened first. */
  method: CryptoMethodId;
  pgpAttachments?: boolean;
  pgpInlineHtml?: boolean;
}

/** What opening found, whichever the method: enough for the caller's bookkeeping. */
export interface Opened {
  message: Buffer;
  encryption: { status: string; authenticated?: boolean; nested?: boolean } | null;
  /** Where a protected header section (RFC 9788) would be, and what covers it: header-protection.ts. */
  protectedHeader?: Buffer;
  signatures?: readonly { status: string; scope: string }[];
}

/** One method's opening: its output, its findings, and the header fields it adds beside them. */
export interface OpenStep {
  opened: Opened;
  results: MethodResults;
  extra: [string, string][];
}

/** The encryption step's input: the body (signed already unless the method signs inside). */
export interface SealInput {
  body: Buffer;
  recipients: readonly string[];
  /** The RFC 9788 protected header section's payload, when header protection applies. */
  payload?: Buffer;
  /** The method signs inside its own encryption in the same step (RFC 3156 6.2). */
  signInside: boolean;
  /** The rule's S/MIME options over postern.yaml's. */
  smimeOptions?: SmimeEncryptOptions;
  /** OpenPGP inline for text-only mail. */
  inline?: boolean;
  /** The rule's PDF mail options over postern.yaml's. */
  pdfOptions?: PdfEncryptOptions;
}

/** A message a method writes beside its result (PDF mail: the password to the sender), queued with it. */
export interface SideNotice {
  /** Names the output (with the message's id): the same notice on a re-run replaces itself. */
  key: string;
  to: string[];
  body: Buffer;
}

export type SealResult =
  | {
      kind: 'ok';
      body: Buffer;
      signed: boolean;
      notices?: SideNotice[];
      /** Run once the outputs are durable (PDF mail: the sender has been told the password). */
      afterCommit?: (() => Promise<void>)[];
    }
  | { kind: 'hold'; reason: string };

/** A large message's sign and/or encrypt step as a stream (worker/large.ts): nothing held whole. */
export interface StreamSealInput {
  /** The header block (after the plan's clean-up), CRLF-terminated, ending with the empty line. */
  head: Buffer;
  /** The raw body after the header block, read again from the spool each time it is called. */
  body: () => AsyncIterable<Buffer>;
  recipients: readonly string[];
  sign: boolean;
  encrypt: boolean;
  smimeOptions?: SmimeEncryptOptions;
  /** The rule asks for OpenPGP inline (text-only mail): not streamed, the Buffer path does it. */
  pgpInline?: boolean;
  headerProtection?: import('../header-protection.js').HeaderProtectionMode;
  /** Header edits of the plan, applied to the outer header of the result. */
  edits: HeaderEdits | null;
}

/**
 * The output's bytes, made while the spool writes them; or why this message must take the
 * in-memory path after all (decided before any byte is written, so the fallback is always possible).
 */
export type StreamSealResult = { kind: 'stream'; chunks: () => AsyncIterable<Buffer>; signed: boolean } | { kind: 'fallback'; reason: string };

/** Which keys a party has for this method, from the store's records alone. */
export interface KeyRecords {
  certificates: readonly StoredCertificate[];
  pgpKeys: readonly StoredPgpKey[];
}

export interface Method {
  readonly id: MethodId;
  /** As an admin reads it: "S/MIME", "OpenPGP", "PDF mail". */
  readonly label: string;
  /** What a recipient needs for it: "S/MIME certificate", "OpenPGP key". */
  readonly keyName: string;
  /** It can put a signature inside its own encryption in one step (OpenPGP does; S/MIME nests). */
  readonly signsInside: boolean;
  /** Its secret is per recipient (PDF mail's password): one output per recipient, never a group. */
  readonly perRecipient: boolean;
  /** RFC 9788 header protection applies (a method that wraps the message in a document does not). */
  readonly protectsHeaders: boolean;
  /** A signature made before it survives in its result (not inside a PDF: no reader checks it there). */
  readonly keepsSignature: boolean;

  /** Can it protect mail for the party: to encrypt to (recipient) or to sign with (sender). */
  keyFacts(records: KeyRecords, role: 'sender' | 'recipient', now: number): boolean;
  encrypt(input: SealInput, ctx: TransformContext): Promise<SealResult>;
  /** Optional: sign and/or encrypt as a stream, for messages too large to hold (issue 15). */
  streamSeal?(input: StreamSealInput, ctx: TransformContext): Promise<StreamSealResult>;
}

/** A method whose crypto travels in mail (S/MIME, OpenPGP): it also opens, verifies and signs. */
export interface CryptoMethod extends Method {
  readonly id: CryptoMethodId;
  /** Is this whole body this method's ciphertext (the sender's client encrypted it)? */
  isCiphertext(found: BodyCiphertext): Promise<boolean>;
  open(body: Buffer, how: OpenChoice, recipients: readonly string[], ctx: TransformContext): Promise<OpenStep>;
  /** The signed message, or null when it cannot be signed (logged with the reason). */
  sign(body: Buffer, ctx: TransformContext, payload?: Buffer): Promise<Buffer | null>;
}
