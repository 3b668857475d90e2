/**
 * The policy language after compilation: conditions as a small tree, actions as typed records,
 * and the plan the engine returns for each recipient. Everything here is data; evaluate.ts is the
 * only code that interprets it.
 */

export type Direction = 'inbound' | 'outbound' | 'internal' | 'external';
/** The crypto a message can carry, and sign with. */
export type CryptoKind = 'smime' | 'pgp';
/** What a recipient's copy can be protected with: the crypto kinds, PDF mail (a password, no key) and webmail (the portal's mailbox). */
export type EncryptMethod = CryptoKind | 'pdf' | 'webmail';
export type KeyKind = 'smime' | 'pgp' | 'any' | 'none';
export type Priority = 'high' | 'normal' | 'low';
export type Sensitivity = 'normal' | 'personal' | 'private' | 'confidential';
export type CommandName = 'encrypt' | 'sign' | 'plain' | 'pdf' | 'webmail' | 'send_keys' | 'send_keys_smime' | 'send_keys_pgp';

/** A comparison on a number: { op: '>', value }. */
export interface NumberTest {
  op: '<' | '<=' | '>' | '>=' | '=';
  value: number;
}

/** A string test: exact (case-insensitive), glob (* ?), or regular expression. */
export type StringTest = { glob: RegExp; source: string } | { regex: RegExp; source: string };

/** Tests on one party of the message (the sender, or the recipient being decided). */
export interface PartyTest {
  address?: StringTest[];
  domain?: StringTest[];
  /** Member of any of these directory groups. */
  group?: string[];
  /** Directory attribute name → tests on its values (any value matching). */
  attribute?: Record<string, StringTest[]>;
  /** Keys the store holds for this party (public ones for recipients, private for the sender). */
  has_key?: KeyKind;
  /** Is the address in internal_domains? */
  internal?: boolean;
}

export type Condition =
  | { kind: 'all'; of: Condition[] }
  | { kind: 'any'; of: Condition[] }
  | { kind: 'not'; of: Condition }
  | { kind: 'always' }
  | { kind: 'direction'; is: Direction[] }
  | { kind: 'sender'; test: PartyTest }
  | { kind: 'recipient'; test: PartyTest }
  | { kind: 'size'; test: NumberTest }
  | { kind: 'attachments'; count?: NumberTest; name?: StringTest[]; type?: StringTest[] }
  | { kind: 'priority'; is: Priority[] }
  | { kind: 'sensitivity'; is: Sensitivity[] }
  | { kind: 'encrypted'; is: boolean | CryptoKind }
  | { kind: 'signed'; is: boolean | CryptoKind }
  | { kind: 'command'; is: CommandName[] }
  | { kind: 'header'; name: string; test?: StringTest[] }
  | { kind: 'client'; trusted: boolean };

/** Per-rule S/MIME encryption choices (postern.yaml's smime section otherwise). */
export interface SmimeEncryptOptions {
  /** A fixed cipher, or `capable`: AES-256-GCM where every recipient advertised it. */
  cipher?: 'capable' | 'aes-256-cbc' | 'aes-128-cbc' | 'aes-256-gcm' | 'aes-128-gcm';
  rsa_padding?: 'pkcs1' | 'oaep';
}

/** Per-rule PDF mail choices (postern.yaml's pdf section otherwise). */
export interface PdfEncryptOptions {
  cipher?: 'aes-256' | 'aes-128';
  /** false: no Reply button in this rule's PDFs. */
  reply?: boolean;
}

export type Action =
  | { kind: 'none' }
  | { kind: 'sign'; method: CryptoKind | 'auto' }
  /** header_protection: this rule's RFC 9788 mode over postern.yaml's (obscure, copy, off). */
  | { kind: 'encrypt'; methods: EncryptMethod[]; require: boolean; otherwise: 'hold' | 'bounce'; smime?: SmimeEncryptOptions; pgp?: { inline: boolean }; pdf?: PdfEncryptOptions; header_protection?: 'obscure' | 'copy' | 'off' }
  /** pgp_attachments: also .pgp/.gpg/.asc attachments; pgp_inline_html: armor in an HTML body (Outlook). */
  | { kind: 'decrypt'; pgp_attachments?: boolean; pgp_inline_html?: boolean }
  | { kind: 'verify' }
  | { kind: 'generate_keys'; smime: boolean; pgp: boolean }
  | { kind: 'add_header'; name: string; value: string }
  | { kind: 'remove_header'; names: string[] }
  | { kind: 'copy'; to: string[] }
  | { kind: 'redirect'; to: string[] }
  | { kind: 'notify_sender' }
  | { kind: 'alert'; to: string[] }
  | { kind: 'hold'; reason: string }
  | { kind: 'bounce'; reason: string }
  | { kind: 'delete'; reason: string }
  | { kind: 'send_keys'; smime: boolean; pgp: boolean };

export interface Rule {
  name: string;
  /** Where the rule starts in the policy file (for traces and errors). */
  line: number;
  when: Condition;
  actions: Action[];
  /** Go on to the next rules after this one matched (actions accumulate). */
  continue: boolean;
}

export interface CompiledPolicy {
  file: string;
  rules: Rule[];
  /** Subject-line command token → command; tokens compared case-insensitively. */
  commands: Map<string, CommandName>;
  /** What a command does to each recipient's plan (policy can redefine it). */
  commandActions: Map<CommandName, Action[]>;
  /** Static directory file (groups and attributes), absolute, if configured. */
  groupsFile?: string;
}

/** Facts about one party, gathered by the worker before the (pure, synchronous) evaluation. */
export interface PartyFacts {
  address: string;
  internal: boolean;
  groups: string[];
  attributes: Record<string, string[]>;
  /**
   * Usable keys: public for recipients, private (can sign/decrypt) for the sender. `pdf`, `webmail`:
   * a PDF or a webmail copy can be made for this recipient (they need no key; absent counts as no).
   */
  keys: { smime: boolean; pgp: boolean; pdf?: boolean; webmail?: boolean };
}

export interface MessageFacts {
  size: number;
  /** Header name (lower-case) → values, in order. */
  headers: Map<string, string[]>;
  subject: string;
  attachments: { name: string; type: string }[];
  priority: Priority;
  sensitivity: Sensitivity;
  encrypted: CryptoKind | null;
  signed: CryptoKind | null;
}

export interface PolicyInput {
  message: MessageFacts;
  sender: PartyFacts;
  recipients: PartyFacts[];
  clientTrusted: boolean;
  /** Subject-line commands found (honoured only from trusted clients: the evaluator checks). */
  commands: CommandName[];
}

export interface RecipientPlan {
  recipient: string;
  direction: Direction;
  /** Actions in the order they run. */
  actions: Action[];
  /** Names of the rules that matched, in order (the default when none did). */
  rules: string[];
  /** Actions the rules asked for that do not run, and why (e.g. sign from an untrusted client). */
  skipped?: { action: Action['kind']; reason: string }[];
}
