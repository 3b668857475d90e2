/**
 * PKCS#11 modules shared within the process, and the translation of CKR_* failures into KekErrors.
 *
 * Why a registry: a Cryptoki library is initialised once per process (a second C_Initialize
 * answers CKR_CRYPTOKI_ALREADY_INITIALIZED), C_Finalize ends every session of every user of
 * it, and C_Logout logs out every session on that token. So each module path is loaded and
 * initialised once, reference-counted across the KEKs that use it, and finalised (and unloaded)
 * when the last one closes; logins are counted per slot the same way. After a full close the
 * next open loads and initialises the library afresh, which also re-reads its configuration
 * (SoftHSM2 reads SOFTHSM2_CONF in C_Initialize).
 *
 * pkcs11js is a native addon, loaded lazily: only processes configured for PKCS#11 need it.
 */
import { createRequire } from 'node:module';
import type * as Pkcs11Js from 'pkcs11js';
import { KekError } from './types.js';

export type Pkcs11Lib = typeof Pkcs11Js;
export type Pkcs11 = Pkcs11Js.PKCS11;

let addon: Pkcs11Lib | undefined;

export function pkcs11js(): Pkcs11Lib {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)('pkcs11js') as Pkcs11Lib;
    } catch (e) {
      throw new KekError(`the pkcs11js addon cannot be loaded (is it built? npm rebuild pkcs11js): ${errorText(e)}`);
    }
  }
  return addon;
}

interface Entry {
  lib: Pkcs11;
  refs: number;
  /** False when someone else in the process had initialised the library: not ours to finalise. */
  ownsInit: boolean;
  /** Sessions logged in per slot (hex of the slot handle). */
  logins: Map<string, number>;
}

const modules = new Map<string, Entry>();

export interface ModuleRef {
  readonly lib: Pkcs11;
  readonly path: string;
  /** Count a session logged in on `slot`. */
  noteLogin(slot: Buffer): void;
  /** Uncount a login; returns true when it was the last, i.e. C_Logout is due. */
  dropLogin(slot: Buffer): boolean;
  /** Give the reference back; the last one finalises and unloads the library. Never throws. */
  release(): void;
}

export function acquireModule(path: string): ModuleRef {
  const p = pkcs11js();
  let entry = modules.get(path);
  if (!entry) {
    const lib = new p.PKCS11();
    try {
      lib.load(path);
    } catch (e) {
      throw new KekError(`cannot load PKCS#11 module ${path}: ${errorText(e)}`);
    }
    let ownsInit = true;
    try {
      // OS locking: pkcs11js runs the *Async calls on libuv worker threads.
      lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (ckrName(e) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        ownsInit = false;
      } else {
        safely(() => lib.close());
        throw new KekError(`PKCS#11 module ${path} failed to initialise: ${ckrText(e)}`);
      }
    }
    entry = { lib, refs: 0, ownsInit, logins: new Map() };
    modules.set(path, entry);
  }
  entry.refs++;
  const e = entry;
  let released = false;
  return {
    lib: e.lib,
    path,
    noteLogin(slot) {
      const k = slot.toString('hex');
      e.logins.set(k, (e.logins.get(k) ?? 0) + 1);
    },
    dropLogin(slot) {
      const k = slot.toString('hex');
      const n = (e.logins.get(k) ?? 1) - 1;
      if (n > 0) e.logins.set(k, n);
      else e.logins.delete(k);
      return n <= 0;
    },
    release() {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      modules.delete(path);
      if (e.ownsInit) safely(() => e.lib.C_Finalize());
      safely(() => e.lib.close());
    },
  };
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* closing a module whose token is gone: nothing more to do */
  }
}

/** "CKR_PIN_INCORRECT" for a pkcs11js Pkcs11Error, else undefined. */
export function ckrName(e: unknown): string | undefined {
  // Most calls throw Pkcs11Error("CKR_X"); C_FindObjects is not wrapped and throws "CKR_X:code".
  return e instanceof Error ? /\bCKR_[A-Z0-9_]+/.exec(e.message)?.[0] : undefined;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] ?? e.name : String(e);
}

const CKR_TEXT: Record<string, string> = {
  CKR_PIN_INCORRECT: 'wrong PIN',
  CKR_PIN_LOCKED: 'the user PIN is locked (too many wrong PINs); unlock it with the SO PIN',
  CKR_PIN_EXPIRED: 'the user PIN has expired; set a new one',
  CKR_PIN_LEN_RANGE: 'the PIN has the wrong length for this token',
  CKR_PIN_INVALID: 'the PIN contains characters this token does not accept',
  CKR_USER_PIN_NOT_INITIALIZED: 'the token has no user PIN yet (initialise it with the SO PIN)',
  CKR_USER_NOT_LOGGED_IN: 'not logged in to the token (the login was lost)',
  CKR_TOKEN_NOT_PRESENT: 'the token was removed',
  CKR_TOKEN_NOT_RECOGNIZED: 'the token is not recognised (removed or re-initialised?)',
  CKR_DEVICE_REMOVED: 'the token was removed',
  CKR_DEVICE_ERROR: 'the token reported a device error',
  CKR_DEVICE_MEMORY: 'the token is out of memory',
  CKR_SESSION_CLOSED: 'the token session was closed',
  CKR_SESSION_HANDLE_INVALID: 'the token session is no longer valid (token removed or session closed)',
  CKR_SLOT_ID_INVALID: 'the slot no longer exists (token removed?)',
  CKR_OBJECT_HANDLE_INVALID: 'the key object is gone from the token (token removed or re-initialised?)',
  CKR_KEY_HANDLE_INVALID: 'the key object is gone from the token (token removed or re-initialised?)',
  CKR_KEY_FUNCTION_NOT_PERMITTED: 'the key may not be used for this (it needs CKA_ENCRYPT and CKA_DECRYPT)',
  CKR_KEY_TYPE_INCONSISTENT: 'the key is not an AES key',
  CKR_KEY_SIZE_RANGE: 'the key size is not supported',
  CKR_MECHANISM_INVALID: 'the token does not support AES-GCM (CKM_AES_GCM)',
  CKR_MECHANISM_PARAM_INVALID: "the token rejected the AES-GCM parameters",
  CKR_ENCRYPTED_DATA_INVALID: 'authentication failed',
  CKR_ENCRYPTED_DATA_LEN_RANGE: 'the wrapped data has the wrong length',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'the PKCS#11 module is not initialised (KEK closed?)',
  CKR_OPERATION_ACTIVE: 'another operation is active on the session',
  CKR_FUNCTION_FAILED: 'the token reported a failure',
  CKR_GENERAL_ERROR: 'the token reported a general error',
};

/** Codes meaning the token or our session is gone: the KEK must be reopened. */
export const GONE = new Set([
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_DEVICE_REMOVED',
  'CKR_SESSION_CLOSED',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SLOT_ID_INVALID',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

/** "wrong PIN (CKR_PIN_INCORRECT)"; the text of anything else that was thrown. */
export function ckrText(e: unknown): string {
  const name = ckrName(e);
  if (!name) return errorText(e);
  const text = CKR_TEXT[name];
  return text ? `${text} (${name})` : name;
}
