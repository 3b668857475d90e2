/**
 * The PKCS#11 KEK: an AES-256 key inside a token (HSM, SoftHSM2) that never leaves it. Data keys
 * are wrapped with C_Encrypt / C_Decrypt and CKM_AES_GCM (the wrapped layout is aead.ts's, which
 * is exactly iv ‖ C_Encrypt's output). The IV is 12 random bytes from Node's CSPRNG, passed in the
 * GCM parameters; a token that insists on making its own IV is not supported.
 *
 * Every failure is a KekError naming the module, token or label and the CKR_* code in words;
 * pkcs11js exceptions never escape. The PIN is read from the environment and never appears in
 * messages; the open KEK keeps it so that, when the session or token goes away (token reset,
 * CKR_SESSION_HANDLE_INVALID…), it can open a new session, log in and find the key again, once
 * per failed call, before reporting the failure.
 *
 * Operations on one KEK are serialised (a session runs one Init/Encrypt pair at a time) and the
 * token work itself runs on libuv threads (C_EncryptAsync), so a slow HSM does not block the loop.
 */
import { randomBytes } from 'node:crypto';
import { AES_GCM, IV_BYTES, KEY_BYTES, TAG_BYTES, packWrapped, unpackWrapped, unwrapFailed } from './aead.js';
import { GONE, acquireModule, ckrName, ckrText, pkcs11js, type ModuleRef, type Pkcs11 } from './pkcs11-module.js';
import { KekError, type Kek } from './types.js';

export interface Pkcs11KekConfig {
  /** Absolute path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  module: string;
  /** Token label (CK_TOKEN_INFO.label without its blank padding). */
  token: string;
  /** Name of the environment variable that holds the user PIN. */
  pin_env: string;
  /** CKA_LABEL of the AES key. */
  key_label: string;
}

export interface Pkcs11Options {
  /** Where to read the PIN variable (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** An open, logged-in session on the token. */
interface TokenSession {
  slot: Buffer;
  session: Buffer;
}

export function pkcs11KekId(cfg: Pkcs11KekConfig): string {
  return `pkcs11:${cfg.token}/${cfg.key_label}`;
}

function readPin(cfg: Pkcs11KekConfig, opts: Pkcs11Options): string {
  const pin = (opts.env ?? process.env)[cfg.pin_env];
  if (pin === undefined || pin === '') {
    throw new KekError(`the PIN variable ${cfg.pin_env} for PKCS#11 token "${cfg.token}" is not set or empty (kek.pkcs11.pin_env names it)`);
  }
  return pin;
}

function tokenLabel(raw: string): string {
  return raw.replace(/[\s\0]+$/, '');
}

function findSlot(lib: Pkcs11, cfg: Pkcs11KekConfig): Buffer {
  let slots: Buffer[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (e) {
    throw new KekError(`PKCS#11 module ${cfg.module} cannot list its slots: ${ckrText(e)}`);
  }
  const found: string[] = [];
  const matches: Buffer[] = [];
  for (const slot of slots) {
    let label: string;
    try {
      label = tokenLabel(lib.C_GetTokenInfo(slot).label);
    } catch {
      continue; // a slot whose token vanished between the two calls
    }
    if (label === '') continue; // SoftHSM2's spare, uninitialised token
    found.push(label);
    if (label === cfg.token) matches.push(slot);
  }
  const list = found.length ? `tokens found: ${found.map((l) => `"${l}"`).join(', ')}` : 'no initialised tokens found';
  if (matches.length === 0) {
    throw new KekError(`no PKCS#11 token labelled "${cfg.token}" in ${cfg.module}; ${list}`);
  }
  if (matches.length > 1) {
    throw new KekError(`${matches.length} PKCS#11 tokens are labelled "${cfg.token}" in ${cfg.module}; give them distinct labels`);
  }
  return matches[0]!;
}

/** Open a session on the token and log in as user; on failure nothing is left open. */
function openSession(mod: ModuleRef, cfg: Pkcs11KekConfig, pin: string, rw: boolean): TokenSession {
  const p = pkcs11js();
  const { lib } = mod;
  const slot = findSlot(lib, cfg);
  let session: Buffer;
  try {
    session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION | (rw ? p.CKF_RW_SESSION : 0));
  } catch (e) {
    throw new KekError(`cannot open a session on PKCS#11 token "${cfg.token}": ${ckrText(e)}`);
  }
  try {
    lib.C_Login(session, p.CKU_USER, pin);
  } catch (e) {
    // Login state is per application and token: another KEK of ours may have logged in already.
    if (ckrName(e) !== 'CKR_USER_ALREADY_LOGGED_IN') {
      try {
        lib.C_CloseSession(session);
      } catch {
        /* already gone */
      }
      throw new KekError(`cannot log in to PKCS#11 token "${cfg.token}" with the PIN from ${cfg.pin_env}: ${ckrText(e)}`);
    }
  }
  mod.noteLogin(slot);
  return { slot, session };
}

function closeSession(mod: ModuleRef, ts: TokenSession): void {
  const { lib } = mod;
  // C_Logout would log out every session of this process on the token: only the last one does.
  if (mod.dropLogin(ts.slot)) {
    try {
      lib.C_Logout(ts.session);
    } catch {
      /* token gone or not logged in: closing is all that is left */
    }
  }
  try {
    lib.C_CloseSession(ts.session);
  } catch {
    /* idem */
  }
}

function findObjects(lib: Pkcs11, session: Buffer, template: { type: number; value?: number | boolean | string | Buffer }[]): Buffer[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 2);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

function findKey(lib: Pkcs11, ts: TokenSession, cfg: Pkcs11KekConfig): Buffer {
  const p = pkcs11js();
  let handles: Buffer[];
  try {
    handles = findObjects(lib, ts.session, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_LABEL, value: cfg.key_label },
    ]);
  } catch (e) {
    throw new KekError(`cannot search PKCS#11 token "${cfg.token}" for key "${cfg.key_label}": ${ckrText(e)}`);
  }
  if (handles.length === 0) {
    throw new KekError(
      `no AES secret key labelled "${cfg.key_label}" on PKCS#11 token "${cfg.token}" ` +
        '(create one with `postern kek rotate --to pkcs11`, or check kek.pkcs11.key_label)',
    );
  }
  if (handles.length > 1) {
    throw new KekError(`several AES keys are labelled "${cfg.key_label}" on PKCS#11 token "${cfg.token}"; the KEK must be unambiguous`);
  }
  const key = handles[0]!;
  let len: number | undefined;
  try {
    const [attr] = lib.C_GetAttributeValue(ts.session, key, [{ type: p.CKA_VALUE_LEN }]);
    // CK_ULONG, native byte order and width (8 bytes on LP64, 4 on Windows).
    if (attr && (attr.value.length === 8 || attr.value.length === 4)) len = attr.value.readUIntLE(0, Math.min(6, attr.value.length));
  } catch {
    /* a token that hides CKA_VALUE_LEN: the first operation will tell */
  }
  if (len !== undefined && len !== KEY_BYTES) {
    throw new KekError(`key "${cfg.key_label}" on PKCS#11 token "${cfg.token}" is AES-${len * 8}; the KEK must be AES-256`);
  }
  return key;
}

/** Serialises operations: a PKCS#11 session runs one Init/Encrypt pair at a time. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(() => fn());
    this.tail = next.catch(() => undefined); // the tail never rejects: one failure does not stop the queue
    return next;
  }
  drain(): Promise<unknown> {
    return this.tail;
  }
}

type GcmParamType = number;

class Pkcs11Kek implements Kek {
  readonly id: string;
  readonly algorithm = AES_GCM;
  private readonly queue = new SerialQueue();
  private closed = false;
  /** Which CK_GCM_PARAMS layout the token takes: v2.40 (with ulIvBits) first, v2.30 as fallback. */
  private paramType: GcmParamType;
  private paramFallbackTried = false;
  /** Null after the token or session went away and reconnecting failed. */
  private conn: { ts: TokenSession; key: Buffer } | null;

  constructor(
    private readonly cfg: Pkcs11KekConfig,
    private readonly mod: ModuleRef,
    ts: TokenSession,
    key: Buffer,
    private readonly pin: string,
  ) {
    this.id = pkcs11KekId(cfg);
    this.paramType = pkcs11js().CK_PARAMS_GCM;
    this.conn = { ts, key };
  }

  wrap(dataKey: Buffer, aad: Buffer): Promise<Buffer> {
    return this.op('wrap', async (lib, session, key) => {
      const iv = randomBytes(IV_BYTES);
      this.init(lib, 'encrypt', session, key, iv, aad);
      const out = await lib.C_EncryptAsync(session, dataKey, Buffer.alloc(dataKey.length + TAG_BYTES));
      return packWrapped(iv, out);
    });
  }

  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    const { iv, ciphertext } = unpackWrapped(wrapped, this.id);
    return this.op('unwrap', async (lib, session, key) => {
      this.init(lib, 'decrypt', session, key, iv, aad);
      const buf = Buffer.alloc(ciphertext.length);
      try {
        const out = await lib.C_DecryptAsync(session, ciphertext, buf);
        return Buffer.from(out);
      } finally {
        buf.fill(0);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.drain();
    if (this.conn) closeSession(this.mod, this.conn.ts);
    this.conn = null;
    this.mod.release();
  }

  private init(lib: Pkcs11, dir: 'encrypt' | 'decrypt', session: Buffer, key: Buffer, iv: Buffer, aad: Buffer): void {
    const p = pkcs11js();
    for (;;) {
      const mech = { mechanism: p.CKM_AES_GCM, parameter: { type: this.paramType, iv, aad, ivBits: IV_BYTES * 8, tagBits: TAG_BYTES * 8 } };
      try {
        if (dir === 'encrypt') lib.C_EncryptInit(session, mech, key);
        else lib.C_DecryptInit(session, mech, key);
        return;
      } catch (e) {
        if (ckrName(e) !== 'CKR_MECHANISM_PARAM_INVALID' || this.paramFallbackTried) throw e;
        this.paramFallbackTried = true;
        this.paramType = p.CK_PARAMS_AES_GCM;
      }
    }
  }

  /** Run one operation in turn; if the session or token went away, reconnect once and retry. */
  private op<T>(what: 'wrap' | 'unwrap', fn: (lib: Pkcs11, session: Buffer, key: Buffer) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new KekError(`KEK ${this.id} is closed`));
    return this.queue.run(async () => {
      if (this.closed) throw new KekError(`KEK ${this.id} is closed`);
      let cause = 'the token was gone at the previous attempt';
      if (this.conn) {
        const { ts, key } = this.conn;
        try {
          return await fn(this.mod.lib, ts.session, key);
        } catch (e) {
          const name = ckrName(e);
          if (!name || !GONE.has(name)) throw this.translate(what, e);
          cause = ckrText(e);
        }
      }
      const conn = this.reconnect(cause);
      try {
        return await fn(this.mod.lib, conn.ts.session, conn.key);
      } catch (e) {
        throw this.translate(what, e);
      }
    });
  }

  /** A fresh session, login and key handle (slot ids may change when a token comes back). */
  private reconnect(cause: string): { ts: TokenSession; key: Buffer } {
    if (this.conn) closeSession(this.mod, this.conn.ts);
    this.conn = null;
    let ts: TokenSession | undefined;
    try {
      ts = openSession(this.mod, this.cfg, this.pin, false);
      const key = findKey(this.mod.lib, ts, this.cfg);
      this.conn = { ts, key };
      return this.conn;
    } catch (e) {
      if (ts) closeSession(this.mod, ts);
      const reason = e instanceof Error ? e.message : String(e);
      throw new KekError(`PKCS#11 KEK ${this.id}: ${cause}; reconnecting failed: ${reason}`);
    }
  }

  private translate(what: 'wrap' | 'unwrap', e: unknown): KekError {
    if (e instanceof KekError) return e;
    const name = ckrName(e);
    // Tag mismatch: the standard says CKR_ENCRYPTED_DATA_INVALID; SoftHSM2 says CKR_GENERAL_ERROR.
    if (what === 'unwrap' && name && ['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED'].includes(name)) {
      const err = unwrapFailed(this.id);
      err.message += ` [token: ${name}]`;
      return err;
    }
    return new KekError(`PKCS#11 KEK ${this.id}: cannot ${what} a data key: ${ckrText(e)}`);
  }
}

/**
 * Open the KEK: load the module (shared within the process), find the token by label, log in
 * with the PIN from `pin_env`, and find the AES key by label.
 */
export async function openPkcs11Kek(cfg: Pkcs11KekConfig, opts: Pkcs11Options = {}): Promise<Kek> {
  const pin = readPin(cfg, opts);
  const mod = acquireModule(cfg.module);
  let ts: TokenSession | undefined;
  try {
    ts = openSession(mod, cfg, pin, false);
    const key = findKey(mod.lib, ts, cfg);
    return new Pkcs11Kek(cfg, mod, ts, key, pin);
  } catch (e) {
    if (ts) closeSession(mod, ts);
    mod.release();
    throw e instanceof KekError ? e : new KekError(`cannot open PKCS#11 KEK ${pkcs11KekId(cfg)}: ${ckrText(e)}`);
  }
}

/**
 * Generate the KEK inside the token: AES-256, a token object that is sensitive and not
 * extractable (it can never be read out, even by us), usable only to encrypt and decrypt.
 * Refuses when an object with that label exists: a second key under the same label would make
 * the KEK ambiguous, and replacing one would orphan every data key it wrapped.
 * Returns the new KEK's id.
 */
export async function createPkcs11Key(cfg: Pkcs11KekConfig, opts: Pkcs11Options = {}): Promise<string> {
  const p = pkcs11js();
  const pin = readPin(cfg, opts);
  const mod = acquireModule(cfg.module);
  let ts: TokenSession | undefined;
  try {
    ts = openSession(mod, cfg, pin, true);
    const existing = findObjects(mod.lib, ts.session, [{ type: p.CKA_LABEL, value: cfg.key_label }]);
    if (existing.length > 0) {
      throw new KekError(`PKCS#11 token "${cfg.token}" already has an object labelled "${cfg.key_label}"; use it as the KEK or choose another key_label`);
    }
    mod.lib.C_GenerateKey(ts.session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_VALUE_LEN, value: KEY_BYTES },
      { type: p.CKA_LABEL, value: cfg.key_label },
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_ENCRYPT, value: true },
      { type: p.CKA_DECRYPT, value: true },
      { type: p.CKA_WRAP, value: false },
      { type: p.CKA_UNWRAP, value: false },
    ]);
    return pkcs11KekId(cfg);
  } catch (e) {
    throw e instanceof KekError ? e : new KekError(`cannot create key "${cfg.key_label}" on PKCS#11 token "${cfg.token}": ${ckrText(e)}`);
  } finally {
    if (ts) closeSession(mod, ts);
    mod.release();
  }
}
